//! Builds the session guest (`irma-guest` for `wasm32-wasip2`) and embeds it in the binary, so
//! `irma-server` runs wherever it is copied or installed; `--guest FILE` still overrides it.
//!
//! The guest is built by a nested cargo in `<target dir>/guest`, the directory `just guest`
//! builds in too, so the guest is compiled once whichever comes first (unless `RUSTFLAGS` or
//! `CARGO_PROFILE_*` are set: this build leaves them out, `just guest` does not). A separate
//! directory is needed because this build holds the lock of its own. Set `IRMA_GUEST_WASM` to
//! embed a component built elsewhere instead.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ is in the workspace")
        .to_owned();
    println!("cargo:rerun-if-env-changed=IRMA_GUEST_WASM");
    let wasm = match std::env::var_os("IRMA_GUEST_WASM") {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            path
        }
        None => build_guest(&workspace),
    };
    let bytes = std::fs::read(&wasm)
        .unwrap_or_else(|e| panic!("the guest component {}: {e}", wasm.display()));
    // Embedded from a copy that is only rewritten when its content changes: the build of the
    // test guests (`just guest-variants`) rewrites the original with the same bytes, which
    // must not make the server recompile.
    let embedded = PathBuf::from(env("OUT_DIR")).join("irma_guest.wasm");
    if std::fs::read(&embedded).ok().as_deref() != Some(&bytes[..]) {
        std::fs::write(&embedded, &bytes).expect("writing to OUT_DIR");
    }
    println!("cargo:rustc-env=IRMA_EMBEDDED_GUEST={}", embedded.display());
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name}"))
}

/// Runs `cargo build --release -p irma-guest --target wasm32-wasip2` and returns the component.
fn build_guest(workspace: &Path) -> PathBuf {
    for input in [
        "guest/src",
        "guest/Cargo.toml",
        "guest/idemix/src",
        "guest/idemix/Cargo.toml",
        "wit",
        "Cargo.lock",
        "Cargo.toml",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }
    let target_dir = guest_target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--locked", "-p", "irma-guest"])
        .args(["--target", TARGET, "--target-dir"])
        .arg(&target_dir);
    // What cargo tells this script about the host build must not leak into the guest's: its
    // flags would replace the guest's own (.cargo/config.toml), and under clippy the guest
    // would be linted instead of built. The jobserver (CARGO_MAKEFLAGS) is kept, so both
    // builds share the same number of jobs.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CLIPPY_CONF_DIR",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    for (var, _) in std::env::vars_os() {
        let var = var.to_string_lossy();
        if var.starts_with("CARGO_FEATURE_")
            || var.starts_with("CARGO_CFG_")
            || var.starts_with("CARGO_PROFILE_")
        {
            cmd.env_remove(&*var);
        }
    }
    // Cargo reads this script's stdout as instructions: the nested build's goes to stderr.
    let status = cmd
        .stdout(std::io::stderr())
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the guest: {e}"));
    if !status.success() {
        panic!(
            "building the guest failed (see above). Is the target installed? \
             `rustup target add {TARGET}`; or set IRMA_GUEST_WASM to a built component"
        );
    }
    target_dir
        .join(TARGET)
        .join("release")
        .join("irma_guest.wasm")
}

/// `<target dir>/guest`. Cargo does not tell build scripts its target directory, but `OUT_DIR`
/// is `<target dir>[/<triple>]/<profile>/build/<package>-<hash>/out`.
fn guest_target_dir() -> PathBuf {
    let out = PathBuf::from(env("OUT_DIR"));
    let profile_dir = out.ancestors().nth(3).expect("OUT_DIR has its usual shape");
    let mut target_dir = profile_dir.parent().expect("a target directory");
    if target_dir.file_name() == Some(std::ffi::OsStr::new(&env("TARGET"))) {
        target_dir = target_dir.parent().expect("a target directory");
    }
    target_dir.join("guest")
}
