//! Per-request cost of running the session logic in the guest (instantiate, transition, drop)
//! against a native call of the same logic, in one run; and the status-poll transition, the
//! hottest path, both ways.
//!
//! Needs the guest: `just guest` (run by `just bench`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use irma_guest::keys::KeySource;
use irma_guest::session::{self, Ctx};
use irma_idemix::{Configuration, LoadOptions};
use irma_server::runtime::{Runtime, types};
use irma_server::schemes::KeyCache;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW_MS: i64 = 1_795_813_034_000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(n: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        f();
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    median(samples)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut conf = Configuration::load(
        &root.join("host/demo/irma_configuration"),
        LoadOptions::default(),
    )
    .unwrap();
    conf.load_private_keys(&root.join("host/demo/privatekeys"))
        .unwrap();
    let keys = Arc::new(KeyCache::from_configuration(&conf));
    // The guest built into the server.
    let runtime = Runtime::load(irma_server::embedded::GUEST, keys, 16).expect("guest loads");
    let wit_config = types::Config {
        url: "http://127.0.0.1:8088/irma/".into(),
        max_session_lifetime_secs: 900,
        session_result_lifetime_secs: 300,
        production: false,
        augment_client_return_url: false,
        allow_unsigned_callbacks: false,
        timestamp_keys: vec![],
        jwt_key: false,
        jwt_issuer: "irmaserver".into(),
    };
    let ctx = types::Context {
        now_ms: NOW_MS,
        random: vec![7; 64],
        config: wit_config,
    };
    let native_config = irma_guest::Config::default();
    let request = br#"{"@context":"https://irma.app/ld/request/disclosure/v2","disclose":[[["stateless-demo.University.studentCard.studentID"]]]}"#;
    let started = runtime.start(request, "", &ctx).unwrap().unwrap();
    let record = started.outcome.record.unwrap();
    let src: &dyn KeySource = &conf;
    let native = |event: irma_guest::Event| {
        let mut c = Ctx {
            now_ms: NOW_MS,
            rng: ChaCha20Rng::seed_from_u64(1),
            config: &native_config,
            keys: src,
            requestors: &irma_guest::permissions::AllowAll,
        };
        session::transition(&record, event, &mut c)
    };

    // `GUEST_OVERHEAD_PROFILE=<seconds>`: only status polls in the guest, for a profiler.
    if let Some(secs) = std::env::var("GUEST_OVERHEAD_PROFILE")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let until = Instant::now() + Duration::from_secs(secs);
        let mut calls = 0u64;
        while Instant::now() < until {
            runtime
                .transition(&record, &types::Event::RequestorStatus, &ctx)
                .unwrap();
            calls += 1;
        }
        println!("{calls} status polls in {secs} s");
        return;
    }

    println!("| transition | native us | guest us | guest overhead us |");
    println!("|---|---|---|---|");
    let n = 2000;
    let g = time(n, || {
        runtime
            .transition(&record, &types::Event::RequestorStatus, &ctx)
            .unwrap();
    });
    let nt = time(n, || {
        native(irma_guest::Event::RequestorStatus);
    });
    row("status poll", nt, g);
    let g = time(n, || {
        runtime
            .transition(&record, &types::Event::RequestorResult, &ctx)
            .unwrap();
    });
    let nt = time(n, || {
        native(irma_guest::Event::RequestorResult);
    });
    row("result", nt, g);
    let connect = types::ConnectRequest {
        path: "/irma/session/x/".into(),
        authorization: Some("AppAuthorization0001".into()),
        min_protocol_version: Some("2.4".into()),
        max_protocol_version: Some("2.8".into()),
    };
    let g = time(n, || {
        runtime
            .transition(&record, &types::Event::AppConnect(connect.clone()), &ctx)
            .unwrap();
    });
    let nt = time(n, || {
        native(irma_guest::Event::AppConnect(irma_guest::ConnectRequest {
            path: connect.path.clone(),
            authorization: connect.authorization.clone(),
            min_protocol_version: connect.min_protocol_version.clone(),
            max_protocol_version: connect.max_protocol_version.clone(),
        }));
    });
    row("app connect", nt, g);
    let g = time(200, || {
        runtime.start(request, "", &ctx).unwrap().unwrap();
    });
    let nt = time(200, || {
        let mut c = Ctx {
            now_ms: NOW_MS,
            rng: ChaCha20Rng::seed_from_u64(1),
            config: &native_config,
            keys: src,
            requestors: &irma_guest::permissions::AllowAll,
        };
        session::start(request, "", &mut c).unwrap();
    });
    row("start session", nt, g);
    let mut phases = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..n {
        let p = runtime.phases(&record, &types::Event::RequestorStatus, &ctx);
        for (v, d) in phases.iter_mut().zip(p) {
            v.push(d);
        }
    }
    let [a, b, c] = phases.map(median);
    println!(
        "\nstatus poll in the guest, by phase (median us): new store {:.1}, instantiate {:.1}, call {:.1}",
        a.as_secs_f64() * 1e6,
        b.as_secs_f64() * 1e6,
        c.as_secs_f64() * 1e6
    );
}

fn row(name: &str, native: Duration, guest: Duration) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "| {name} | {:.1} | {:.1} | {:.1} |",
        us(native),
        us(guest),
        us(guest) - us(native)
    );
}
