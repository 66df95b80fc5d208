//! RSA key pairs made for a test by Debian's `openssl`: for requestors that sign their session
//! requests (RS256) and for the server's JWT key.

use std::path::PathBuf;
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
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
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
