//! The app side of a session, played by the Idemix test wallet over HTTP, as the real IRMA app
//! does it: connect with protocol headers and an Authorization of its choice, read the request,
//! pick credentials that satisfy it, and post proofs or commitments.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use irma_idemix::Configuration;
use irma_idemix::attributes::decode;
use irma_idemix::bigint::Int;
use irma_idemix::bigjson::Big;
use irma_idemix::disclosure::{AttributeRequest, ConDisCon};
use irma_idemix::holder::{Selection, Wallet};
use irma_idemix::issuance::{CredentialRequest, IssueSignatureMessage};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;

use crate::{Answer, PATIENCE, http};

pub const APP_AUTH: &str = "AppAuthorization0001";

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A wallet with its scheme configuration.
pub struct App {
    pub wallet: Wallet,
    pub conf: Configuration,
    rng: ChaCha20Rng,
    /// In a chain of sessions (`run_chain`): what the last session disclosed, asked again in
    /// the next (as the app does: it discloses the same attributes again, after those asked for).
    implicit: Option<ConDisCon>,
}

/// What the app chose to disclose.
struct Choice {
    selections: Vec<Selection>,
    picks: Vec<Vec<(usize, usize)>>,
    /// For each disjunction, the attributes chosen with their values.
    disclosed: Vec<Vec<(String, Option<String>)>>,
}

impl App {
    pub fn new(conf: Configuration, seed: u64) -> App {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        App {
            wallet: Wallet::new(&mut rng),
            conf,
            rng,
            implicit: None,
        }
    }

    /// Runs a chain of sessions from `u`: after each answer that names a next session, the app
    /// starts it at once and discloses again what it disclosed before. Returns every session's
    /// final answer.
    pub fn run_chain(&mut self, u: &str) -> Vec<Answer> {
        self.implicit = Some(Vec::new());
        let mut answers = vec![self.run(u)];
        while let Some(next) = answers
            .last()
            .filter(|a| a.status == 200)
            .and_then(|a| a.json()["nextSession"]["u"].as_str().map(str::to_owned))
        {
            answers.push(self.run(&next));
        }
        self.implicit = None;
        answers
    }

    /// `GET <u>/` with the headers the current app sends.
    pub fn connect(&self, u: &str) -> Answer {
        http(
            "GET",
            &format!("{u}/"),
            &[
                ("X-IRMA-MinProtocolVersion", "2.4"),
                ("X-IRMA-MaxProtocolVersion", "2.8"),
                ("Authorization", APP_AUTH),
            ],
            None,
        )
    }

    /// After a connect that asked for pairing, waits for the pairing as the real app does
    /// (irmago's `handlePairing` with `WaitStatusChanged`): it opens `statusevents` and takes
    /// the first event as the new status; a stream that ends without one is reopened a second
    /// later, as its SSE client does; if no stream can be opened (not 200, or not
    /// `text/event-stream`) it polls `status` every second until it is no longer PAIRING.
    /// `waiting` is called once it listens. The app goes on only if the status it read is
    /// CONNECTED; anything else is its `pairingRejected`. (The app waits for ever; this wallet
    /// gives up after twice [`PATIENCE`].)
    pub fn wait_for_pairing(&self, u: &str, waiting: impl FnOnce()) -> PairingWait {
        let mut waiting = Some(waiting);
        let mut last_id = None;
        let deadline = Instant::now() + PATIENCE * 2;
        loop {
            assert!(
                Instant::now() < deadline,
                "{u}/statusevents keeps ending without an event"
            );
            match first_event(
                &format!("{u}/statusevents"),
                last_id.as_deref(),
                &mut waiting,
            ) {
                Stream::Event(status) => {
                    return PairingWait {
                        status,
                        via: Via::Stream,
                    };
                }
                Stream::Ended(id) => {
                    last_id = id.or(last_id);
                    std::thread::sleep(Duration::from_secs(1));
                }
                Stream::Refused => break,
            }
        }
        if let Some(w) = waiting.take() {
            w();
        }
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let s = http("GET", &format!("{u}/status"), &[], None);
            assert_eq!(s.status, 200, "{}", s.body);
            let status = s.json().as_str().unwrap_or_default().to_owned();
            if status != "PAIRING" || Instant::now() > deadline {
                return PairingWait {
                    status,
                    via: Via::Polling,
                };
            }
        }
    }

    pub fn decline(&self, u: &str) -> Answer {
        http(
            "DELETE",
            &format!("{u}/"),
            &[("Authorization", APP_AUTH)],
            None,
        )
    }

    /// Connects and answers the session. Returns the answer to the final POST.
    pub fn run(&mut self, u: &str) -> Answer {
        let c = self.connect(u);
        assert_eq!(c.status, 200, "connect: {}", c.body);
        let request = c.json()["request"].clone();
        self.respond(u, &request)
    }

    /// Posts proofs or commitments for `request` (the session request the app received).
    pub fn respond(&mut self, u: &str, request: &Value) -> Answer {
        let (body, pending) = self.answer(request);
        let path = if pending.is_some() {
            "commitments"
        } else {
            "proofs"
        };
        let a = http(
            "POST",
            &format!("{u}/{path}"),
            &[
                ("Authorization", APP_AUTH),
                ("Content-Type", "application/json"),
            ],
            Some(&body),
        );
        if let (Some((pending, creds)), 200) = (pending, a.status) {
            let sigs: Vec<IssueSignatureMessage> =
                serde_json::from_value(a.json()["sigs"].clone()).expect("sigs");
            let _ = creds;
            self.wallet
                .finish_issuance(&self.conf, pending, &sigs, now())
                .expect("issued credentials verify");
        }
        a
    }

    /// The body the app would post, and for issuance what it needs to finish.
    #[allow(clippy::type_complexity)]
    pub fn answer(
        &mut self,
        request: &Value,
    ) -> (
        String,
        Option<(irma_idemix::holder::PendingIssuance, Vec<CredentialRequest>)>,
    ) {
        let context = big(&request["context"]);
        let nonce = big(&request["nonce"]);
        let mut cdc: ConDisCon = serde_json::from_value(
            request
                .get("disclose")
                .cloned()
                .filter(|v| !v.is_null())
                .unwrap_or(Value::Array(vec![])),
        )
        .expect("condiscon");
        let in_chain = self.implicit.is_some();
        if let Some(implicit) = self.implicit.take() {
            cdc.extend(implicit);
        }
        let choice = self
            .choose(&cdc)
            .expect("the wallet can satisfy the request");
        // The next session of a chain asks for all of this again, values required.
        if in_chain {
            self.implicit = Some(implicit_of(&choice));
        }
        match request["@context"].as_str().unwrap() {
            "https://irma.app/ld/request/issuance/v2" => {
                let creds: Vec<CredentialRequest> =
                    serde_json::from_value(request["credentials"].clone()).unwrap();
                let (msg, pending) = self
                    .wallet
                    .start_issuance(
                        &self.conf,
                        &creds,
                        &choice.selections,
                        &choice.picks,
                        &context,
                        &nonce,
                        &mut self.rng,
                    )
                    .expect("commitments");
                (serde_json::to_string(&msg).unwrap(), Some((pending, creds)))
            }
            "https://irma.app/ld/request/signature/v2" => {
                let message = request["message"].as_str().unwrap();
                let sm = self
                    .wallet
                    .sign(
                        &choice.selections,
                        &choice.picks,
                        message,
                        &context,
                        &nonce,
                        None,
                        &mut self.rng,
                    )
                    .expect("signature");
                (serde_json::to_string(&sm).unwrap(), None)
            }
            _ => {
                let d = self
                    .wallet
                    .disclose(
                        &choice.selections,
                        &choice.picks,
                        &context,
                        &nonce,
                        &mut self.rng,
                    )
                    .expect("disclosure");
                (serde_json::to_string(&d).unwrap(), None)
            }
        }
    }

    /// The value of attribute `id` (`s.i.c.a`) in credential `cred`, if it has it.
    fn value(&self, cred: usize, id: &str) -> Option<(usize, Option<String>)> {
        let c = &self.wallet.credentials[cred];
        let ct = self.conf.credential_type(&c.credential_type).ok()?;
        if id == ct.id {
            return Some((1, Some("present".into())));
        }
        let name = id.strip_prefix(&format!("{}.", ct.id))?;
        let idx = ct.base_index(name)?;
        let version = c.metadata()?.version;
        Some((idx, decode(&c.m[idx], version)))
    }

    /// The first satisfiable conjunction of every disjunction, from the first fitting credentials.
    fn choose(&self, cdc: &ConDisCon) -> Option<Choice> {
        let mut selections: Vec<Selection> = Vec::new();
        let mut picks = Vec::new();
        let mut disclosed = Vec::new();
        for discon in cdc {
            let mut chosen = None;
            'cons: for con in discon {
                let mut pick = Vec::new();
                let mut used: Vec<(usize, usize)> = Vec::new(); // (credential, attr)
                let mut values = Vec::new();
                for req in con {
                    let found = (0..self.wallet.credentials.len()).find_map(|cred| {
                        let (idx, val) = self.value(cred, req.id())?;
                        satisfies(req, val.as_deref()).then_some((cred, idx, val))
                    });
                    match found {
                        Some((cred, idx, val)) => {
                            used.push((cred, idx));
                            values.push((req.id().to_owned(), val));
                        }
                        None => continue 'cons,
                    }
                }
                disclosed.push(values);
                for (cred, idx) in used {
                    let sel = match selections.iter().position(|s| s.credential == cred) {
                        Some(i) => i,
                        None => {
                            selections.push(Selection {
                                credential: cred,
                                disclose: vec![],
                            });
                            selections.len() - 1
                        }
                    };
                    if idx != 1 && !selections[sel].disclose.contains(&idx) {
                        selections[sel].disclose.push(idx);
                    }
                    pick.push((sel, idx));
                }
                chosen = Some(pick);
                break;
            }
            picks.push(chosen?);
        }
        Some(Choice {
            selections,
            picks,
            disclosed,
        })
    }
}

/// What the app read while it waited for pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingWait {
    /// The status it took as the outcome (`CONNECTED` to go on).
    pub status: String,
    pub via: Via,
}

/// How the app learnt the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Stream,
    Polling,
}

/// How one attempt to read a status stream went.
enum Stream {
    /// The first event's data, unquoted.
    Event(String),
    /// The stream ended without an event; the last `id:` it gave, if any.
    Ended(Option<String>),
    /// No stream: an error status, another content type, or no connection.
    Refused,
}

/// Opens the stream at `url` and reads up to its first event, as the app's SSE client
/// (sietseringers/go-sse) parses it: comment lines are skipped, `id:` is remembered, an event
/// is dispatched at the blank line after its `data:`, and `open` events are ignored.
fn first_event(url: &str, last_id: Option<&str>, waiting: &mut Option<impl FnOnce()>) -> Stream {
    let agent = crate::agent()
        .timeout_connect(Duration::from_secs(10))
        .timeout_read(PATIENCE * 2)
        .build();
    let mut req = agent.get(url).set("Accept", "text/event-stream");
    if let Some(id) = last_id {
        req = req.set("Last-Event-ID", id);
    }
    let resp = match req.call() {
        Ok(r) if r.status() == 200 && r.header("content-type") == Some("text/event-stream") => r,
        _ => return Stream::Refused,
    };
    if let Some(w) = waiting.take() {
        w();
    }
    let (mut id, mut data, mut kind) = (None, None::<String>, None::<String>);
    for line in BufReader::new(resp.into_reader())
        .lines()
        .map_while(Result::ok)
    {
        if line.is_empty() {
            if data.is_some() || kind.is_some() {
                let d = data.take().unwrap_or_default();
                if kind.take().as_deref() != Some("open") {
                    return Stream::Event(d.trim_matches('"').to_owned());
                }
            }
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match name {
            "id" => id = Some(value.to_owned()),
            "event" => kind = Some(value.to_owned()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    Stream::Ended(id)
}

/// What a chain's next session asks again of what `choice` disclosed: one disjunction per
/// disclosed conjunction, its attributes with their values required.
fn implicit_of(choice: &Choice) -> ConDisCon {
    choice
        .disclosed
        .iter()
        .filter(|con| !con.is_empty())
        .map(|con| {
            vec![
                con.iter()
                    .map(|(id, value)| match value {
                        Some(v) => AttributeRequest::Full {
                            id: id.clone(),
                            value: Some(v.clone()),
                            not_null: false,
                        },
                        None => AttributeRequest::Id(id.clone()),
                    })
                    .collect(),
            ]
        })
        .collect()
}

fn satisfies(req: &AttributeRequest, value: Option<&str>) -> bool {
    match req {
        AttributeRequest::Id(_) => true,
        AttributeRequest::Full {
            value: want,
            not_null,
            ..
        } => (!not_null || value.is_some()) && want.as_deref().is_none_or(|w| value == Some(w)),
    }
}

fn big(v: &Value) -> Int {
    serde_json::from_value::<Big>(v.clone())
        .map(|b| b.0)
        .unwrap_or(Int::ZERO)
}
