//! A real `redis-server` (Debian's) for one test: a free loopback port, its own folder, killed
//! on drop. It can be stopped and restarted on the same port and folder (with AOF, its data
//! survives), and it can serve TLS only, with a CA made for the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::free_port;

pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    args: Vec<String>,
    /// The CA (PEM file) of a TLS server.
    pub ca: Option<PathBuf>,
}

/// How to run it.
#[derive(Default, Clone, Copy)]
pub struct Options {
    /// Append-only file on, fsync always: a restart keeps every acknowledged write.
    pub aof: bool,
    /// Serve TLS only, with a certificate for 127.0.0.1 from a CA made here.
    pub tls: bool,
    /// `requirepass`.
    pub password: Option<&'static str>,
    /// A replica of the master on this port.
    pub replica_of: Option<u16>,
    /// A Redis Cluster node (its state in its folder, so a restart rejoins).
    pub cluster: bool,
}

impl Redis {
    /// Plain TCP, no persistence, no password.
    pub fn start() -> Redis {
        Redis::start_with(Options::default())
    }

    pub fn start_with(o: Options) -> Redis {
        let dir = tempfile::Builder::new()
            .prefix("irma-redis-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let mut args: Vec<String> = vec![
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            dir.path().display().to_string(),
            "--save".into(),
            "".into(),
            "--protected-mode".into(),
            "no".into(),
            // A replica gets its first copy at once, not after the default 5 s wait for others.
            "--repl-diskless-sync-delay".into(),
            "0".into(),
        ];
        if o.aof {
            args.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
        }
        if o.cluster {
            args.extend(
                [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                ]
                .map(String::from),
            );
        }
        if let Some(master) = o.replica_of {
            args.extend([
                "--replicaof".to_owned(),
                "127.0.0.1".to_owned(),
                master.to_string(),
            ]);
        }
        if let Some(pw) = o.password {
            args.extend(["--requirepass".to_owned(), pw.to_owned()]);
        }
        let mut ca = None;
        if o.tls {
            let crate::keys::TlsFiles {
                ca: ca_file,
                cert,
                key,
            } = crate::keys::tls_certificates(dir.path());
            args.extend(
                [
                    "--port",
                    "0",
                    "--tls-port",
                    &port.to_string(),
                    "--tls-cert-file",
                    &cert.display().to_string(),
                    "--tls-key-file",
                    &key.display().to_string(),
                    "--tls-ca-cert-file",
                    &ca_file.display().to_string(),
                    "--tls-auth-clients",
                    "no",
                ]
                .map(String::from),
            );
            ca = Some(ca_file);
        } else {
            args.extend(["--port".to_owned(), port.to_string()]);
        }
        let mut r = Redis {
            child: None,
            port,
            dir,
            args,
            ca,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child =
            crate::process::spawn(cmd).expect("redis-server runs (apt-get install redis-server)");
        let stdout = child.stdout.take().unwrap();
        crate::wait_for_line(&mut child, stdout, "Ready to accept connections", None);
        self.child = Some(child);
    }

    /// `127.0.0.1:<port>`, for `--redis-addr`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The flags that point a server here (plain TCP, no password).
    pub fn server_flags(&self) -> Vec<String> {
        [
            "--store-type",
            "redis",
            "--redis-addr",
            &self.addr(),
            "--redis-allow-empty-password",
            "--redis-no-tls",
        ]
        .map(String::from)
        .to_vec()
    }

    /// Whether it runs (not killed).
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Same port, same folder, same options.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Same port and folder, now as a replica of the master on `master_port`.
    pub fn restart_replicating(&mut self, master_port: u16) {
        if let Some(i) = self.args.iter().position(|a| a == "--replicaof") {
            self.args.drain(i..i + 3);
        }
        self.args.extend([
            "--replicaof".to_owned(),
            "127.0.0.1".to_owned(),
            master_port.to_string(),
        ]);
        self.restart();
    }

    /// Runs a command through `redis-cli` (plain TCP servers) and returns its raw output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    /// The summary line of session `key` (`<version> <STATUS> <lapse> <rt>`): the start of its
    /// value, before the record.
    pub fn summary(&self, key: &str) -> String {
        let head = self.cli(&["GETRANGE", key, "0", "127"]);
        head.split('\n').next().unwrap_or_default().to_owned()
    }

    /// Like [`Redis::cli`], with `input`'s bytes on stdin (for `-x`).
    pub fn cli_stdin(&self, args: &[&str], input: &Path) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"])
            .args(args)
            .stdin(std::fs::File::open(input).expect("input"))
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    /// The value of a string key, byte for byte (none if there is no such key).
    pub fn get_bytes(&self, key: &str) -> Option<Vec<u8>> {
        if self.cli(&["EXISTS", key]) != "1" {
            return None;
        }
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"])
            .args(["GET", key])
            .output()
            .expect("redis-cli runs");
        let mut v = out.stdout;
        // `--raw` ends the value with a newline of its own.
        v.pop();
        Some(v)
    }

    /// Every key and what it holds (strings whole; the members and scores, fields and values
    /// or elements of sorted sets, hashes, lists and sets), for scanning all of Redis.
    pub fn dump(&self) -> Vec<(String, Vec<u8>)> {
        let keys = self.cli(&["--scan"]);
        let mut out = Vec::new();
        for key in keys.lines().filter(|k| !k.is_empty()) {
            let value = match self.cli(&["TYPE", key]).as_str() {
                "string" => self.get_bytes(key).unwrap_or_default(),
                "zset" => self
                    .cli(&["ZRANGE", key, "0", "-1", "WITHSCORES"])
                    .into_bytes(),
                "hash" => self.cli(&["HGETALL", key]).into_bytes(),
                "list" => self.cli(&["LRANGE", key, "0", "-1"]).into_bytes(),
                "set" => self.cli(&["SMEMBERS", key]).into_bytes(),
                _ => continue,
            };
            out.push((key.to_owned(), value));
        }
        out
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A session's value split at the end of its summary line: the record, as the guest wrote it
/// (sealed with `--redis-encryption-key-file`).
pub fn record_of(value: &[u8]) -> &[u8] {
    let end = value
        .iter()
        .position(|b| *b == b'\n')
        .expect("a summary line");
    &value[end + 1..]
}
