//! What every [`SessionStore`] must do, as one test that runs against each store: the memory
//! store in this crate's unit tests, Redis in `tests/tests/redis_store.rs` against a real
//! `redis-server`. It panics on the first broken promise.

use std::time::Duration;

use super::{Delivery, Loaded, Saved, SessionStore, StatusEvent, Summary, Token, Write};
use crate::runtime::types::SessionStatus;

fn write(record: &[u8], status: SessionStatus, keep_secs: u32) -> Write {
    Write {
        record: record.to_vec(),
        summary: Summary::first(
            status,
            (status == SessionStatus::Initialized).then_some(1_000),
        ),
        keep_secs,
        wake_at_ms: None,
        outbox: Vec::new(),
    }
}

/// Fresh 20-character tokens, so runs against a shared store do not collide.
fn tokens() -> (String, String) {
    let mut b = [0u8; 20];
    getrandom::getrandom(&mut b).expect("randomness");
    let t: String = b
        .iter()
        .map(|x| char::from(b'a' + x % 26))
        .collect::<String>();
    (format!("R{}", &t[1..]), format!("C{}", &t[1..]))
}

/// Runs every check; `expiry` waits a little over a second.
pub async fn check<S: SessionStore>(s: &S) {
    compare_and_swap_takes_one_writer_per_version(s).await;
    summaries_follow_writes(s).await;
    announcements_reach_subscribers(s).await;
    callbacks_are_committed_with_the_write_and_leased(s).await;
    wakeups_follow_writes_and_are_leased(s).await;
    entries_expire_after_their_keep_time(s).await;
}

async fn callbacks_are_committed_with_the_write_and_leased<S: SessionStore>(s: &S) {
    let (rt, ct) = tokens();
    s.create(&rt, &ct, write(b"r", SessionStatus::Connected, 60))
        .await
        .unwrap();
    let l = s.load(Token::Client(&ct)).await.unwrap().unwrap();
    let delivery = Delivery {
        id: rt.clone(),
        ct: ct.clone(),
        url: "http://127.0.0.1:9/cb/".into(),
        content_type: "application/json".into(),
        body: "{\"status\":\"DONE\"}".into(),
        created_ms: 5_000,
        attempts: 0,
    };
    let mut w = write(b"done", SessionStatus::Done, 60);
    w.outbox = vec![delivery.clone()];
    // A write that loses the race commits no callback.
    let stale = Loaded {
        version: l.version + 7,
        ..l.clone()
    };
    assert_eq!(s.save(&stale, w.clone()).await.unwrap(), Saved::Conflict);
    let mine = |v: Vec<Delivery>| v.into_iter().filter(|d| d.id == rt).collect::<Vec<_>>();
    assert!(
        mine(
            s.claim_deliveries(i64::MAX / 2, i64::MAX / 2, 100)
                .await
                .unwrap()
        )
        .is_empty()
    );
    assert_eq!(s.save(&l, w).await.unwrap(), Saved::Ok);
    // Due from its creation; claimed once until the lease ends.
    assert!(mine(s.claim_deliveries(4_999, 10_000, 100).await.unwrap()).is_empty());
    assert_eq!(
        mine(s.claim_deliveries(5_000, 10_000, 100).await.unwrap()),
        vec![delivery.clone()]
    );
    assert!(mine(s.claim_deliveries(9_999, 20_000, 100).await.unwrap()).is_empty());
    assert_eq!(
        mine(s.claim_deliveries(10_000, 20_000, 100).await.unwrap()),
        vec![delivery.clone()],
        "a lease that ran out: due again"
    );
    let retried = Delivery {
        attempts: 1,
        ..delivery.clone()
    };
    s.retry_delivery(&retried, 12_000).await.unwrap();
    assert_eq!(
        mine(s.claim_deliveries(12_000, 30_000, 100).await.unwrap()),
        vec![retried]
    );
    s.finish_delivery(&delivery).await.unwrap();
    assert!(
        mine(
            s.claim_deliveries(i64::MAX / 2, i64::MAX / 2, 100)
                .await
                .unwrap()
        )
        .is_empty()
    );
}

async fn wakeups_follow_writes_and_are_leased<S: SessionStore>(s: &S) {
    let (rt, ct) = tokens();
    let mut w = write(b"r", SessionStatus::Initialized, 60);
    w.wake_at_ms = Some(7_000);
    s.create(&rt, &ct, w).await.unwrap();
    let mine = |v: Vec<String>| v.into_iter().filter(|c| *c == ct).count();
    assert_eq!(mine(s.claim_wakeups(6_999, 8_000, 100).await.unwrap()), 0);
    assert_eq!(mine(s.claim_wakeups(7_000, 8_000, 100).await.unwrap()), 1);
    assert_eq!(
        mine(s.claim_wakeups(7_999, 9_000, 100).await.unwrap()),
        0,
        "leased"
    );
    // A write moves the wake-up; a final one (none) removes it.
    let l = s.load(Token::Client(&ct)).await.unwrap().unwrap();
    let mut w = write(b"r2", SessionStatus::Connected, 60);
    w.wake_at_ms = Some(20_000);
    assert_eq!(s.save(&l, w).await.unwrap(), Saved::Ok);
    assert_eq!(mine(s.claim_wakeups(19_999, 30_000, 100).await.unwrap()), 0);
    let l = s.load(Token::Client(&ct)).await.unwrap().unwrap();
    assert_eq!(
        s.save(&l, write(b"r3", SessionStatus::Timeout, 60))
            .await
            .unwrap(),
        Saved::Ok
    );
    assert_eq!(
        mine(
            s.claim_wakeups(i64::MAX / 2, i64::MAX / 2, 100)
                .await
                .unwrap()
        ),
        0
    );
    // And one that is dropped is gone.
    let (rt2, ct2) = tokens();
    let mut w = write(b"r", SessionStatus::Initialized, 60);
    w.wake_at_ms = Some(1);
    s.create(&rt2, &ct2, w).await.unwrap();
    s.drop_wakeup(&ct2).await.unwrap();
    let all = s
        .claim_wakeups(i64::MAX / 2, i64::MAX / 2, 1000)
        .await
        .unwrap();
    assert!(!all.contains(&ct2));
}

async fn compare_and_swap_takes_one_writer_per_version<S: SessionStore>(s: &S) {
    let (rt, ct) = tokens();
    s.create(&rt, &ct, write(b"v1", SessionStatus::Initialized, 60))
        .await
        .unwrap();
    let l = s.load(Token::Requestor(&rt)).await.unwrap().unwrap();
    assert_eq!(
        (l.ct.as_str(), l.rt.as_str(), l.record.as_slice(), l.version),
        (ct.as_str(), rt.as_str(), &b"v1"[..], 1)
    );
    assert_eq!(
        s.save(&l, write(b"v2", SessionStatus::Connected, 60))
            .await
            .unwrap(),
        Saved::Ok
    );
    // A second writer that loaded version 1 loses, and the record is the winner's.
    assert_eq!(
        s.save(&l, write(b"v2-other", SessionStatus::Done, 60))
            .await
            .unwrap(),
        Saved::Conflict
    );
    let l2 = s.load(Token::Client(&ct)).await.unwrap().unwrap();
    assert_eq!((l2.record.as_slice(), l2.version), (&b"v2"[..], 2));
    assert_eq!(
        l2.rt, rt,
        "loading by client token still knows the requestor token"
    );
    let (other_rt, other_ct) = tokens();
    assert!(s.load(Token::Client(&other_ct)).await.unwrap().is_none());
    assert!(s.load(Token::Requestor(&other_rt)).await.unwrap().is_none());
}

async fn summaries_follow_writes<S: SessionStore>(s: &S) {
    let (rt, ct) = tokens();
    s.create(&rt, &ct, write(b"r", SessionStatus::Initialized, 60))
        .await
        .unwrap();
    let (got_ct, summary) = s.summary(Token::Requestor(&rt)).await.unwrap().unwrap();
    assert_eq!(got_ct, ct);
    assert_eq!(
        summary,
        Summary::first(SessionStatus::Initialized, Some(1_000))
    );
    assert_eq!(summary.status_at(1_000), SessionStatus::Initialized);
    assert_eq!(summary.status_at(1_001), SessionStatus::Timeout);
    let l = s.load(Token::Client(&ct)).await.unwrap().unwrap();
    assert_eq!(l.summary, summary, "a load carries the summary");
    // The summary a write brings is kept whole, the status before the current one included.
    let pairing = summary.then(SessionStatus::Pairing, Some(2_000));
    let connected = pairing.then(SessionStatus::Connected, Some(3_000));
    assert_eq!(connected.previous, Some(SessionStatus::Pairing));
    let w = Write {
        record: b"r2".to_vec(),
        summary: connected,
        keep_secs: 60,
        wake_at_ms: None,
        outbox: Vec::new(),
    };
    assert_eq!(s.save(&l, w).await.unwrap(), Saved::Ok);
    let (_, got) = s.summary(Token::Client(&ct)).await.unwrap().unwrap();
    assert_eq!(got, connected);
    let l = s.load(Token::Requestor(&rt)).await.unwrap().unwrap();
    assert_eq!(l.summary, connected);
    s.save(&l, write(b"r3", SessionStatus::Done, 60))
        .await
        .unwrap();
    let (_, summary) = s.summary(Token::Client(&ct)).await.unwrap().unwrap();
    assert_eq!(
        (summary.status, summary.lapses_at_ms),
        (SessionStatus::Done, None)
    );
    assert_eq!(summary.status_at(i64::MAX), SessionStatus::Done);
    assert!(
        s.summary(Token::Client(&tokens().1))
            .await
            .unwrap()
            .is_none()
    );
}

async fn announcements_reach_subscribers<S: SessionStore>(s: &S) {
    let mut rx = s.subscribe();
    let (_, ct) = tokens();
    // Redis delivers through a subscription that may still be connecting: announce until heard.
    // Generous: the machine may be busy; how fast is not this test's question.
    let heard = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            s.announce(StatusEvent {
                ct: ct.clone(),
                status: SessionStatus::Connected,
            })
            .await;
            if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await
                && e.ct == ct
            {
                return e.status;
            }
        }
    })
    .await;
    assert_eq!(heard.ok(), Some(SessionStatus::Connected));
}

async fn entries_expire_after_their_keep_time<S: SessionStore>(s: &S) {
    let (rt, ct) = tokens();
    s.create(&rt, &ct, write(b"x", SessionStatus::Initialized, 1))
        .await
        .unwrap();
    let l = s.load(Token::Client(&ct)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(s.load(Token::Client(&ct)).await.unwrap().is_none());
    assert!(s.load(Token::Requestor(&rt)).await.unwrap().is_none());
    assert!(s.summary(Token::Requestor(&rt)).await.unwrap().is_none());
    assert_eq!(
        s.save(&l, write(b"y", SessionStatus::Done, 60))
            .await
            .unwrap(),
        Saved::Conflict,
        "an expired session cannot be written back to life"
    );
}
