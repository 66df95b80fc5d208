//! The command line, compatible with `irma server`: the same flag names (and short forms), each
//! also settable as `IRMASERVER_<FLAG>` in the environment.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{ArgAction, Parser};
use serde::Deserialize;

#[derive(Debug, Clone, Parser)]
// Repeated flags override earlier ones, as with `irma server` (pflag).
#[command(
    name = "irma-server",
    version,
    args_override_self = true,
    about = "A stateless IRMA/Yivi server; session logic runs as a WebAssembly component"
)]
pub struct Args {
    /// Address to listen on.
    #[arg(
        short = 'l',
        long,
        env = "IRMASERVER_LISTEN_ADDR",
        default_value = "0.0.0.0"
    )]
    pub listen_addr: IpAddr,
    /// Port to listen on.
    #[arg(short = 'p', long, env = "IRMASERVER_PORT", default_value_t = 8088)]
    pub port: u16,
    /// External URL of this server, as apps reach it (`:port` is replaced; `/irma/` appended).
    #[arg(short = 'u', long, env = "IRMASERVER_URL")]
    pub url: Option<String>,
    /// Folder of schemes (irma_configuration).
    #[arg(short = 's', long, env = "IRMASERVER_SCHEMES_PATH")]
    pub schemes_path: PathBuf,
    /// Folder of issuer private keys (`<scheme>.<issuer>[.<counter>].xml`).
    #[arg(short = 'k', long, env = "IRMASERVER_PRIVKEYS")]
    pub privkeys: Option<PathBuf>,
    /// Minutes between scheme updates (accepted for compatibility; schemes are not downloaded).
    #[arg(long, env = "IRMASERVER_SCHEMES_UPDATE", default_value_t = 60)]
    pub schemes_update: u32,
    /// Disable requestor authentication (default: on, unless --production).
    #[arg(long, env = "IRMASERVER_NO_AUTH", num_args = 0..=1, default_missing_value = "true")]
    pub no_auth: Option<bool>,
    /// Requestors as JSON: `{"name": {"auth_method": "token", "key": "..."}}`.
    #[arg(long, env = "IRMASERVER_REQUESTORS")]
    pub requestors: Option<String>,
    /// Enable server-sent events.
    #[arg(long, env = "IRMASERVER_SSE")]
    pub sse: bool,
    /// Minutes a session may last.
    #[arg(long, env = "IRMASERVER_MAX_SESSION_LIFETIME", default_value_t = 15)]
    pub max_session_lifetime: u32,
    /// Minutes a finished session's result is kept.
    #[arg(long, env = "IRMASERVER_SESSION_RESULT_LIFETIME", default_value_t = 5)]
    pub session_result_lifetime: u32,
    /// Permit callbackUrl without a JWT private key.
    #[arg(long, env = "IRMASERVER_ALLOW_UNSIGNED_CALLBACKS")]
    pub allow_unsigned_callbacks: bool,
    /// Permit augmentReturnUrl.
    #[arg(long, env = "IRMASERVER_AUGMENT_CLIENT_RETURN_URL")]
    pub augment_client_return_url: bool,
    /// Production mode: stricter defaults, devMode false in requests.
    #[arg(long, env = "IRMASERVER_PRODUCTION")]
    pub production: bool,
    /// Session store: `memory`.
    #[arg(long, env = "IRMASERVER_STORE_TYPE", default_value = "memory")]
    pub store_type: String,
    /// The guest component to run (default: the one this workspace builds).
    #[arg(long, env = "IRMASERVER_GUEST")]
    pub guest: Option<PathBuf>,
    /// Guest instances that may run at once (sizes the instance pool).
    #[arg(long, env = "IRMASERVER_GUEST_CONCURRENCY", default_value_t = 64)]
    pub guest_concurrency: u32,
    /// Ed25519 public keys (hex) of trusted timestamp servers, comma-separated.
    #[arg(long, env = "IRMASERVER_TIMESTAMP_KEYS", value_delimiter = ',')]
    pub timestamp_keys: Vec<String>,
    /// More logging: -v debug, -vv trace.
    #[arg(short = 'v', long, action = ArgAction::Count)]
    pub verbose: u8,
    /// Log only warnings and errors.
    #[arg(short = 'q', long, env = "IRMASERVER_QUIET")]
    pub quiet: bool,
    /// Log as JSON.
    #[arg(long, env = "IRMASERVER_LOG_JSON")]
    pub log_json: bool,
}

#[derive(Debug, Deserialize)]
struct RequestorConfig {
    auth_method: String,
    #[serde(default)]
    key: Option<String>,
}

impl Args {
    /// The app-facing base URL, normalized as `irma server` does: trailing `/`, then `irma/`.
    pub fn app_url(&self) -> String {
        let base = match &self.url {
            Some(u) if !u.is_empty() => u.replace(":port", &format!(":{}", self.port)),
            _ => {
                let host = if self.listen_addr.is_unspecified() {
                    "127.0.0.1".to_owned()
                } else {
                    self.listen_addr.to_string()
                };
                format!("http://{host}:{}", self.port)
            }
        };
        let mut base = if base.ends_with('/') {
            base
        } else {
            format!("{base}/")
        };
        if !base.ends_with("irma/") {
            base.push_str("irma/");
        }
        base
    }

    pub fn no_auth(&self) -> bool {
        self.no_auth.unwrap_or(!self.production)
    }

    /// `(name, token)` of each token requestor; `None` without authentication.
    pub fn requestors(&self) -> Result<Option<Vec<(String, String)>>> {
        let parsed: std::collections::BTreeMap<String, RequestorConfig> = match &self.requestors {
            Some(json) => serde_json::from_str(json)?,
            None => Default::default(),
        };
        if self.no_auth() {
            if !parsed.is_empty() {
                bail!("requestors configured together with --no-auth");
            }
            return Ok(None);
        }
        if parsed.is_empty() {
            bail!("no requestors configured; use --no-auth or --requestors");
        }
        let mut out = Vec::new();
        for (name, r) in parsed {
            match (r.auth_method.as_str(), r.key) {
                ("token", Some(key)) if !key.is_empty() => out.push((name, key)),
                ("token", _) => bail!("requestor {name} has no key"),
                (m, _) => {
                    bail!("requestor {name}: auth_method {m} is not supported yet (token only)")
                }
            }
        }
        Ok(Some(out))
    }

    pub fn timestamp_keys(&self) -> Result<Vec<Vec<u8>>> {
        self.timestamp_keys
            .iter()
            .filter(|k| !k.is_empty())
            .map(|k| {
                if k.len() != 64 {
                    bail!("timestamp key {k} is not 32 bytes of hex");
                }
                (0..32)
                    .map(|i| u8::from_str_radix(&k[2 * i..2 * i + 2], 16).map_err(Into::into))
                    .collect()
            })
            .collect()
    }

    pub fn validate(&self) -> Result<()> {
        if self.store_type != "memory" {
            bail!(
                "--store-type {} is not supported yet (memory only)",
                self.store_type
            );
        }
        if self.port == 0 {
            bail!("--port must be between 1 and 65535");
        }
        Ok(())
    }

    /// Where the guest component is, by default the release build of this workspace.
    pub fn guest_path(&self) -> PathBuf {
        self.guest.clone().unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/wasm32-wasip2/release/irma_guest.wasm")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["irma-server", "-s", "/schemes"];
        v.extend_from_slice(extra);
        Args::parse_from(v)
    }

    #[test]
    fn the_app_url_is_normalized_as_irma_server_does() {
        assert_eq!(
            args(&["-u", "https://irma.example.com"]).app_url(),
            "https://irma.example.com/irma/"
        );
        assert_eq!(
            args(&["-u", "https://x.example/irma/"]).app_url(),
            "https://x.example/irma/"
        );
        assert_eq!(
            args(&["-u", "http://127.0.0.1:port", "-p", "9000"]).app_url(),
            "http://127.0.0.1:9000/irma/"
        );
        assert_eq!(
            args(&["-l", "127.0.0.1", "-p", "8088"]).app_url(),
            "http://127.0.0.1:8088/irma/"
        );
    }

    #[test]
    fn authentication_defaults_follow_production() {
        assert!(args(&[]).no_auth());
        assert!(!args(&["--production"]).no_auth());
        assert!(!args(&["--no-auth=false"]).no_auth());
        assert_eq!(args(&[]).requestors().unwrap(), None);
        let a = args(&[
            "--no-auth=false",
            "--requestors",
            r#"{"a":{"auth_method":"token","key":"k"}}"#,
        ]);
        assert_eq!(
            a.requestors().unwrap(),
            Some(vec![("a".into(), "k".into())])
        );
        let bad = args(&[
            "--no-auth=false",
            "--requestors",
            r#"{"a":{"auth_method":"hmac","key":"k"}}"#,
        ]);
        assert!(bad.requestors().is_err());
    }

    #[test]
    fn timestamp_keys_are_hex() {
        let k = "a8ddaae8b274c53ad479d9a3a8565f90fa032ff8c7ee1ef785f034ac9d70b73e";
        assert_eq!(
            args(&["--timestamp-keys", k]).timestamp_keys().unwrap()[0][0],
            0xa8
        );
        assert!(
            args(&["--timestamp-keys", "abcd"])
                .timestamp_keys()
                .is_err()
        );
    }
}
