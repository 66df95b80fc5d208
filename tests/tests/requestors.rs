//! Requestors as a production `irma server` has them (irma-server.md §3): tokens, session
//! requests as HS256 and RS256 JWTs made with a JWT library, permissions, start-up validation,
//! and the JWT outputs signed with the server's key. Statuses, error names and messages as the
//! reference's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use irma_tests::keys::RsaKeys;
use irma_tests::requests::{demo_conf, disclosure, signature, student_card};
use irma_tests::wallet::App;
use irma_tests::{
    Answer, Schemes, Server, Session, fails_to_start, get, post_session, verify_rs256,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const TOKEN: &str = "s3cr3t-t0ken-of-the-shop";
const HMAC_SECRET: &[u8] = b"a shared secret of the hmac requestor";

fn now() -> i64 {
    irma_tests::wallet::now()
}

/// A person credential attribute: the global disclose permission does not cover it.
fn government_disclosure() -> Value {
    json!({"@context": "https://irma.app/ld/request/disclosure/v2",
           "disclose": [[["stateless-demo.Government.person.familyname"]]]})
}

/// A server with three requestors, one per authentication method. Globally: disclose the
/// University's attributes only, sign nothing, issue nothing; `shop` may issue student cards.
fn server(keys: &RsaKeys, extra: &[&str]) -> Server {
    let requestors = json!({
        "shop": {"auth_method": "token", "key": TOKEN,
                 "issue_perms": ["stateless-demo.University.studentCard"],
                 "host_perms": ["*.example.com"]},
        "mac": {"auth_method": "hmac", "key": STANDARD.encode(HMAC_SECRET)},
        "pk": {"auth_method": "publickey", "key_file": keys.public_pem.to_str().unwrap()}
    })
    .to_string();
    let mut flags = vec![
        "--no-auth=false",
        "--requestors",
        &requestors,
        "--disclose-perms",
        "stateless-demo.University.*",
        "--sign-perms=",
        "--issue-perms=",
    ];
    flags.extend_from_slice(extra);
    Server::start(Schemes::Demo, &flags)
}

fn jwt(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn claims(iss: &str, iat: i64, sub: &str, field: &str, request: Value) -> Value {
    json!({"iss": iss, "iat": iat, "sub": sub, field: {"request": request}})
}

fn assert_error(a: &Answer, status: u16, error: &str, message: &str) {
    assert_eq!(
        (
            a.status,
            a.error().as_str(),
            a.json()["message"].as_str().unwrap_or("")
        ),
        (status, error, message),
        "{}",
        a.body
    );
}

#[test]
fn tokens_are_compared_verbatim() {
    let keys = RsaKeys::new();
    let s = server(&keys, &[]);
    let body = disclosure().to_string();
    assert_eq!(
        post_session(&s, "application/json", Some(TOKEN), &body).status,
        200
    );
    let bearer = format!("Bearer {TOKEN}");
    assert_error(
        &post_session(&s, "application/json", Some(&bearer), &body),
        403,
        "UNAUTHORIZED",
        "",
    );
    assert_error(
        &post_session(&s, "application/json", Some("unknown"), &body),
        403,
        "UNAUTHORIZED",
        "",
    );
    assert_error(
        &post_session(&s, "application/json", None, &body),
        400,
        "INVALID_REQUEST",
        "request could not be authenticated",
    );
    assert_error(
        &post_session(&s, "application/xml", Some(TOKEN), &body),
        400,
        "INVALID_REQUEST",
        "Unsupported Content-Type: application/xml",
    );
    // Only POST /session is authenticated.
    let started = Session::from_start(
        &s,
        post_session(&s, "application/json", Some(TOKEN), &body).json(),
    );
    assert_eq!(started.status(), "INITIALIZED");
}

#[test]
fn jwt_requests_are_checked_as_jwt_go_checks_them() {
    let keys = RsaKeys::new();
    let s = server(&keys, &["--max-request-age", "60"]);
    let hmac = EncodingKey::from_secret(HMAC_SECRET);
    let rsa = EncodingKey::from_rsa_pem(&keys.private()).unwrap();
    let text = |token: &str| post_session(&s, "text/plain", None, token);
    let ok = |a: Answer| {
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a.json()["sessionPtr"]["u"].is_string());
    };
    let dis =
        |iss: &str, iat: i64| claims(iss, iat, "verification_request", "sprequest", disclosure());

    // Valid, the requestor named by `iss` or by `kid`; both algorithms; the old `sub` names.
    ok(text(&jwt(
        Algorithm::HS256,
        &hmac,
        None,
        &dis("mac", now()),
    )));
    ok(text(&jwt(
        Algorithm::HS256,
        &hmac,
        Some("mac"),
        &dis("", now()),
    )));
    ok(text(&jwt(Algorithm::RS256, &rsa, None, &dis("pk", now()))));
    ok(text(&jwt(
        Algorithm::HS256,
        &hmac,
        None,
        &claims("mac", now(), "disclosing", "sprequest", disclosure()),
    )));

    let wrong = EncodingKey::from_secret(b"another secret");
    assert_error(
        &text(&jwt(Algorithm::HS256, &wrong, None, &dis("mac", now()))),
        400,
        "INVALID_REQUEST",
        "signature is invalid",
    );
    let other_rsa = RsaKeys::new();
    let other = EncodingKey::from_rsa_pem(&other_rsa.private()).unwrap();
    let a = text(&jwt(Algorithm::RS256, &other, None, &dis("pk", now())));
    assert_eq!(
        (a.status, a.error().as_str()),
        (400, "INVALID_REQUEST"),
        "{}",
        a.body
    );
    assert_error(
        &text(&jwt(Algorithm::HS256, &hmac, None, &dis("mac", now() - 61))),
        403,
        "UNAUTHORIZED",
        "jwt too old",
    );
    assert_error(
        &text(&jwt(
            Algorithm::HS256,
            &hmac,
            None,
            &dis("mac", now() + 100),
        )),
        400,
        "INVALID_REQUEST",
        "token used before issued",
    );
    assert_error(
        &text(&jwt(
            Algorithm::HS256,
            &hmac,
            None,
            &claims(
                "mac",
                now(),
                "revocation_request",
                "sprequest",
                disclosure(),
            ),
        )),
        400,
        "INVALID_REQUEST",
        "Invalid session type",
    );
    assert_error(
        &text(&jwt(Algorithm::HS256, &hmac, None, &dis("nobody", now()))),
        400,
        "INVALID_REQUEST",
        "Unknown requestor: nobody",
    );
    // A token requestor cannot sign JWTs; an HS256 JWT names an RS256 requestor.
    assert_error(
        &text(&jwt(Algorithm::HS256, &hmac, None, &dis("shop", now()))),
        400,
        "INVALID_REQUEST",
        "Unknown requestor: shop",
    );
    let mut expired = dis("mac", now());
    expired["exp"] = json!(now() - 10);
    let a = text(&jwt(Algorithm::HS256, &hmac, None, &expired));
    assert_eq!(
        (a.status, a.error().as_str()),
        (400, "INVALID_REQUEST"),
        "{}",
        a.body
    );
    let mut early = dis("mac", now());
    early["nbf"] = json!(now() + 100);
    let a = text(&jwt(Algorithm::HS256, &hmac, None, &early));
    assert_eq!(
        (a.status, a.error().as_str()),
        (400, "INVALID_REQUEST"),
        "{}",
        a.body
    );
    // `alg: none`: no authenticator applies.
    let none = format!(
        "{}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(dis("mac", now()).to_string())
    );
    assert_error(
        &text(&none),
        400,
        "INVALID_REQUEST",
        "request could not be authenticated",
    );
    // A JWT with an Authorization header, or JSON without one: no authenticator either.
    let good = jwt(Algorithm::HS256, &hmac, None, &dis("mac", now()));
    assert_error(
        &post_session(&s, "text/plain", Some(TOKEN), &good),
        400,
        "INVALID_REQUEST",
        "request could not be authenticated",
    );
}

#[test]
fn permissions_are_the_global_lists_joined_with_the_requestors_own() {
    let keys = RsaKeys::new();
    let s = server(&keys, &[]);
    let hmac = EncodingKey::from_secret(HMAC_SECRET);
    let as_mac = |sub: &str, field: &str, request: Value| {
        post_session(
            &s,
            "text/plain",
            None,
            &jwt(
                Algorithm::HS256,
                &hmac,
                None,
                &claims("mac", now(), sub, field, request),
            ),
        )
    };
    let as_shop =
        |request: &Value| post_session(&s, "application/json", Some(TOKEN), &request.to_string());
    // Disclosure: the global list covers the University, not the Government.
    assert_eq!(
        as_mac("verification_request", "sprequest", disclosure()).status,
        200
    );
    assert_error(
        &as_mac("verification_request", "sprequest", government_disclosure()),
        403,
        "UNAUTHORIZED",
        "stateless-demo.Government.person.familyname",
    );
    // Issuance: only the shop's own list allows it, and only student cards.
    assert_eq!(as_shop(&student_card("s1")).status, 200);
    assert_error(
        &as_mac("issue_request", "iprequest", student_card("s1")),
        403,
        "UNAUTHORIZED",
        "",
    );
    let person = json!({"@context": "https://irma.app/ld/request/issuance/v2",
        "credentials": [{"credential": "stateless-demo.Government.person",
                         "attributes": {"firstname": "A", "familyname": "Person",
                                        "dateofbirth": "2000-01-01", "over18": "yes", "bsn": "1"}}]});
    assert_error(
        &as_shop(&person),
        403,
        "UNAUTHORIZED",
        "stateless-demo.Government.person",
    );
    // Signing: no one may; an empty list refuses without naming anything.
    assert_error(&as_shop(&signature()), 403, "UNAUTHORIZED", "");
    // `host` puts another host in the app's URL, where the requestor may.
    let mut hosted = disclosure();
    hosted["host"] = json!("irma.example.com");
    let a = as_shop(&hosted);
    assert_eq!(a.status, 200, "{}", a.body);
    let u = a.json()["sessionPtr"]["u"].as_str().unwrap().to_owned();
    assert!(
        u.starts_with("http://irma.example.com/irma/session/"),
        "{u}"
    );
    hosted["host"] = json!("evil.com");
    assert_error(
        &as_shop(&hosted),
        403,
        "UNAUTHORIZED",
        "host evil.com is not permitted",
    );
    // Issuance with disclosure checks the disclosure against the disclose list.
    let mut with_disclosure = student_card("s2");
    with_disclosure["disclose"] = government_disclosure()["disclose"].clone();
    assert_error(
        &as_shop(&with_disclosure),
        403,
        "UNAUTHORIZED",
        "stateless-demo.Government.person.familyname",
    );
}

#[test]
fn start_up_refuses_permissions_that_cannot_be_right() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--disclose-perms", "stateless-demo.*.x"],
            "a * may only stand alone",
        ),
        (&["--disclose-perms", "nope.*"], "unknown scheme nope"),
        (
            &["--disclose-perms", "stateless-demo.University.studentCard"],
            "4 parts",
        ),
        (
            &[
                "--issue-perms",
                "stateless-demo.University.studentCard.level",
            ],
            "3 parts",
        ),
        (
            &["--issue-perms", "stateless-demo.University.nothing"],
            "unknown credential type",
        ),
        (
            &[
                "--disclose-perms",
                "stateless-demo.University.studentCard.nope",
            ],
            "unknown attribute",
        ),
        (
            &["--revoke-perms", "stateless-demo.University.studentCard"],
            "revocation",
        ),
    ];
    let err = fails_to_start(
        Schemes::Demo,
        &["--issue-perms", "stateless-demo.University.*"],
    );
    assert!(
        err.contains("no private key of issuer stateless-demo.University"),
        "{err}"
    );
    for (flags, want) in cases {
        let err = fails_to_start(Schemes::Demo, flags);
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    let err = fails_to_start(
        Schemes::Demo,
        &[
            "--no-auth=false",
            "--requestors",
            r#"{"a":{"auth_method":"magic","key":"k"}}"#,
        ],
    );
    assert!(err.contains("magic"), "{err}");
    let err = fails_to_start(
        Schemes::Demo,
        &[
            "--no-auth=false",
            "--requestors",
            r#"{"a":{"auth_method":"token"}}"#,
        ],
    );
    assert!(err.contains("has no key"), "{err}");
    let err = fails_to_start(Schemes::Demo, &["--no-auth=false"]);
    assert!(err.contains("no requestors"), "{err}");
}

#[test]
fn results_are_signed_with_the_servers_jwt_key() {
    let jwt_key = RsaKeys::new();
    let server = Server::start(
        Schemes::Demo,
        &[
            "--jwt-privkey-file",
            jwt_key.private_pem.to_str().unwrap(),
            "--jwt-issuer",
            "test-issuer",
        ],
    );
    let public = get(&format!("{}/publickey", server.url));
    assert_eq!(public.status, 200);
    assert_eq!(
        public.body.trim(),
        String::from_utf8(jwt_key.public()).unwrap().trim()
    );

    let mut app = App::new(demo_conf(), 31);
    assert_eq!(
        app.run(&Session::start(&server, &student_card("s31")).u)
            .status,
        200
    );
    let s = Session::start(&server, &json!({"validity": 77, "request": disclosure()}));
    assert_eq!(app.run(&s.u).status, 200);
    let r = get(&format!("{}/session/{}/result-jwt", server.url, s.token));
    assert_eq!(r.status, 200, "{}", r.body);
    let c = verify_rs256(&r.body, public.body.as_bytes());
    assert_eq!(
        (
            &c["sub"],
            &c["iss"],
            &c["status"],
            &c["proofStatus"],
            &c["token"]
        ),
        (
            &json!("disclosing_result"),
            &json!("test-issuer"),
            &json!("DONE"),
            &json!("VALID"),
            &json!(s.token)
        )
    );
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 77);
    assert_eq!(c["disclosed"][0][0]["rawvalue"], "s31");
    let p = get(&format!("{}/session/{}/getproof", server.url, s.token));
    let c = verify_rs256(&p.body, public.body.as_bytes());
    assert_eq!(
        (&c["sub"], &c["status"], &c["attributes"]),
        (
            &json!("disclosure_result"),
            &json!("VALID"),
            &json!({"stateless-demo.University.studentCard.studentID": "s31"})
        )
    );
}

#[test]
fn without_a_jwt_key_nothing_is_signed_and_nothing_goes_out_unsigned() {
    let server = Server::start(Schemes::Demo, &[]);
    let a = get(&format!("{}/publickey", server.url));
    assert_eq!((a.status, a.error().as_str()), (501, "UNSUPPORTED"));
    let s = Session::start(&server, &disclosure());
    for path in ["result-jwt", "getproof"] {
        let a = get(&format!("{}/session/{}/{path}", server.url, s.token));
        assert_error(&a, 500, "EXCEPTION", "JWT signing not supported");
    }
    for extended in [
        json!({"callbackUrl": "http://127.0.0.1:9/cb", "request": disclosure()}),
        json!({"nextSession": {"url": "http://127.0.0.1:9/next"}, "request": disclosure()}),
    ] {
        let a = irma_tests::post_json(&format!("{}/session", server.url), &extended);
        assert_eq!(
            (a.status, a.error().as_str()),
            (501, "UNSUPPORTED"),
            "{}",
            a.body
        );
        assert!(
            a.json()["message"]
                .as_str()
                .unwrap()
                .contains("allow_unsigned_callbacks")
        );
    }
    let a = irma_tests::post_json(
        &format!("{}/session", server.url),
        &json!({"nextSession": {"url": ""}, "request": disclosure()}),
    );
    assert_eq!(
        (a.status, a.error().as_str()),
        (400, "INVALID_REQUEST"),
        "{}",
        a.body
    );
}
