//! Chained sessions (irma-server.md §1.12). When a session with `nextSession.url` receives
//! valid proofs or commitments, the result (status still CONNECTED) is POSTed to that URL
//! before anything is committed: the proofs handler leaves the record `awaiting_next`, the host
//! makes the POST (the outcome's `fetch`) and hands the answer back as `NextSessionAnswer`,
//! which this module turns into the next session (started with the original requestor's
//! permissions and the same frontend authorization) or a `NEXT_SESSION` error.

use alloc::{borrow::ToOwned, string::String, vec::Vec};
use serde_json::{Value, json};

use crate::errors::{ErrorKind::*, IrmaError, err};
use crate::record::{SessionRecord, Status};
use crate::request;
use crate::session::{Ctx, keep_secs, lapses_at_ms, new_session, wake_at_ms};
use crate::{CreatedSession, HttpAnswer, Response};

/// What `disclosed` (a result's) asks for again in the next session: one disjunction per
/// disclosed group, holding one conjunction of its attributes with their values required (an
/// absent value requires nothing).
pub fn implicit_from(disclosed: Option<&Value>) -> Vec<Value> {
    let groups = disclosed.and_then(Value::as_array).into_iter().flatten();
    groups
        .filter_map(Value::as_array)
        .filter(|g| !g.is_empty())
        .map(|group| {
            let con: Vec<Value> = group
                .iter()
                .filter_map(|a| {
                    let id = a.get("id")?.as_str()?;
                    Some(match a.get("rawvalue").and_then(Value::as_str) {
                        Some(v) => json!({"type": id, "value": v}),
                        None => json!(id),
                    })
                })
                .collect();
            json!([con])
        })
        .collect()
}

/// Completes a chained session with what its next-session endpoint answered: 204 ends it as
/// DONE, 200 with a session request starts the next session; anything else is `NEXT_SESSION`
/// and the session stays CONNECTED. Returns the app's answer and the session to store.
pub fn answer(
    rec: &mut SessionRecord,
    ctx: &mut Ctx,
    answer: HttpAnswer,
) -> (Response, Option<CreatedSession>) {
    if !rec.awaiting_next {
        let e = err(UnexpectedRequest, "no next session was asked for");
        return (e.response(), None);
    }
    rec.awaiting_next = false;
    // The app's answer as the proofs handler prepared it (and cached it for retries).
    let mut reply: Value = rec
        .cache
        .as_ref()
        .and_then(|c| serde_json::from_str(&c.body).ok())
        .unwrap_or_else(|| json!({}));
    let next = match answer.status {
        204 => Ok(None),
        200 => start_next(rec, ctx, &answer.body).map(Some),
        0 => Err(err(NextSession, "the next-session endpoint did not answer")),
        s => Err(err(
            NextSession,
            format!("the next-session endpoint answered {s}"),
        )),
    };
    let (response, created) = match next {
        Ok(next) => {
            rec.status = Status::Done;
            rec.result.status = Status::Done;
            rec.last_active_ms = ctx.now_ms;
            let created = next.map(|(created, pointer)| {
                rec.result.next_session = Some(created.requestor_token.clone());
                reply["nextSession"] = pointer.clone();
                rec.next = Some(pointer);
                created
            });
            (Response::json(200, &reply), created)
        }
        Err(e) => {
            // As before the proofs: CONNECTED, no verdict.
            rec.result.proof_status = None;
            rec.result.disclosed = None;
            rec.result.signature = None;
            (e.response(), None)
        }
    };
    if let Some(c) = rec.cache.as_mut() {
        c.status_code = response.status;
        c.content_type = response.content_type.clone();
        c.body = String::from_utf8_lossy(&response.body).into_owned();
        c.session_status = rec.status;
    }
    (response, created)
}

/// Starts the next session from the endpoint's answer (a session request, plain or extended).
fn start_next(
    rec: &SessionRecord,
    ctx: &mut Ctx,
    body: &[u8],
) -> Result<(CreatedSession, Value), IrmaError> {
    let wrap = |e: IrmaError| {
        let detail = if e.message.is_empty() {
            e.kind.name().to_owned()
        } else {
            format!("{}: {}", e.kind.name(), e.message)
        };
        err(NextSession, detail)
    };
    let parsed = request::parse(body).map_err(wrap)?;
    let implicit = implicit_from(rec.result.disclosed.as_ref());
    let (next, pointer) =
        new_session(parsed, &rec.requestor, Some(rec.fa.clone()), implicit, ctx).map_err(wrap)?;
    let created = CreatedSession {
        requestor_token: next.rt.clone(),
        client_token: next.ct.clone(),
        record: next.encode(),
        status: next.status,
        lapses_at_ms: lapses_at_ms(&next, ctx.config),
        wake_at_ms: wake_at_ms(&next, ctx.config),
        keep_secs: keep_secs(&next, ctx),
    };
    Ok((created, pointer["sessionPtr"].clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_disclosed_is_asked_again_with_its_values() {
        let disclosed = json!([
            [{"id": "a.b.c.d", "rawvalue": "x"}, {"id": "a.b.c.e", "rawvalue": null}],
            [],
            [{"id": "a.b.f.g", "rawvalue": "y"}]
        ]);
        assert_eq!(
            implicit_from(Some(&disclosed)),
            vec![
                json!([[{"type": "a.b.c.d", "value": "x"}, "a.b.c.e"]]),
                json!([[{"type": "a.b.f.g", "value": "y"}]]),
            ]
        );
        assert!(implicit_from(None).is_empty());
    }
}
