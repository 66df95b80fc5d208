//! The configuration file, as `irma server` reads it (irma-server.md §6): `--config FILE`
//! (`-c`, or `IRMASERVER_CONFIG`), else the first `irmaserver.{json,yaml,yml,toml}` in `.`,
//! `/etc/irmaserver/` and `$HOME/.irmaserver`. Its keys are the flags' names with underscores;
//! maps (`requestors`, `static_sessions`) are maps, lists are lists.
//!
//! Precedence as the reference's: flag > environment > file > default. The file's values are
//! handed to the flag parser as the `IRMASERVER_*` variables that are not set already, so one
//! parser, with one set of checks, reads all three.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};

/// Where a configuration file is looked for when none is named.
const NAMES: [&str; 4] = [
    "irmaserver.json",
    "irmaserver.yaml",
    "irmaserver.yml",
    "irmaserver.toml",
];

/// The configuration file named on the command line (or in `IRMASERVER_CONFIG`), else the one
/// found in the usual places, if any.
pub fn find(args: &[OsString]) -> Option<PathBuf> {
    let mut named = None;
    let mut it = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        if a == "--config" || a == "-c" {
            named = it.next().map(PathBuf::from);
        } else if let Some(v) = a.strip_prefix("--config=") {
            named = Some(PathBuf::from(v));
        } else if let Some(v) = a.strip_prefix("-c").filter(|v| !v.is_empty()) {
            named = Some(PathBuf::from(v.trim_start_matches('=')));
        }
    }
    if let Some(p) = named.or_else(|| std::env::var_os("IRMASERVER_CONFIG").map(PathBuf::from)) {
        return Some(p);
    }
    let mut dirs = vec![PathBuf::from("."), PathBuf::from("/etc/irmaserver")];
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".irmaserver"));
    }
    dirs.iter()
        .flat_map(|d| NAMES.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

/// The file's settings, by flag name (underscores).
pub fn read(path: &Path) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("configuration file {}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let value: Value = match ext {
        "json" => serde_json::from_str(&text).map_err(|e| anyhow!("{e}")),
        "yaml" | "yml" => yaml_serde::from_str(&text).map_err(|e| anyhow!("{e}")),
        "toml" => toml::from_str(&text).map_err(|e| anyhow!("{e}")),
        other => bail!(
            "configuration file {}: unknown format {other:?} (json, yaml, yml, toml)",
            path.display()
        ),
    }
    .with_context(|| format!("configuration file {}", path.display()))?;
    match value {
        Value::Object(m) => Ok(m
            .into_iter()
            .map(|(k, v)| (k.replace('-', "_").to_ascii_lowercase(), v))
            .collect()),
        Value::Null => Ok(Map::new()),
        _ => bail!(
            "configuration file {}: not a map of settings",
            path.display()
        ),
    }
}

/// A setting as the environment variable the flag parser reads: lists comma-separated, maps
/// as JSON, everything else as written.
fn env_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The variables the file's settings become, for the settings the flag parser knows
/// (`known`: their names with underscores). A setting it does not know is an error, never
/// silently ignored. `verbose` becomes `-v` flags instead (it has no variable).
pub fn to_env(
    settings: &Map<String, Value>,
    known: &[String],
) -> Result<(Vec<(String, String)>, u8)> {
    let mut env = Vec::new();
    let mut verbose = 0;
    for (k, v) in settings {
        if k == "verbose" {
            verbose = v.as_u64().unwrap_or(0).min(2) as u8;
            continue;
        }
        if k == "config" {
            continue;
        }
        if !known.contains(k) {
            bail!("configuration file: unknown setting {k:?}");
        }
        env.push((
            format!("IRMASERVER_{}", k.to_ascii_uppercase()),
            env_value(v),
        ));
    }
    Ok((env, verbose))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_become_the_variables_the_flags_read() {
        let settings = json!({
            "port": 9000, "no_auth": false, "sse": true,
            "disclose_perms": ["a.*", "b.c.d.e"],
            "requestors": {"x": {"auth_method": "token", "key": "k"}},
            "verbose": 2
        });
        let known: Vec<String> = ["port", "no_auth", "sse", "disclose_perms", "requestors"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (env, verbose) = to_env(settings.as_object().unwrap(), &known).unwrap();
        assert_eq!(verbose, 2);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("IRMASERVER_PORT"), Some("9000"));
        assert_eq!(get("IRMASERVER_NO_AUTH"), Some("false"));
        assert_eq!(get("IRMASERVER_DISCLOSE_PERMS"), Some("a.*,b.c.d.e"));
        assert_eq!(
            get("IRMASERVER_REQUESTORS"),
            Some(r#"{"x":{"auth_method":"token","key":"k"}}"#)
        );
        let unknown = json!({"prot": 1});
        let e = to_env(unknown.as_object().unwrap(), &known).unwrap_err();
        assert!(e.to_string().contains("prot"));
    }

    #[test]
    fn yaml_toml_and_json_read_alike() {
        let dir = std::env::temp_dir().join(format!("irma-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = [
            (
                "a.yaml",
                "port: 9000\nissue-perms:\n  - x.y.z\nrequestors:\n  r:\n    auth_method: token\n    key: k\n",
            ),
            (
                "a.toml",
                "port = 9000\nissue_perms = [\"x.y.z\"]\n[requestors.r]\nauth_method = \"token\"\nkey = \"k\"\n",
            ),
            (
                "a.json",
                r#"{"port": 9000, "issue_perms": ["x.y.z"], "requestors": {"r": {"auth_method": "token", "key": "k"}}}"#,
            ),
        ];
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            let m = read(&p).unwrap();
            assert_eq!(m["port"], json!(9000), "{name}");
            assert_eq!(m["issue_perms"], json!(["x.y.z"]), "{name}");
            assert_eq!(m["requestors"]["r"]["key"], json!("k"), "{name}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_named_file_is_found_on_the_command_line() {
        let args: Vec<OsString> = ["irma-server", "-c", "/x/irmaserver.yml"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(find(&args), Some(PathBuf::from("/x/irmaserver.yml")));
        let args: Vec<OsString> = ["irma-server", "--config=/y.json"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(find(&args), Some(PathBuf::from("/y.json")));
    }
}
