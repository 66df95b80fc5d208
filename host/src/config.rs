//! The command line, compatible with `irma server`: the same flag names (and short forms), each
//! also settable as `IRMASERVER_<FLAG>` in the environment.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::{ArgAction, Parser};

use irma_idemix::Configuration;

use crate::jwt::JwtKey;
use crate::requestors::{Lists, RequestorConfig, Requestors};
use crate::store::redis::{Endpoint, RedisOptions, Tls};
use crate::store::sealing;

#[derive(Debug, Clone, Parser)]
// Repeated flags override earlier ones, as with `irma server` (pflag).
#[command(
    name = "irma-server",
    version,
    args_override_self = true,
    about = "A stateless IRMA/Yivi server; session logic runs as a WebAssembly component"
)]
pub struct Args {
    /// Configuration file (json, yaml, toml); default: irmaserver.* in ., /etc/irmaserver/,
    /// ~/.irmaserver. Flags and IRMASERVER_* variables take precedence over it.
    #[arg(short = 'c', long, env = "IRMASERVER_CONFIG")]
    pub config: Option<PathBuf>,
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
    /// Serve `/metrics`, `/health`, `/ready` and `/admin` on this port (plain HTTP, on
    /// --listen-addr) instead of with the requestor API; 0: with the requestor API.
    #[arg(long, env = "IRMASERVER_OPS_PORT", default_value_t = 0)]
    pub ops_port: u16,
    /// After SIGTERM, how long `/ready` fails while everything is still served (so balancers
    /// move away) before the listeners stop accepting (seconds; a second SIGTERM ends it).
    #[arg(long, env = "IRMASERVER_SHUTDOWN_GRACE", default_value_t = 5)]
    pub shutdown_grace: u64,
    /// Prefix of every route, starting with `/`.
    #[arg(short = 'a', long, env = "IRMASERVER_API_PREFIX", default_value = "/")]
    pub api_prefix: String,
    /// Serve the app endpoints (`/irma`) on this port only, apart from the requestor API.
    #[arg(long, env = "IRMASERVER_CLIENT_PORT", default_value_t = 0)]
    pub client_port: u16,
    /// Address of the app endpoints' listener (with --client-port; default: --listen-addr).
    #[arg(long, env = "IRMASERVER_CLIENT_LISTEN_ADDR")]
    pub client_listen_addr: Option<IpAddr>,
    /// TLS certificate chain (PEM) of the main listener.
    #[arg(long, env = "IRMASERVER_TLS_CERT")]
    pub tls_cert: Option<String>,
    /// File holding the TLS certificate chain of the main listener.
    #[arg(long, env = "IRMASERVER_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// TLS private key (PEM) of the main listener.
    #[arg(long, env = "IRMASERVER_TLS_PRIVKEY", hide_env_values = true)]
    pub tls_privkey: Option<String>,
    /// File holding the TLS private key of the main listener.
    #[arg(long, env = "IRMASERVER_TLS_PRIVKEY_FILE")]
    pub tls_privkey_file: Option<PathBuf>,
    /// TLS certificate chain (PEM) of the client listener (--client-port).
    #[arg(long, env = "IRMASERVER_CLIENT_TLS_CERT")]
    pub client_tls_cert: Option<String>,
    /// File holding the TLS certificate chain of the client listener.
    #[arg(long, env = "IRMASERVER_CLIENT_TLS_CERT_FILE")]
    pub client_tls_cert_file: Option<PathBuf>,
    /// TLS private key (PEM) of the client listener.
    #[arg(long, env = "IRMASERVER_CLIENT_TLS_PRIVKEY", hide_env_values = true)]
    pub client_tls_privkey: Option<String>,
    /// File holding the TLS private key of the client listener.
    #[arg(long, env = "IRMASERVER_CLIENT_TLS_PRIVKEY_FILE")]
    pub client_tls_privkey_file: Option<PathBuf>,
    /// Allow a --url that is not https in production.
    #[arg(long, env = "IRMASERVER_NO_TLS")]
    pub no_tls: bool,
    /// Serve static files from this folder (on the listener of the app endpoints).
    #[arg(long, env = "IRMASERVER_STATIC_PATH")]
    pub static_path: Option<PathBuf>,
    /// URL prefix of the static files, starting with `/`.
    #[arg(long, env = "IRMASERVER_STATIC_PREFIX", default_value = "/")]
    pub static_prefix: String,
    /// Accepted with `false` only: registering an email address is not supported.
    #[arg(short = 'e', long, env = "IRMASERVER_EMAIL")]
    pub email: Option<String>,
    /// Do not register an email address (the only choice here).
    #[arg(long, env = "IRMASERVER_NO_EMAIL")]
    pub no_email: bool,
    /// Not supported: scheme assets (schemes are used as they are in --schemes-path).
    #[arg(long, env = "IRMASERVER_SCHEMES_ASSETS_PATH", hide = true)]
    pub schemes_assets_path: Option<String>,
    /// Not supported: revocation.
    #[arg(long, env = "IRMASERVER_REVOCATION_DB_TYPE", hide = true)]
    pub revocation_db_type: Option<String>,
    /// Not supported: revocation.
    #[arg(long, env = "IRMASERVER_REVOCATION_DB_STR", hide = true)]
    pub revocation_db_str: Option<String>,
    /// Not supported: revocation.
    #[arg(long, env = "IRMASERVER_REVOCATION_SETTINGS", hide = true)]
    pub revocation_settings: Option<String>,
    /// Not supported: SD-JWT VC issuance.
    #[arg(long, env = "IRMASERVER_SDJWTVC_ISSUER_CERTIFICATES_DIR", hide = true)]
    pub sdjwtvc_issuer_certificates_dir: Option<String>,
    /// Not supported: SD-JWT VC issuance.
    #[arg(long, env = "IRMASERVER_SDJWTVC_ISSUER_PRIVATE_KEYS_DIR", hide = true)]
    pub sdjwtvc_issuer_private_keys_dir: Option<String>,
    /// External URL of this server, as apps reach it (`:port` is replaced; `/irma/` appended).
    #[arg(short = 'u', long, env = "IRMASERVER_URL")]
    pub url: Option<String>,
    /// Folder of schemes (irma_configuration).
    #[arg(short = 's', long, env = "IRMASERVER_SCHEMES_PATH")]
    pub schemes_path: Option<PathBuf>,
    /// Folder of issuer private keys (`<scheme>.<issuer>[.<counter>].xml`).
    #[arg(short = 'k', long, env = "IRMASERVER_PRIVKEYS")]
    pub privkeys: Option<PathBuf>,
    /// Minutes between scheme updates (accepted for compatibility; schemes are not downloaded).
    #[arg(long, env = "IRMASERVER_SCHEMES_UPDATE", default_value_t = 60)]
    pub schemes_update: u32,
    /// Disable requestor authentication (default: on, unless --production).
    #[arg(long, env = "IRMASERVER_NO_AUTH", num_args = 0..=1, default_missing_value = "true")]
    pub no_auth: Option<bool>,
    /// Requestors as JSON: `{"name": {"auth_method": "token|hmac|publickey", "key": "...",
    /// "disclose_perms": [...], ...}}`.
    #[arg(long, env = "IRMASERVER_REQUESTORS")]
    pub requestors: Option<String>,
    /// Attributes every requestor may ask to disclose (default `*`; empty: none).
    #[arg(long, env = "IRMASERVER_DISCLOSE_PERMS", value_delimiter = ',', num_args = 0..)]
    pub disclose_perms: Option<Vec<String>>,
    /// Attributes every requestor may ask to sign with (default `*`; empty: none).
    #[arg(long, env = "IRMASERVER_SIGN_PERMS", value_delimiter = ',', num_args = 0..)]
    pub sign_perms: Option<Vec<String>>,
    /// Credentials every requestor may issue (default `*`, none with --production).
    #[arg(long, env = "IRMASERVER_ISSUE_PERMS", value_delimiter = ',', num_args = 0..)]
    pub issue_perms: Option<Vec<String>>,
    /// Credentials every requestor may revoke (revocation is not supported: must stay empty).
    #[arg(long, env = "IRMASERVER_REVOKE_PERMS", value_delimiter = ',', num_args = 0..)]
    pub revoke_perms: Option<Vec<String>>,
    /// Do not require the issuer's private key for issue permissions.
    #[arg(long, env = "IRMASERVER_SKIP_PRIVATE_KEYS_CHECK")]
    pub skip_private_keys_check: bool,
    /// Seconds a requestor's JWT stays acceptable after its `iat`.
    #[arg(long, env = "IRMASERVER_MAX_REQUEST_AGE", default_value_t = 300)]
    pub max_request_age: i64,
    /// Static sessions as JSON: `{"name": <extended disclosure or signature request with a
    /// callbackUrl or nextSession>}`; the app starts one by POSTing to `/irma/session/<name>`.
    #[arg(long, env = "IRMASERVER_STATIC_SESSIONS")]
    pub static_sessions: Option<String>,
    /// `iss` of the JWTs this server signs.
    #[arg(
        short = 'j',
        long,
        env = "IRMASERVER_JWT_ISSUER",
        default_value = "irmaserver"
    )]
    pub jwt_issuer: String,
    /// RSA private key (PEM) that signs result JWTs, callbacks and next-session requests.
    #[arg(long, env = "IRMASERVER_JWT_PRIVKEY", hide_env_values = true)]
    pub jwt_privkey: Option<String>,
    /// File holding the JWT private key.
    #[arg(long, env = "IRMASERVER_JWT_PRIVKEY_FILE")]
    pub jwt_privkey_file: Option<PathBuf>,
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
    /// Session store: `memory` (this process) or `redis` (shared by replicas).
    #[arg(long, env = "IRMASERVER_STORE_TYPE", default_value = "memory")]
    pub store_type: String,
    /// Redis `host:port` (with --store-type redis).
    #[arg(long, env = "IRMASERVER_REDIS_ADDR")]
    pub redis_addr: Option<String>,
    /// Redis password.
    #[arg(long, env = "IRMASERVER_REDIS_PW", hide_env_values = true)]
    pub redis_pw: Option<String>,
    /// Permit an empty Redis password.
    #[arg(long, env = "IRMASERVER_REDIS_ALLOW_EMPTY_PASSWORD")]
    pub redis_allow_empty_password: bool,
    /// Redis ACL user.
    #[arg(long, env = "IRMASERVER_REDIS_USERNAME")]
    pub redis_username: Option<String>,
    /// Prefix every Redis key with `<redis-username>:`.
    #[arg(long, env = "IRMASERVER_REDIS_ACL_USE_KEY_PREFIXES")]
    pub redis_acl_use_key_prefixes: bool,
    /// Redis database number.
    #[arg(long, env = "IRMASERVER_REDIS_DB", default_value_t = 0)]
    pub redis_db: i64,
    /// PEM certificate (or CA) of Redis: the only trusted root.
    #[arg(long, env = "IRMASERVER_REDIS_TLS_CERT", allow_hyphen_values = true)]
    pub redis_tls_cert: Option<String>,
    /// File holding the PEM certificate (or CA) of Redis: the only trusted root.
    #[arg(long, env = "IRMASERVER_REDIS_TLS_CERT_FILE")]
    pub redis_tls_cert_file: Option<PathBuf>,
    /// Client certificate (PEM) for TLS towards Redis.
    #[arg(long, env = "IRMASERVER_REDIS_TLS_CLIENT_CERT_FILE")]
    pub redis_tls_client_cert_file: Option<PathBuf>,
    /// Client private key (PEM) for TLS towards Redis.
    #[arg(long, env = "IRMASERVER_REDIS_TLS_CLIENT_KEY_FILE")]
    pub redis_tls_client_key_file: Option<PathBuf>,
    /// Plain TCP towards Redis (TLS is on by default).
    #[arg(long, env = "IRMASERVER_REDIS_NO_TLS")]
    pub redis_no_tls: bool,
    /// File of AES-256 keys sealing session data in Redis: one base64 32-byte key per line;
    /// the first seals, all open (rotate by prepending a key).
    #[arg(long, env = "IRMASERVER_REDIS_ENCRYPTION_KEY_FILE")]
    pub redis_encryption_key_file: Option<PathBuf>,
    /// Redis Sentinel addresses (`host:port`, comma-separated): the master is whichever node
    /// they name, followed across failovers. Instead of --redis-addr.
    #[arg(long, env = "IRMASERVER_REDIS_SENTINEL_ADDRS", value_delimiter = ',')]
    pub redis_sentinel_addrs: Vec<String>,
    /// The name the sentinels monitor the master under.
    #[arg(long, env = "IRMASERVER_REDIS_SENTINEL_MASTER_NAME")]
    pub redis_sentinel_master_name: Option<String>,
    /// User towards the sentinels.
    #[arg(long, env = "IRMASERVER_REDIS_SENTINEL_USERNAME")]
    pub redis_sentinel_username: Option<String>,
    /// Password towards the sentinels.
    #[arg(long, env = "IRMASERVER_REDIS_SENTINEL_PW", hide_env_values = true)]
    pub redis_sentinel_pw: Option<String>,
    /// Redis Cluster seed nodes (`host:port`, comma-separated): sessions spread over every
    /// master. Instead of --redis-addr.
    #[arg(long, env = "IRMASERVER_REDIS_CLUSTER_ADDRS", value_delimiter = ',')]
    pub redis_cluster_addrs: Vec<String>,
    /// Do not wait for a replica after each session write (with Sentinel): faster, but a
    /// write acknowledged just before the master dies may be lost in the failover.
    #[arg(long, env = "IRMASERVER_REDIS_ACCEPT_INCONSISTENCY_RISK")]
    pub redis_accept_inconsistency_risk: bool,
    /// Every session write waits until this many replicas have it (Redis `WAIT`), or the
    /// request fails. Default: 1 with Sentinel (0 with --redis-accept-inconsistency-risk),
    /// 0 with --redis-addr.
    #[arg(long, env = "IRMASERVER_REDIS_WAIT_REPLICAS")]
    pub redis_wait_replicas: Option<u32>,
    /// How long a session write waits for its replicas (ms). Long enough for a replica to
    /// attach to a master just promoted by a failover (writes wait for it rather than fail).
    #[arg(long, env = "IRMASERVER_REDIS_WAIT_TIMEOUT", default_value_t = 5000)]
    pub redis_wait_timeout: u64,
    /// The guest component to run, watched for changes in memory mode (default: the guest
    /// built into this binary).
    #[arg(long, env = "IRMASERVER_GUEST")]
    pub guest: Option<PathBuf>,
    /// Where compiled guests are kept, by hash, so a restart does not recompile; empty: nowhere
    /// (default: ~/.cache/irma-server/guests).
    #[arg(long, env = "IRMASERVER_GUEST_CACHE")]
    pub guest_cache: Option<PathBuf>,
    /// Ed25519 public keys (base64, comma-separated): run only guests signed by one of them
    /// (`guest publish --signing-key`, `X-Guest-Signature`, or `<--guest file>.sig`).
    #[arg(long, env = "IRMASERVER_GUEST_TRUSTED_KEYS", value_delimiter = ',')]
    pub guest_trusted_keys: Vec<String>,
    /// Bearer token for the /admin endpoints (guest publish, rollback, status); none: off.
    #[arg(long, env = "IRMASERVER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
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
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Guest versions of the replicas sharing this Redis (--store-type redis): publish a new
    /// one, roll back, or see what every replica runs.
    Guest {
        #[command(subcommand)]
        action: GuestAction,
    },
    /// Print a session stored in Redis (--store-type redis and the --redis-* flags) as JSON:
    /// its status summary and its record, attribute values included. TOKEN: the requestor or
    /// the client token.
    Session {
        #[command(subcommand)]
        action: SessionAction,
    },
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum SessionAction {
    /// Print one session.
    Show { token: String },
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum GuestAction {
    /// Check a guest component and make it the active version of every replica.
    Publish {
        file: PathBuf,
        /// Sign it with this Ed25519 key (from `guest keygen`), for replicas started with
        /// --guest-trusted-keys.
        #[arg(long)]
        signing_key: Option<PathBuf>,
    },
    /// Make a key pair for signing guests: the private key into FILE (new, owner-only), the
    /// public key (for --guest-trusted-keys) on standard output.
    Keygen { file: PathBuf },
    /// Print the signature (base64) of a guest component, for `X-Guest-Signature` on
    /// `/admin/guest` or a `<--guest file>.sig` beside the watched file.
    Sign {
        file: PathBuf,
        #[arg(long)]
        signing_key: PathBuf,
    },
    /// Make the previously active version active again (refused if it cannot read records
    /// the store may hold).
    Rollback,
    /// Show the active version, the history, the record schemas and every replica's state.
    Status,
}

impl Args {
    /// The app-facing base URL, normalized as `irma server` does: `:port` replaced by the
    /// port the app endpoints listen on, `https` when that listener has TLS, trailing `/`, then
    /// `irma/`.
    pub fn app_url(&self) -> String {
        let port = if self.client_port != 0 {
            self.client_port
        } else {
            self.port
        };
        let base = match &self.url {
            Some(u) if !u.is_empty() => u.replace(":port", &format!(":{port}")),
            _ => {
                let addr = match (self.client_port, self.client_listen_addr) {
                    (p, Some(a)) if p != 0 => a,
                    _ => self.listen_addr,
                };
                let host = if addr.is_unspecified() {
                    "127.0.0.1".to_owned()
                } else {
                    addr.to_string()
                };
                // Without --url the app endpoints are where this server mounts them.
                format!(
                    "http://{host}:{port}{}",
                    self.api_prefix.trim_end_matches('/')
                )
            }
        };
        let base = match base.strip_prefix("http://") {
            Some(rest) if self.app_tls() => format!("https://{rest}"),
            _ => base,
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

    /// The global permission lists: as given (an empty flag: none), else the defaults of
    /// `irma server` (disclose and sign `*`, issue `*` but none with --production).
    pub fn global_permissions(&self) -> Lists {
        let given = |l: &Option<Vec<String>>, default: &[&str]| -> Vec<String> {
            match l {
                Some(l) => l.iter().filter(|p| !p.is_empty()).cloned().collect(),
                None => default.iter().map(|s| s.to_string()).collect(),
            }
        };
        let issue_default: &[&str] = if self.production { &[] } else { &["*"] };
        Lists {
            disclose: given(&self.disclose_perms, &["*"]),
            sign: given(&self.sign_perms, &["*"]),
            issue: given(&self.issue_perms, issue_default),
            revoke: given(&self.revoke_perms, &[]),
            hosts: Vec::new(),
        }
    }

    /// The requestors: none with --no-auth (the anonymous requestor has the global lists),
    /// else those of --requestors, each with its key.
    pub fn requestors(&self) -> Result<Requestors> {
        let parsed: BTreeMap<String, RequestorConfig> = match &self.requestors {
            Some(json) if !json.trim().is_empty() => {
                serde_json::from_str(json).map_err(|e| anyhow!("--requestors: {e}"))?
            }
            _ => BTreeMap::new(),
        };
        if self.no_auth() {
            if !parsed.is_empty() {
                bail!("requestors configured together with --no-auth");
            }
            return Ok(Requestors::anonymous(self.global_permissions()));
        }
        Requestors::configured(parsed, self.global_permissions(), self.max_request_age)
    }

    /// In production, issuance must not be open to anyone who can reach the server: `--no-auth`
    /// with issue permissions and the private keys of a real (non-demo) scheme needs the app
    /// endpoints on a port of their own, so the requestor API can stay private.
    pub fn check_production_exposure(
        &self,
        conf: &Configuration,
        requestors: &Requestors,
    ) -> Result<()> {
        let real_keys = conf
            .issuers_with_private_keys()
            .filter_map(|i| conf.schemes.get(i.split('.').next().unwrap_or("")))
            .any(|s| !s.demo);
        if self.production
            && !requestors.authenticated()
            && !requestors.global().issue.is_empty()
            && real_keys
            && self.client_port == 0
        {
            bail!(
                "in production, --no-auth with issue permissions and private keys of a non-demo scheme lets anyone who reaches this server issue credentials; authenticate requestors, or serve the app endpoints on --client-port and keep the requestor API private"
            );
        }
        Ok(())
    }

    /// The static sessions, checked as `irma server` checks them (§1.15): a name of letters,
    /// digits and `_`; a disclosure or signature request; a callbackUrl or nextSession to learn
    /// the result by; a JWT key to sign it, or --allow-unsigned-callbacks.
    pub fn static_sessions(&self) -> Result<BTreeMap<String, Vec<u8>>> {
        let parsed: BTreeMap<String, serde_json::Value> = match &self.static_sessions {
            Some(json) if !json.trim().is_empty() => {
                serde_json::from_str(json).map_err(|e| anyhow!("--static-sessions: {e}"))?
            }
            _ => return Ok(BTreeMap::new()),
        };
        let signed = self.jwt_privkey.as_deref().is_some_and(|k| !k.is_empty())
            || self.jwt_privkey_file.is_some();
        let mut out = BTreeMap::new();
        for (name, r) in parsed {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                bail!("static session name {name:?} may hold only letters, digits and _");
            }
            let context = r["request"]["@context"].as_str().unwrap_or("");
            if !context.ends_with("/disclosure/v2") && !context.ends_with("/signature/v2") {
                bail!("static session {name}: must be an extended disclosure or signature request");
            }
            let callback = r["callbackUrl"].as_str().is_some_and(|u| !u.is_empty());
            let next = r["nextSession"]["url"]
                .as_str()
                .is_some_and(|u| !u.is_empty());
            if !callback && !next {
                bail!(
                    "static session {name}: needs a callbackUrl or nextSession to deliver its result"
                );
            }
            if !signed && !self.allow_unsigned_callbacks {
                bail!("static sessions need --jwt-privkey or --allow-unsigned-callbacks");
            }
            out.insert(name, serde_json::to_vec(&r).expect("serializes"));
        }
        Ok(out)
    }

    /// The JWT key of `--jwt-privkey` or `--jwt-privkey-file`, if any.
    pub fn jwt_key(&self) -> Result<Option<JwtKey>> {
        let pem = match (
            self.jwt_privkey.as_deref().filter(|k| !k.is_empty()),
            &self.jwt_privkey_file,
        ) {
            (Some(_), Some(_)) => {
                bail!("give either --jwt-privkey or --jwt-privkey-file, not both")
            }
            (Some(k), None) => k.as_bytes().to_vec(),
            (None, Some(f)) => read(f, "JWT private key")?,
            (None, None) => return Ok(None),
        };
        JwtKey::from_pem(&pem).map(Some)
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
        self.store()?;
        if self.command.is_none() && self.schemes_path.is_none() {
            bail!("--schemes-path is required");
        }
        if self.port == 0 {
            bail!("--port must be between 1 and 65535");
        }
        self.refuse_unsupported()?;
        for (flag, prefix) in [
            ("--api-prefix", &self.api_prefix),
            ("--static-prefix", &self.static_prefix),
        ] {
            if !prefix.starts_with('/') {
                bail!("{flag} must start with /");
            }
        }
        if self.client_port != 0 && self.client_port == self.port {
            bail!("--client-port must differ from --port");
        }
        if self.client_port == 0 && self.client_listen_addr.is_some() {
            bail!("--client-listen-addr needs --client-port");
        }
        self.tls()?;
        self.client_tls()?;
        if self.production && !self.no_tls {
            match self.url.as_deref().filter(|u| !u.is_empty()) {
                Some(u) if !u.starts_with("https://") && !self.app_tls() => {
                    bail!("in production the url must be https (or use --no-tls): {u}")
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// What `irma server` can do and this server cannot yet: refused, never ignored.
    fn refuse_unsupported(&self) -> Result<()> {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        for (flag, given, what) in [
            (
                "--schemes-assets-path",
                set(&self.schemes_assets_path),
                "scheme assets",
            ),
            (
                "--revocation-db-type",
                set(&self.revocation_db_type),
                "revocation",
            ),
            (
                "--revocation-db-str",
                set(&self.revocation_db_str),
                "revocation",
            ),
            (
                "--revocation-settings",
                set(&self.revocation_settings),
                "revocation",
            ),
            (
                "--sdjwtvc-issuer-certificates-dir",
                set(&self.sdjwtvc_issuer_certificates_dir),
                "SD-JWT VC issuance",
            ),
            (
                "--sdjwtvc-issuer-private-keys-dir",
                set(&self.sdjwtvc_issuer_private_keys_dir),
                "SD-JWT VC issuance",
            ),
        ] {
            if given {
                bail!("{flag}: {what} is not supported by this server; remove the setting");
            }
        }
        if set(&self.email) {
            bail!(
                "--email: registering an email address with Privacy by Design is not supported (irma server 1.0 ignores it too); remove it or use --no-email"
            );
        }
        Ok(())
    }

    /// The main listener's TLS certificate chain and key (PEM), if configured.
    pub fn tls(&self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        pem_pair(
            ("--tls-cert", &self.tls_cert, &self.tls_cert_file),
            ("--tls-privkey", &self.tls_privkey, &self.tls_privkey_file),
        )
    }

    /// The client listener's TLS certificate chain and key (PEM), if configured.
    pub fn client_tls(&self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let pair = pem_pair(
            (
                "--client-tls-cert",
                &self.client_tls_cert,
                &self.client_tls_cert_file,
            ),
            (
                "--client-tls-privkey",
                &self.client_tls_privkey,
                &self.client_tls_privkey_file,
            ),
        )?;
        if pair.is_some() && self.client_port == 0 {
            bail!("--client-tls-* needs --client-port");
        }
        Ok(pair)
    }

    /// Whether the listener of the app endpoints has TLS.
    pub fn app_tls(&self) -> bool {
        let some = |a: &Option<String>, b: &Option<PathBuf>| {
            a.as_deref().is_some_and(|s| !s.is_empty()) || b.is_some()
        };
        if self.client_port != 0 {
            some(&self.client_tls_cert, &self.client_tls_cert_file)
        } else {
            some(&self.tls_cert, &self.tls_cert_file)
        }
    }

    /// The session store the flags ask for, checked as `irma server` checks them (same
    /// messages), plus what this server does not support.
    pub fn store(&self) -> Result<StoreChoice> {
        match self.store_type.as_str() {
            "" | "memory" => return Ok(StoreChoice::Memory),
            "redis" => {}
            _ => bail!("storeType not known"),
        }
        let sentinels: Vec<&String> = self
            .redis_sentinel_addrs
            .iter()
            .filter(|a| !a.is_empty())
            .collect();
        let addr = self.redis_addr.as_deref().filter(|a| !a.is_empty());
        let cluster: Vec<&String> = self
            .redis_cluster_addrs
            .iter()
            .filter(|a| !a.is_empty())
            .collect();
        let given = [addr.is_some(), !sentinels.is_empty(), !cluster.is_empty()];
        if given.iter().filter(|g| **g).count() > 1 {
            bail!(
                "specify one of --redis-addr, --redis-sentinel-addrs and --redis-cluster-addrs, not more"
            );
        }
        let endpoint = match (addr, sentinels.is_empty()) {
            (None, true) if !cluster.is_empty() => {
                if self.redis_db != 0 {
                    bail!("--redis-db: a Redis Cluster has only database 0");
                }
                if self.redis_wait_replicas.is_some_and(|n| n > 0) {
                    bail!(
                        "--redis-wait-replicas: not with a Redis Cluster (its writes go to many masters)"
                    );
                }
                Endpoint::Cluster {
                    nodes: cluster
                        .iter()
                        .map(|a| split_host_port("--redis-cluster-addrs", a))
                        .collect::<Result<_>>()?,
                }
            }
            (Some(_), false) => unreachable!("refused above"),
            (None, true) => bail!(
                "When Redis is used as session data store, a Redis URL must be specified with the --redis-addr flag."
            ),
            (Some(addr), true) => {
                let (host, port) = split_host_port("--redis-addr", addr)?;
                Endpoint::Addr { host, port }
            }
            (None, false) => {
                let Some(master_name) = self
                    .redis_sentinel_master_name
                    .clone()
                    .filter(|n| !n.is_empty())
                else {
                    bail!("--redis-sentinel-addrs needs --redis-sentinel-master-name");
                };
                Endpoint::Sentinel {
                    sentinels: sentinels
                        .iter()
                        .map(|a| split_host_port("--redis-sentinel-addrs", a))
                        .collect::<Result<_>>()?,
                    master_name,
                    username: self
                        .redis_sentinel_username
                        .clone()
                        .filter(|u| !u.is_empty()),
                    password: self.redis_sentinel_pw.clone().filter(|p| !p.is_empty()),
                }
            }
        };
        let wait_replicas = self.redis_wait_replicas.unwrap_or(
            match (&endpoint, self.redis_accept_inconsistency_risk) {
                (Endpoint::Sentinel { .. }, false) => 1,
                _ => 0,
            },
        );
        let password = self.redis_pw.clone().filter(|p| !p.is_empty());
        if password.is_none() && !self.redis_allow_empty_password {
            bail!(
                "When Redis is used as session data store, a non-empty Redis password must be specified with the --redis-pw flag. This restriction can be relaxed by setting the --redis-allow-empty-password flag to true."
            );
        }
        let cert = self.redis_tls_cert.as_deref().filter(|c| !c.is_empty());
        let cert_file = self.redis_tls_cert_file.as_ref();
        if self.redis_no_tls && (cert.is_some() || cert_file.is_some()) {
            bail!(
                "Redis TLS config failed: Redis TLS cannot be disabled when a Redis TLS certificate is specified."
            );
        }
        let root_pem = match (cert, cert_file) {
            (Some(_), Some(_)) => {
                bail!("Redis TLS config failed: provide either key or path to key")
            }
            (Some(pem), None) => Some(pem.as_bytes().to_vec()),
            (None, Some(path)) => Some(read(path, "Redis TLS certificate")?),
            (None, None) => None,
        };
        let client = match (
            &self.redis_tls_client_cert_file,
            &self.redis_tls_client_key_file,
        ) {
            (Some(c), Some(k)) => Some((
                read(c, "Redis TLS client certificate")?,
                read(k, "Redis TLS client key")?,
            )),
            (None, None) => None,
            _ => bail!(
                "Redis TLS config failed: provide both --redis-tls-client-cert-file and --redis-tls-client-key-file, or neither"
            ),
        };
        if self.redis_no_tls && client.is_some() {
            bail!("Redis TLS config failed: a client certificate needs TLS");
        }
        let tls = match (self.redis_no_tls, root_pem, client) {
            (true, _, _) => Tls::Off,
            (false, Some(root_pem), client) => Tls::Custom { root_pem, client },
            (false, None, None) => Tls::SystemRoots,
            (false, None, Some(_)) => {
                bail!(
                    "Redis TLS config failed: a client certificate needs --redis-tls-cert or --redis-tls-cert-file"
                )
            }
        };
        let username = self.redis_username.clone().filter(|u| !u.is_empty());
        let key_prefix = match (&username, self.redis_acl_use_key_prefixes) {
            (Some(u), true) => format!("{u}:"),
            (None, true) => bail!("--redis-acl-use-key-prefixes needs --redis-username"),
            (_, false) => String::new(),
        };
        let encryption_keys = match &self.redis_encryption_key_file {
            None => Vec::new(),
            Some(path) => {
                let text = String::from_utf8(read(path, "Redis encryption key file")?)
                    .map_err(|_| anyhow::anyhow!("Redis encryption key file: not text"))?;
                sealing::parse_key_file(&text).map_err(|e| {
                    anyhow::anyhow!("Redis encryption key file {}: {e}", path.display())
                })?
            }
        };
        Ok(StoreChoice::Redis(Box::new(RedisOptions {
            endpoint,
            username,
            password,
            db: self.redis_db,
            tls,
            key_prefix,
            encryption_keys,
            wait_replicas,
            wait_timeout_ms: self.redis_wait_timeout,
        })))
    }

    /// Where compiled guests are cached: `--guest-cache`, else `~/.cache/irma-server/guests`.
    pub fn guest_cache(&self) -> Option<PathBuf> {
        match &self.guest_cache {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(p.clone()),
            None => {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/irma-server/guests"))
            }
        }
    }
}

/// Which session store to run.
#[derive(Debug)]
pub enum StoreChoice {
    Memory,
    /// Boxed: the options are large, and there is one of them.
    Redis(Box<RedisOptions>),
}

/// `host:port`, `[v6]:port`, given with `flag`.
fn split_host_port(flag: &str, addr: &str) -> Result<(String, u16)> {
    let addr = addr.trim();
    let Some((host, port)) = addr.rsplit_once(':') else {
        bail!("{flag} {addr}: expected host:port");
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let Ok(port) = port.parse::<u16>() else {
        bail!("{flag} {addr}: bad port");
    };
    if host.is_empty() {
        bail!("{flag} {addr}: no host");
    }
    Ok((host.to_owned(), port))
}

/// A certificate chain and key given inline or as files (not both), both or neither.
#[allow(clippy::type_complexity)]
fn pem_pair(
    cert: (&str, &Option<String>, &Option<PathBuf>),
    key: (&str, &Option<String>, &Option<PathBuf>),
) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let one = |(flag, inline, file): (&str, &Option<String>, &Option<PathBuf>)| match (
        inline.as_deref().filter(|s| !s.is_empty()),
        file,
    ) {
        (Some(_), Some(_)) => bail!("give either {flag} or {flag}-file, not both"),
        (Some(pem), None) => Ok(Some(pem.as_bytes().to_vec())),
        (None, Some(f)) => read(f, flag).map(Some),
        (None, None) => Ok(None),
    };
    match (one(cert)?, one(key)?) {
        (Some(c), Some(k)) => Ok(Some((c, k))),
        (None, None) => Ok(None),
        _ => bail!("{} and {} go together", cert.0, key.0),
    }
}

fn read(path: &std::path::Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))
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
        assert!(!args(&[]).requestors().unwrap().authenticated());
        let a = args(&[
            "--no-auth=false",
            "--requestors",
            r#"{"a":{"auth_method":"token","key":"k"}}"#,
        ]);
        assert!(a.requestors().unwrap().authenticated());
        let bad = args(&[
            "--no-auth=false",
            "--requestors",
            r#"{"a":{"auth_method":"hmac","key":"not base64!"}}"#,
        ]);
        assert!(bad.requestors().is_err());
    }

    #[test]
    fn global_permissions_default_as_irma_server_has_them() {
        let dev = args(&[]).global_permissions();
        assert_eq!(
            (dev.disclose, dev.sign, dev.issue),
            (
                vec!["*".to_owned()],
                vec!["*".to_owned()],
                vec!["*".to_owned()]
            )
        );
        assert!(dev.revoke.is_empty());
        assert!(
            args(&["--production"])
                .global_permissions()
                .issue
                .is_empty()
        );
        let given =
            args(&["--disclose-perms", "a.b.c.d,a.b.*", "--issue-perms="]).global_permissions();
        assert_eq!(given.disclose, vec!["a.b.c.d", "a.b.*"]);
        assert!(given.issue.is_empty(), "an empty flag means none");
    }

    #[test]
    fn production_keeps_anonymous_issuance_of_real_credentials_off_a_public_port() {
        let demo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo");
        let mut conf = crate::schemes::load(
            &demo.join("irma_configuration"),
            Some(&demo.join("privatekeys")),
        )
        .unwrap();
        let open = args(&["--production", "--no-auth", "--issue-perms", "*"]);
        let requestors = open.requestors().unwrap();
        // Demo keys are no secret.
        assert!(open.check_production_exposure(&conf, &requestors).is_ok());
        conf.schemes.get_mut("stateless-demo").unwrap().demo = false;
        let e = open
            .check_production_exposure(&conf, &requestors)
            .unwrap_err();
        assert!(e.to_string().contains("--client-port"), "{e}");
        let apart = args(&[
            "--production",
            "--no-auth",
            "--issue-perms",
            "*",
            "--client-port",
            "9999",
        ]);
        assert!(
            apart
                .check_production_exposure(&conf, &apart.requestors().unwrap())
                .is_ok()
        );
        let no_issuing = args(&["--production", "--no-auth"]);
        assert!(
            no_issuing
                .check_production_exposure(&conf, &no_issuing.requestors().unwrap())
                .is_ok()
        );
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

    fn store_error(extra: &[&str]) -> String {
        args(extra).store().unwrap_err().to_string()
    }

    #[test]
    fn redis_flags_are_checked_as_irma_server_checks_them() {
        assert!(matches!(args(&[]).store().unwrap(), StoreChoice::Memory));
        assert_eq!(
            store_error(&["--store-type", "etcd"]),
            "storeType not known"
        );
        let redis = ["--store-type", "redis"];
        assert!(
            store_error(&redis)
                .contains("a Redis URL must be specified with the --redis-addr flag")
        );
        let addr = ["--store-type", "redis", "--redis-addr", "127.0.0.1:6379"];
        assert!(store_error(&addr).contains("a non-empty Redis password must be specified"));
        let open = [&addr[..], &["--redis-allow-empty-password"]].concat();
        let StoreChoice::Redis(o) = args(&open).store().unwrap() else {
            panic!("redis")
        };
        assert!(matches!(&o.endpoint, Endpoint::Addr { host, port: 6379 } if host == "127.0.0.1"));
        assert_eq!((o.db, o.wait_replicas), (0, 0), "no WAIT with one address");
        assert!(matches!(o.tls, Tls::SystemRoots), "TLS is on by default");
        assert_eq!(o.key_prefix, "");
        let no_tls_cert = [&open[..], &["--redis-no-tls", "--redis-tls-cert", "PEM"]].concat();
        assert_eq!(
            store_error(&no_tls_cert),
            "Redis TLS config failed: Redis TLS cannot be disabled when a Redis TLS certificate is specified."
        );
        let no_tls_file = [
            &open[..],
            &["--redis-no-tls", "--redis-tls-cert-file", "/x"],
        ]
        .concat();
        assert!(store_error(&no_tls_file).contains("cannot be disabled"));
        let both = [
            &open[..],
            &["--redis-tls-cert", "PEM", "--redis-tls-cert-file", "/x"],
        ]
        .concat();
        assert_eq!(
            store_error(&both),
            "Redis TLS config failed: provide either key or path to key"
        );
        let half_client = [&open[..], &["--redis-tls-client-cert-file", "/x"]].concat();
        assert!(store_error(&half_client).contains("or neither"));
        let prefix = [&open[..], &["--redis-acl-use-key-prefixes"]].concat();
        assert!(store_error(&prefix).contains("needs --redis-username"));
        let user = [
            &prefix[..],
            &[
                "--redis-username",
                "irma",
                "--redis-pw",
                "pw",
                "--redis-db",
                "3",
            ],
        ]
        .concat();
        let StoreChoice::Redis(o) = args(&user).store().unwrap() else {
            panic!("redis")
        };
        assert_eq!((o.key_prefix.as_str(), o.db), ("irma:", 3));
        assert_eq!(o.password.as_deref(), Some("pw"));
        assert!(
            !format!("{o:?}").contains("pw\""),
            "the password is never printed"
        );
        let v6 = [
            "--store-type",
            "redis",
            "--redis-addr",
            "[::1]:7000",
            "--redis-allow-empty-password",
            "--redis-no-tls",
        ];
        let StoreChoice::Redis(o) = args(&v6).store().unwrap() else {
            panic!("redis")
        };
        assert!(matches!(&o.endpoint, Endpoint::Addr { host, port: 7000 } if host == "::1"));
        assert!(matches!(o.tls, Tls::Off));
        assert!(
            store_error(&["--store-type", "redis", "--redis-addr", "nohost"]).contains("host:port")
        );
    }

    #[test]
    fn sentinel_flags_name_the_master_and_default_to_waiting_for_a_replica() {
        let base = [
            "--store-type",
            "redis",
            "--redis-allow-empty-password",
            "--redis-no-tls",
        ];
        fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
            [base, extra].concat()
        }
        let sentinel = with(&base, &["--redis-sentinel-addrs", "a:1, b:2"]);
        assert!(store_error(&sentinel).contains("needs --redis-sentinel-master-name"));
        let both = with(
            &base,
            &[
                "--redis-sentinel-addrs",
                "a:1",
                "--redis-sentinel-master-name",
                "m",
                "--redis-addr",
                "c:3",
            ],
        );
        assert!(store_error(&both).contains("not more"));
        let bad = with(
            &base,
            &[
                "--redis-sentinel-addrs",
                "a:1,b",
                "--redis-sentinel-master-name",
                "m",
            ],
        );
        assert_eq!(
            store_error(&bad),
            "--redis-sentinel-addrs b: expected host:port"
        );
        let named = [
            &sentinel[..],
            &[
                "--redis-sentinel-master-name",
                "mymaster",
                "--redis-sentinel-pw",
                "spw",
            ],
        ]
        .concat();
        let StoreChoice::Redis(o) = args(&named).store().unwrap() else {
            panic!("redis")
        };
        let Endpoint::Sentinel {
            sentinels,
            master_name,
            password,
            ..
        } = &o.endpoint
        else {
            panic!("sentinel")
        };
        assert_eq!(
            (sentinels.clone(), master_name.as_str(), password.as_deref()),
            (
                vec![("a".to_owned(), 1), ("b".to_owned(), 2)],
                "mymaster",
                Some("spw")
            )
        );
        assert_eq!((o.wait_replicas, o.wait_timeout_ms), (1, 5000));
        assert!(!format!("{o:?}").contains("spw"), "no password printed");
        let risky = [&named[..], &["--redis-accept-inconsistency-risk"]].concat();
        let StoreChoice::Redis(o) = args(&risky).store().unwrap() else {
            panic!("redis")
        };
        assert_eq!(o.wait_replicas, 0);
        let explicit = [&risky[..], &["--redis-wait-replicas", "2"]].concat();
        let StoreChoice::Redis(o) = args(&explicit).store().unwrap() else {
            panic!("redis")
        };
        assert_eq!(o.wait_replicas, 2);
        let cluster = with(&base, &["--redis-cluster-addrs", "a:1,b:2,c:3"]);
        let StoreChoice::Redis(o) = args(&cluster).store().unwrap() else {
            panic!("redis")
        };
        assert!(matches!(&o.endpoint, Endpoint::Cluster { nodes } if nodes.len() == 3));
        assert_eq!(o.wait_replicas, 0, "no WAIT in a cluster");
        let two = [&cluster[..], &["--redis-addr", "d:4"]].concat();
        assert!(store_error(&two).contains("not more"));
        let db = [&cluster[..], &["--redis-db", "2"]].concat();
        assert!(store_error(&db).contains("only database 0"));
        let wait = [&cluster[..], &["--redis-wait-replicas", "1"]].concat();
        assert!(store_error(&wait).contains("not with a Redis Cluster"));
    }
}
