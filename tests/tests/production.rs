//! A production deployment as the Go server's users have one, written as an `irmaserver.yml`:
//! requestors with all three authentication methods and their permissions, a JWT key, TLS on
//! the requestor listener and on a separate client listener, Redis, SSE. The server starts from
//! that file alone, and requestors and the app run their sessions against it over HTTPS.

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use irma_tests::keys::{RsaKeys, tls_certificates};
use irma_tests::redis::Redis;
use irma_tests::requests::{demo_conf, disclosure, signature, student_card};
use irma_tests::wallet::App;
use irma_tests::{
    Server, Session, free_port, get, http, post_session, root, server_binary, trust, verify_rs256,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const TOKEN: &str = "production-token-of-the-shop";
const HMAC_SECRET: &[u8] = b"the production hmac secret";

fn jwt(
    alg: Algorithm,
    key: &EncodingKey,
    iss: &str,
    sub: &str,
    field: &str,
    request: Value,
) -> String {
    let claims = json!({"iss": iss, "iat": irma_tests::wallet::now(), "sub": sub, field: {"request": request}});
    jsonwebtoken::encode(&Header::new(alg), &claims, key).unwrap()
}

#[test]
fn a_production_irmaserver_yml_starts_the_server_and_sessions_run_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_certificates(dir.path());
    trust(&std::fs::read(&tls.ca).unwrap());
    let jwt_key = RsaKeys::new();
    let requestor_key = RsaKeys::new();
    let redis = Redis::start();
    let (port, client_port) = (free_port(), free_port());
    let demo = root().join("host/demo");
    let p = |p: &std::path::Path| p.display().to_string();
    let yml = format!(
        r#"# As a Go irma server would be deployed.
production: true
listen_addr: 127.0.0.1
port: {port}
client_port: {client_port}
url: "https://127.0.0.1:port"
schemes_path: {schemes}
privkeys: {privkeys}
tls_cert_file: {cert}
tls_privkey_file: {key}
client_tls_cert_file: {cert}
client_tls_privkey_file: {key}
no_auth: false
requestors:
  shop:
    auth_method: token
    key: {TOKEN}
    issue_perms: ["stateless-demo.University.studentCard"]
  backend:
    auth_method: hmac
    key: {hmac}
  signer:
    auth_method: publickey
    key_file: {public}
    sign_perms: ["stateless-demo.University.*"]
disclose_perms: ["stateless-demo.*"]
sign_perms: []
jwt_privkey_file: {jwt}
jwt_issuer: production-test
max_request_age: 120
sse: true
store_type: redis
redis_addr: "{redis}"
redis_allow_empty_password: true
redis_no_tls: true
no_email: true
"#,
        schemes = p(&demo.join("irma_configuration")),
        privkeys = p(&demo.join("privatekeys")),
        cert = p(&tls.cert),
        key = p(&tls.key),
        hmac = STANDARD.encode(HMAC_SECRET),
        public = p(&requestor_key.public_pem),
        jwt = p(&jwt_key.private_pem),
        redis = redis.addr(),
    );
    let config = dir.path().join("irmaserver.yml");
    std::fs::write(&config, yml).unwrap();
    let mut cmd = Command::new(server_binary());
    cmd.arg("--config").arg(&config).current_dir(dir.path());
    let _server = Server::run(cmd, port);
    let front = Server::external(&format!("https://127.0.0.1:{port}"));
    let apps = format!("https://127.0.0.1:{client_port}");

    // Issuance by the token requestor; the app on the client listener, over TLS.
    let mut app = App::new(demo_conf(), 91);
    let a = post_session(
        &front,
        "application/json",
        Some(TOKEN),
        &student_card("s91").to_string(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let s = Session::from_start(&front, a.json());
    assert!(s.u.starts_with(&format!("{apps}/irma/session/")), "{}", s.u);
    assert_eq!(app.run(&s.u).status, 200);
    assert_eq!(s.result()["status"], "DONE");

    // Disclosure asked by an HS256 JWT; its result as a JWT signed with the server's key.
    let hmac = EncodingKey::from_secret(HMAC_SECRET);
    let body = jwt(
        Algorithm::HS256,
        &hmac,
        "backend",
        "verification_request",
        "sprequest",
        disclosure(),
    );
    let a = post_session(&front, "text/plain", None, &body);
    assert_eq!(a.status, 200, "{}", a.body);
    let s = Session::from_start(&front, a.json());
    assert_eq!(app.run(&s.u).json(), json!({"proofStatus": "VALID"}));
    let public = get(&format!("{}/publickey", front.url)).body;
    let signed = get(&format!("{}/session/{}/result-jwt", front.url, s.token)).body;
    let claims = verify_rs256(&signed, public.as_bytes());
    assert_eq!(
        (&claims["iss"], &claims["proofStatus"]),
        (&json!("production-test"), &json!("VALID"))
    );

    // A signature asked by an RS256 JWT of the requestor allowed to.
    let rsa = EncodingKey::from_rsa_pem(&requestor_key.private()).unwrap();
    let body = jwt(
        Algorithm::RS256,
        &rsa,
        "signer",
        "signature_request",
        "absrequest",
        signature(),
    );
    let a = post_session(&front, "text/plain", None, &body);
    assert_eq!(a.status, 200, "{}", a.body);
    let s = Session::from_start(&front, a.json());
    assert_eq!(app.run(&s.u).status, 200);
    assert_eq!(s.result()["proofStatus"], "VALID");
    // ... and refused to the one that is not (the global sign list is empty).
    let body = jwt(
        Algorithm::HS256,
        &hmac,
        "backend",
        "signature_request",
        "absrequest",
        signature(),
    );
    assert_eq!(post_session(&front, "text/plain", None, &body).status, 403);

    // Production: no anonymous requestors; issuance only where permitted.
    assert_eq!(
        post_session(&front, "application/json", None, &disclosure().to_string()).status,
        400
    );
    let body = jwt(
        Algorithm::HS256,
        &hmac,
        "backend",
        "issue_request",
        "iprequest",
        student_card("x"),
    );
    assert_eq!(post_session(&front, "text/plain", None, &body).status, 403);

    // Each listener serves its own routes only.
    let a = get(&format!(
        "{}/irma/session/{}/status",
        front.url,
        s.u.rsplit('/').next().unwrap()
    ));
    assert_eq!(a.status, 404);
    let a = http(
        "POST",
        &format!("{apps}/session"),
        &[
            ("Content-Type", "application/json"),
            ("Authorization", TOKEN),
        ],
        Some("{}"),
    );
    assert_eq!(a.status, 404);
    // And the sessions are in Redis.
    let ct = s.u.rsplit('/').next().unwrap();
    assert!(redis.summary(&format!("session:{ct}")).contains("DONE"));
}
