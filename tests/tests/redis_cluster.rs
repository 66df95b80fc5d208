//! Redis Cluster: three replicas of the real binary behind nginx keep their sessions in a Redis
//! Cluster of three masters with a replica each (Debian's `redis-server`, formed with
//! `redis-cli --cluster create`). Every session type completes and callbacks arrive; sessions
//! spread over every master; a master SIGKILLed with sessions in flight is replaced by its
//! replica and every session completes; a slot moved to another master under load takes its
//! sessions along and loses nothing.

use std::time::{Duration, Instant};

use irma_server::store::shards::Shards;
use irma_tests::cluster::Cluster;
use irma_tests::load::Load;
use irma_tests::receiver::{Receiver, Reply};
use irma_tests::redis_cluster::RedisCluster;
use irma_tests::requests::{demo_conf, disclosure, signature, student_card};
use irma_tests::wallet::App;
use irma_tests::{Session, eventually, guest_command, post_json};
use serde_json::json;

/// The `session:` key of a session and its hash slot.
fn session_key(c: &Cluster<RedisCluster>, s: &Session) -> (String, u16) {
    let ct = s.u.rsplit('/').next().unwrap();
    let key = format!("session:{}{ct}", Shards::cluster().tag_of(ct));
    let slot = c.redis.keyslot(&key);
    (key, slot)
}

/// `irma-server guest status` against the cluster.
fn guest_status(c: &Cluster<RedisCluster>) -> (bool, String) {
    guest_command(&c.flags, &["status"])
}

/// How many subscribers `statusevents` and `guests` have over all nodes (a message published
/// on any node reaches the subscribers of every node).
fn subscribers(c: &Cluster<RedisCluster>) -> (u32, u32) {
    let mut sum = (0, 0);
    for n in c.redis.nodes.iter().filter(|n| n.running()) {
        let out = n.cli(&["PUBSUB", "NUMSUB", "statusevents", "guests"]);
        let v: Vec<u32> = out.lines().filter_map(|l| l.parse().ok()).collect();
        sum.0 += v.first().copied().unwrap_or(0);
        sum.1 += v.get(1).copied().unwrap_or(0);
    }
    sum
}

#[test]
fn sessions_spread_over_every_master_and_survive_a_master_failover() {
    let receiver = Receiver::start(vec![Reply::status(200)]);
    let mut c = Cluster::start(3, RedisCluster::start(3), &["--allow-unsigned-callbacks"]);
    let mut app = App::new(demo_conf(), 61);

    // Every session type, and a callback.
    let a = app.run(&Session::start(&c.front, &student_card("cl-1")).u);
    assert_eq!(a.status, 200, "{}", a.body);
    let with_callback = post_json(
        &format!("{}/session", c.front.url),
        &json!({"request": disclosure(), "callbackUrl": format!("{}/cb", receiver.url)}),
    );
    assert_eq!(with_callback.status, 200, "{}", with_callback.body);
    let with_callback = Session::from_start(&c.front, with_callback.json());
    app.run(&with_callback.u);
    assert_eq!(with_callback.disclosed(), json!("cl-1"));
    let got = receiver.wait_for(1);
    assert!(got[0].body.contains("DONE"), "{}", got[0].body);
    let sign = Session::start(&c.front, &signature());
    assert_eq!(
        app.run(&sign.u).json()["proofStatus"],
        json!("VALID"),
        "signature"
    );

    // Sessions land on every master.
    for _ in 0..40 {
        Session::start(&c.front, &disclosure());
    }
    for m in c.redis.masters() {
        let keys: u64 = c.redis.node(m.port).cli(&["DBSIZE"]).parse().unwrap();
        eprintln!("master {} holds {keys} keys", m.port);
        assert!(keys > 0, "master {} holds nothing", m.port);
    }

    // The guest registry works in the cluster: every replica reports the active guest.
    eventually(
        || {
            let (ok, out) = guest_status(&c);
            let status: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            ok && status["active"].is_string()
                && status["replicas"].as_array().is_some_and(|r| r.len() == 3)
        },
        || format!("guest status: {:?}", guest_status(&c)),
    );
    assert_eq!(subscribers(&c), (3, 3));

    // Kill the master of a connected session, with another session waiting and load running.
    let waiting = Session::start(&c.front, &disclosure());
    let connected = Session::start(&c.front, &disclosure());
    let conn = app.connect(&connected.u);
    assert_eq!(conn.status, 200, "{}", conn.body);
    let (_, slot) = session_key(&c, &connected);
    let old = c.redis.owner(slot);
    let load = Load::start(&c.front);
    std::thread::sleep(Duration::from_millis(300));
    let killed = c.redis.kill(old.port);
    let killed_at = Instant::now();
    let a = app.respond(&connected.u, &conn.json()["request"]);
    eprintln!(
        "proofs sent right after the kill: {} after {:?}",
        a.status,
        killed_at.elapsed()
    );
    assert_eq!(
        (a.status, a.json()["proofStatus"].clone()),
        (200, json!("VALID")),
        "{}",
        a.body
    );
    eventually(
        || c.redis.owner(slot).port != old.port,
        || "the slot has no new master".into(),
    );
    eprintln!("a replica took over within {:?}", killed_at.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    let report = load.finish(killed_at);
    eprintln!("load during the failover: {report:?}");
    assert!(report.first_success.is_some(), "requests succeed again");
    assert_eq!(report.lost, 0, "every session started is still there");
    assert_eq!(connected.disclosed(), json!("cl-1"));
    app.run(&waiting.u);
    assert_eq!(waiting.disclosed(), json!("cl-1"));
    let fresh = Session::start(&c.front, &disclosure());
    app.run(&fresh.u);
    assert_eq!(fresh.disclosed(), json!("cl-1"));

    // Every server replica still follows status events and guest announcements.
    eventually(
        || subscribers(&c) == (3, 3),
        || format!("subscribers: {:?}", subscribers(&c)),
    );

    // The old master comes back as a replica.
    c.redis.rejoin(killed);
    let again = Session::start(&c.front, &disclosure());
    app.run(&again.u);
    assert_eq!(again.status(), "DONE");
}

#[test]
fn a_slot_moved_to_another_master_under_load_takes_its_sessions_along() {
    let c = Cluster::start(3, RedisCluster::start(3), &[]);
    let mut app = App::new(demo_conf(), 62);
    assert_eq!(
        app.run(&Session::start(&c.front, &student_card("cl-2")).u)
            .status,
        200
    );
    let connected = Session::start(&c.front, &disclosure());
    let conn = app.connect(&connected.u);
    assert_eq!(conn.status, 200, "{}", conn.body);
    let (key, slot) = session_key(&c, &connected);
    let from = c.redis.owner(slot);
    let to = c
        .redis
        .masters()
        .into_iter()
        .find(|m| m.id != from.id)
        .expect("another master");

    let load = Load::start(&c.front);
    std::thread::sleep(Duration::from_millis(300));
    let moved_at = Instant::now();
    c.redis.migrate_slot(slot, &to);
    eprintln!("slot {slot} moved in {:?}", moved_at.elapsed());
    assert_eq!(c.redis.owner(slot).id, to.id);
    assert_eq!(
        c.redis.node(to.port).cli(&["EXISTS", &key]),
        "1",
        "the session's keys moved"
    );
    let a = app.respond(&connected.u, &conn.json()["request"]);
    assert_eq!(
        (a.status, a.json()["proofStatus"].clone()),
        (200, json!("VALID")),
        "{}",
        a.body
    );
    assert_eq!(connected.disclosed(), json!("cl-2"));
    std::thread::sleep(Duration::from_millis(300));
    let report = load.finish(moved_at);
    eprintln!("load during the move: {report:?}");
    assert_eq!((report.failed, report.lost), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_store_keeps_the_store_contract() {
    use irma_server::store::redis::{Endpoint, RedisOptions, RedisStore};
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3))
        .await
        .unwrap();
    let nodes = cluster
        .nodes
        .iter()
        .map(|n| ("127.0.0.1".to_owned(), n.port))
        .collect();
    // Plain, and sealed.
    for keys in [vec![], vec![[9u8; 32]]] {
        let options = RedisOptions {
            endpoint: Endpoint::Cluster {
                nodes: Vec::clone(&nodes),
            },
            encryption_keys: keys,
            ..RedisOptions::plain("127.0.0.1", 0)
        };
        let store = RedisStore::connect(&options).await.unwrap();
        irma_server::store::contract::check(&store).await;
    }
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}
