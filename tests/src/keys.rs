//! Keys made for a test by Debian's `openssl`: RSA key pairs for requestors that sign their
//! session requests (RS256) and for the server's JWT key, and TLS certificates for 127.0.0.1
//! (the server's listeners, Redis).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh 2048-bit RSA key pair in its own folder, as PEM files.
pub struct RsaKeys {
    pub private_pem: PathBuf,
    pub public_pem: PathBuf,
    _dir: tempfile::TempDir,
}

impl RsaKeys {
    pub fn new() -> RsaKeys {
        let dir = tempfile::tempdir().unwrap();
        let private_pem = dir.path().join("private.pem");
        let public_pem = dir.path().join("public.pem");
        let run = |args: &[&str]| openssl(dir.path(), args);
        let (private, public) = (private_pem.to_str().unwrap(), public_pem.to_str().unwrap());
        run(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            private,
        ]);
        run(&["pkey", "-in", private, "-pubout", "-out", public]);
        RsaKeys {
            private_pem,
            public_pem,
            _dir: dir,
        }
    }

    pub fn private(&self) -> Vec<u8> {
        std::fs::read(&self.private_pem).unwrap()
    }

    pub fn public(&self) -> Vec<u8> {
        std::fs::read(&self.public_pem).unwrap()
    }
}

impl Default for RsaKeys {
    fn default() -> RsaKeys {
        RsaKeys::new()
    }
}

/// A CA, and a certificate for 127.0.0.1 signed by it with its key (PEM files).
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes [`TlsFiles`] in `dir`.
pub fn tls_certificates(dir: &Path) -> TlsFiles {
    let run = |args: &[&str]| openssl(dir, args);
    let new_key = |key: &str, subject: &str, out: &str, x509: bool| {
        let mut args = vec!["req"];
        if x509 {
            args.push("-x509");
        }
        args.extend([
            "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject,
        ]);
        args.extend(["-keyout", key, "-out", out]);
        run(&args);
    };
    new_key("ca.key", "/CN=test CA", "ca.pem", true);
    new_key("server.key", "/CN=127.0.0.1", "server.csr", false);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// Runs `openssl args` in `dir`; it must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
