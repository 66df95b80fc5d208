//! Requestors (irma-server.md §3): who may start sessions, how each proves it (a token, or a
//! session request as an HS256 or RS256 JWT), and what each may ask for. Built once at start-up
//! from the flags and checked against the schemes; the guest reads permissions through its WIT
//! import and decides per request.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use axum::http::{HeaderMap, header};
use base64::Engine;
use irma_idemix::Configuration;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::http::errors::{HttpError, Kind};

/// Permission lists: global ones, or one requestor's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lists {
    pub disclose: Vec<String>,
    pub sign: Vec<String>,
    pub issue: Vec<String>,
    pub revoke: Vec<String>,
    pub hosts: Vec<String>,
}

/// How a requestor authenticates.
enum Method {
    /// The `Authorization` header, verbatim.
    Token(String),
    /// An HS256 JWT with this secret.
    Hmac(DecodingKey),
    /// An RS256 JWT verified with this public key.
    PublicKey(DecodingKey),
}

struct Requestor {
    method: Method,
    lists: Lists,
}

/// One entry of `--requestors`, as `irma server` reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestorConfig {
    pub auth_method: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub disclose_perms: Vec<String>,
    #[serde(default)]
    pub sign_perms: Vec<String>,
    #[serde(default)]
    pub issue_perms: Vec<String>,
    #[serde(default)]
    pub revoke_perms: Vec<String>,
    #[serde(default)]
    pub host_perms: Vec<String>,
}

pub struct Requestors {
    /// `false` with `--no-auth`: every request is the anonymous requestor `""`.
    auth: bool,
    named: BTreeMap<String, Requestor>,
    global: Lists,
    /// Seconds a requestor JWT is accepted after its `iat`.
    max_request_age: i64,
}

/// A `POST /session` whose sender is known: who, and the session request (JSON).
#[derive(Debug)]
pub struct Authenticated {
    pub requestor: String,
    pub request: Vec<u8>,
}

fn invalid(message: impl Into<String>) -> HttpError {
    HttpError::new(Kind::InvalidRequest, message)
}

fn not_authenticated() -> HttpError {
    invalid("request could not be authenticated")
}

/// A secret in base64, standard or URL alphabet, padded or not.
fn decode_secret(key: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let key = key.trim();
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(key).ok())
}

impl Requestors {
    /// Without authentication (`--no-auth`): only the global lists apply.
    pub fn anonymous(global: Lists) -> Requestors {
        Requestors {
            auth: false,
            named: BTreeMap::new(),
            global,
            max_request_age: 300,
        }
    }

    /// With authentication: the configured requestors, each with its method and key.
    pub fn configured(
        config: BTreeMap<String, RequestorConfig>,
        global: Lists,
        max_request_age: i64,
    ) -> Result<Requestors> {
        if config.is_empty() {
            bail!("no requestors configured; use --no-auth or --requestors");
        }
        let mut named = BTreeMap::new();
        for (name, r) in config {
            let key = match (r.key.filter(|k| !k.is_empty()), &r.key_file) {
                (Some(k), None) => k,
                (None, Some(file)) => std::fs::read_to_string(file)
                    .with_context(|| format!("requestor {name}: key_file {}", file.display()))?,
                (Some(_), Some(_)) => {
                    bail!("requestor {name}: give either key or key_file, not both")
                }
                (None, None) => bail!("requestor {name} has no key"),
            };
            let method = match r.auth_method.as_str() {
                "token" => Method::Token(key),
                "hmac" => Method::Hmac(DecodingKey::from_secret(
                    &decode_secret(&key)
                        .ok_or_else(|| anyhow!("requestor {name}: the hmac key is not base64"))?,
                )),
                "publickey" => {
                    Method::PublicKey(DecodingKey::from_rsa_pem(key.as_bytes()).map_err(|e| {
                        anyhow!("requestor {name}: the public key is not an RSA PEM key: {e}")
                    })?)
                }
                other => bail!(
                    "requestor {name}: auth_method {other:?} is not one of token, hmac, publickey"
                ),
            };
            let lists = Lists {
                disclose: r.disclose_perms,
                sign: r.sign_perms,
                issue: r.issue_perms,
                revoke: r.revoke_perms,
                hosts: r.host_perms,
            };
            named.insert(name, Requestor { method, lists });
        }
        Ok(Requestors {
            auth: true,
            named,
            global,
            max_request_age,
        })
    }

    /// The lists of requestor `name`: the global ones joined with its own.
    pub fn permissions(&self, name: &str) -> Lists {
        let own = self.named.get(name).map(|r| &r.lists);
        let join = |global: &[String], own: Option<&Vec<String>>| -> Vec<String> {
            let mut all = global.to_vec();
            all.extend(own.into_iter().flatten().cloned());
            all
        };
        Lists {
            disclose: join(&self.global.disclose, own.map(|l| &l.disclose)),
            sign: join(&self.global.sign, own.map(|l| &l.sign)),
            issue: join(&self.global.issue, own.map(|l| &l.issue)),
            revoke: join(&self.global.revoke, own.map(|l| &l.revoke)),
            hosts: join(&self.global.hosts, own.map(|l| &l.hosts)),
        }
    }

    /// Who sent `POST /session`, by the authenticator rules of §3.1, and the session request
    /// it carries (from the JWT's claims for hmac and publickey).
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Authenticated, HttpError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let json = content_type.starts_with("application/json");
        let text = content_type.starts_with("text/plain");
        if !json && !text {
            return Err(invalid(format!("Unsupported Content-Type: {content_type}")));
        }
        match (self.auth, json, authorization) {
            (false, true, None) => Ok(Authenticated {
                requestor: String::new(),
                request: body.to_vec(),
            }),
            (true, true, Some(token)) => self
                .named
                .iter()
                .find(|(_, r)| matches!(&r.method, Method::Token(k) if k == token))
                .map(|(name, _)| Authenticated {
                    requestor: name.clone(),
                    request: body.to_vec(),
                })
                .ok_or_else(|| HttpError::new(Kind::Unauthorized, "")),
            (true, false, None) => self.jwt(body, now),
            _ => Err(not_authenticated()),
        }
    }

    /// A session request as a JWT (§3.2).
    fn jwt(&self, body: &[u8], now: i64) -> Result<Authenticated, HttpError> {
        let token = std::str::from_utf8(body)
            .map_err(|_| not_authenticated())?
            .trim();
        let header = jsonwebtoken::decode_header(token).map_err(|_| not_authenticated())?;
        let wanted = |r: &Requestor| {
            matches!(
                (header.alg, &r.method),
                (Algorithm::HS256, Method::Hmac(_)) | (Algorithm::RS256, Method::PublicKey(_))
            )
        };
        // No requestor authenticates this way: no authenticator applies.
        if !self.named.values().any(wanted) {
            return Err(not_authenticated());
        }
        let name = match header.kid.clone() {
            Some(kid) => kid,
            None => unverified_claims(token)?
                .get("iss")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        };
        let requestor = self
            .named
            .get(&name)
            .filter(|r| wanted(r))
            .ok_or_else(|| invalid(format!("Unknown requestor: {name}")))?;
        let key = match &requestor.method {
            Method::Hmac(k) | Method::PublicKey(k) => k,
            Method::Token(_) => unreachable!("filtered above"),
        };
        let mut validation = Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        validation.validate_nbf = true;
        let claims =
            jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, key, &validation)
                .map_err(|e| invalid(jwt_error(&e)))?
                .claims;
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or_else(|| invalid("the JWT has no iat"))?;
        if iat > now {
            return Err(invalid("token used before issued"));
        }
        if iat + self.max_request_age < now {
            return Err(HttpError::new(Kind::Unauthorized, "jwt too old"));
        }
        let field = match claims.get("sub").and_then(Value::as_str).unwrap_or("") {
            "verification_request" | "disclosing" => "sprequest",
            "signature_request" | "signing" => "absrequest",
            "issue_request" | "issuing" => "iprequest",
            _ => return Err(invalid("Invalid session type")),
        };
        let request = claims
            .get(field)
            .filter(|r| r.get("request").is_some_and(Value::is_object))
            .ok_or_else(|| invalid(format!("the JWT has no {field} with a request")))?;
        Ok(Authenticated {
            requestor: name,
            request: serde_json::to_vec(request).expect("serializes"),
        })
    }

    /// Start-up checks of every permission (§3.3): form, existence in the schemes, and for
    /// issuance the issuer's private key (unless `skip_private_keys_check`).
    pub fn validate(&self, conf: &Configuration, skip_private_keys_check: bool) -> Result<()> {
        let lists = std::iter::once(("global", &self.global))
            .chain(self.named.iter().map(|(n, r)| (n.as_str(), &r.lists)));
        for (who, l) in lists {
            if !l.revoke.is_empty() {
                bail!(
                    "{who}: revoke permissions need a revocation server, which this server does not support"
                );
            }
            for p in l.disclose.iter().chain(&l.sign) {
                check_permission(conf, p, 4, false).with_context(|| format!("{who}: {p}"))?;
            }
            for p in &l.issue {
                check_permission(conf, p, 3, !skip_private_keys_check)
                    .with_context(|| format!("{who}: issue permission {p}"))?;
            }
        }
        Ok(())
    }

    /// Whether requestors must authenticate.
    pub fn authenticated(&self) -> bool {
        self.auth
    }

    /// The global issue permissions.
    pub fn global(&self) -> &Lists {
        &self.global
    }
}

/// The claims of a JWT, read without checking its signature (to learn who signed it).
fn unverified_claims(token: &str) -> Result<serde_json::Map<String, Value>, HttpError> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = token.split('.').nth(1).ok_or_else(not_authenticated)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| not_authenticated())?;
    serde_json::from_slice(&bytes).map_err(|_| not_authenticated())
}

/// A JWT refusal in the words of the reference (jwt-go) where they differ.
fn jwt_error(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as E;
    match e.kind() {
        E::InvalidSignature => "signature is invalid".into(),
        E::ExpiredSignature => "token is expired".into(),
        E::ImmatureSignature => "token is not valid yet".into(),
        _ => e.to_string(),
    }
}

/// One permission: at most one `*`, only as its last part; `parts` parts exactly (attributes
/// 4, credentials 3) or fewer before a `*`; everything it names exists; for issuance the
/// issuer's private key is present.
fn check_permission(
    conf: &Configuration,
    p: &str,
    parts: usize,
    need_private_key: bool,
) -> Result<()> {
    let names: Vec<&str> = p.split('.').collect();
    let stars = names.iter().filter(|n| n.contains('*')).count();
    let wildcard = names.last() == Some(&"*");
    if stars > 1 || (stars == 1 && !wildcard) {
        bail!("a * may only stand alone, as the last part");
    }
    let named = if wildcard {
        &names[..names.len() - 1]
    } else {
        &names[..]
    };
    let fits = if wildcard {
        named.len() < parts
    } else {
        named.len() == parts
    };
    if !fits {
        bail!("it should have {parts} parts, or fewer before a *");
    }
    if let Some(scheme) = named.first()
        && !conf.schemes.contains_key(*scheme)
    {
        bail!("unknown scheme {scheme}");
    }
    let issuer = (named.len() >= 2).then(|| format!("{}.{}", named[0], named[1]));
    if let Some(issuer) = &issuer
        && !conf
            .credential_types
            .values()
            .any(|c| &c.issuer_id() == issuer)
    {
        bail!("unknown issuer {issuer}");
    }
    if named.len() >= 3 {
        let id = named[..3].join(".");
        let ct = conf
            .credential_types
            .get(&id)
            .ok_or_else(|| anyhow!("unknown credential type {id}"))?;
        if named.len() == 4 && ct.base_index(named[3]).is_none() {
            bail!("unknown attribute {p}");
        }
    }
    if let Some(issuer) = issuer
        && need_private_key
        && conf.latest_private_key(&issuer).is_err()
    {
        bail!("no private key of issuer {issuer} (--privkeys; or --skip-private-keys-check)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_every_base64_form() {
        let want = b"secret!?".to_vec();
        for k in ["c2VjcmV0IT8=", "c2VjcmV0IT8", "c2VjcmV0IT8=", "c2VjcmV0IT8"] {
            assert_eq!(decode_secret(k), Some(want.clone()), "{k}");
        }
        // `?>` encodes differently in the two alphabets.
        assert_eq!(decode_secret("Pz4="), Some(b"?>".to_vec()));
        assert_eq!(decode_secret("Pz4"), Some(b"?>".to_vec()));
        assert_eq!(decode_secret("Pz4-"), Some(vec![0x3f, 0x3e, 0x3e]));
        assert_eq!(decode_secret("Pz4+"), Some(vec![0x3f, 0x3e, 0x3e]));
        assert_eq!(decode_secret("not base64!"), None);
    }

    #[test]
    fn own_lists_join_the_global_ones() {
        let mut config = BTreeMap::new();
        config.insert(
            "shop".to_owned(),
            serde_json::from_value::<RequestorConfig>(serde_json::json!({
                "auth_method": "token", "key": "k", "issue_perms": ["a.b.c"]
            }))
            .unwrap(),
        );
        let global = Lists {
            disclose: vec!["*".into()],
            issue: vec!["x.y.z".into()],
            ..Lists::default()
        };
        let r = Requestors::configured(config, global, 300).unwrap();
        let p = r.permissions("shop");
        assert_eq!(p.issue, vec!["x.y.z", "a.b.c"]);
        assert_eq!(p.disclose, vec!["*"]);
        assert_eq!(r.permissions("nobody").issue, vec!["x.y.z"]);
    }
}
