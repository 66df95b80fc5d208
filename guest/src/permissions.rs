//! What a requestor may ask for (irma-server.md §3.3), and what the host signs for it. The host
//! keeps the requestor table and the JWT key; the guest asks it through [`Requestors`] (WIT
//! imports in the component) and decides here whether a request is allowed.

use alloc::{borrow::ToOwned, string::String, vec::Vec};
use irma_idemix::disclosure::ConDisCon;
use irma_idemix::issuance::CredentialRequest;

use crate::errors::{ErrorKind::*, IrmaError, err};
use crate::record::Kind;

/// The lists of one requestor, joined with the global lists by the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    pub disclose: Vec<String>,
    pub sign: Vec<String>,
    pub issue: Vec<String>,
    /// Host name patterns a request's `host` may name.
    pub hosts: Vec<String>,
}

/// What the host answers for requestors.
pub trait Requestors {
    /// The permissions of requestor `name` (`""`: global lists only).
    fn permissions(&self, name: &str) -> Permissions;
    /// `claims` as an RS256 JWT with the server's key; none without a key.
    fn sign_jwt(&self, claims: &str) -> Option<String>;
}

/// Everyone may do everything and nothing is signed: native tests and the self-check.
pub struct AllowAll;

impl Requestors for AllowAll {
    fn permissions(&self, _: &str) -> Permissions {
        let all = vec!["*".to_owned()];
        Permissions {
            disclose: all.clone(),
            sign: all.clone(),
            issue: all,
            hosts: Vec::new(),
        }
    }
    fn sign_jwt(&self, _: &str) -> Option<String> {
        None
    }
}

/// Whether `list` allows identifier `id` (`s.i.c` or `s.i.c.a`): `*`, `s.*`, `s.i.*`,
/// `s.i.c.*` or `id` itself.
pub fn allows(list: &[String], id: &str) -> bool {
    let parts: Vec<&str> = id.split('.').collect();
    list.iter().any(|p| {
        if p == "*" || p == id {
            return true;
        }
        let Some(prefix) = p.strip_suffix(".*") else {
            return false;
        };
        let n = prefix.split('.').count();
        n < parts.len() && parts[..n].join(".") == prefix
    })
}

/// The first identifier of `ids` that `list` does not allow; an empty list allows nothing and
/// names no identifier (as the reference: 403 without a message).
fn check<'a>(list: &[String], ids: impl IntoIterator<Item = &'a str>) -> Result<(), IrmaError> {
    if list.is_empty() {
        return Err(err(Unauthorized, ""));
    }
    for id in ids {
        if !allows(list, id) {
            return Err(err(Unauthorized, id));
        }
    }
    Ok(())
}

/// Checks a request of `kind` against `perms`: issuance per credential type, then what it asks
/// to disclose against the disclose list (the sign list for signatures).
pub fn authorize(
    perms: &Permissions,
    kind: Kind,
    disclose: &ConDisCon,
    credentials: &[CredentialRequest],
) -> Result<(), IrmaError> {
    if kind == Kind::Issuing {
        check(
            &perms.issue,
            credentials.iter().map(|c| c.credential_type.as_str()),
        )?;
    }
    let attributes: Vec<&str> = disclose
        .iter()
        .flatten()
        .flatten()
        .map(|a| a.id())
        .collect();
    if attributes.is_empty() {
        return Ok(());
    }
    let list = if kind == Kind::Signing {
        &perms.sign
    } else {
        &perms.disclose
    };
    check(list, attributes)
}

/// Whether `host` matches `pattern`, where `*` stands for any run of characters.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    fn go(p: &[u8], h: &[u8]) -> bool {
        match p.split_first() {
            None => h.is_empty(),
            Some((b'*', rest)) => (0..=h.len()).any(|i| go(rest, &h[i..])),
            Some((c, rest)) => h
                .split_first()
                .is_some_and(|(d, hr)| c.eq_ignore_ascii_case(d) && go(rest, hr)),
        }
    }
    go(pattern.as_bytes(), host.as_bytes())
}

/// A request's `host` must be the server's own or match one of the requestor's patterns.
pub fn authorize_host(perms: &Permissions, host: &str, own: &str) -> Result<(), IrmaError> {
    if host.eq_ignore_ascii_case(own) || perms.hosts.iter().any(|p| host_matches(p, host)) {
        Ok(())
    } else {
        Err(err(Unauthorized, format!("host {host} is not permitted")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wildcards_cover_what_is_below_them() {
        let id = "irma-demo.RU.studentCard.studentID";
        for ok in [
            "*",
            "irma-demo.*",
            "irma-demo.RU.*",
            "irma-demo.RU.studentCard.*",
            id,
        ] {
            assert!(allows(&l(&[ok]), id), "{ok}");
        }
        for no in [
            "irma-demo",
            "irma-demo.RU",
            "irma-demo.MijnOverheid.*",
            "irma-demo.RU.studentCard",
            "irma-demo.RU.studentCard.level",
            "irma-dem.*",
            "irma-demo.RU.studentCard.studentID.*",
        ] {
            assert!(!allows(&l(&[no]), id), "{no}");
        }
        // A credential (issuance, or disclosing a whole credential).
        assert!(allows(&l(&["irma-demo.RU.*"]), "irma-demo.RU.studentCard"));
        assert!(allows(
            &l(&["irma-demo.RU.studentCard"]),
            "irma-demo.RU.studentCard"
        ));
        assert!(!allows(
            &l(&["irma-demo.RU.studentCard.*"]),
            "irma-demo.RU.studentCard"
        ));
    }

    #[test]
    fn refusals_name_the_first_identifier_refused() {
        let e = check(&l(&["a.b.c.*"]), ["a.b.c.d", "a.b.x.d"]).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (Unauthorized, "a.b.x.d"));
        let e = check(&[], ["a.b.c.d"]).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (Unauthorized, ""));
    }

    #[test]
    fn host_patterns() {
        assert!(host_matches("*.example.com", "irma.example.com"));
        assert!(host_matches("IRMA.example.com", "irma.EXAMPLE.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("irma.example.com", "evil.com"));
        let p = Permissions {
            hosts: l(&["*.example.com"]),
            ..Permissions::default()
        };
        assert!(authorize_host(&p, "a.example.com", "irma.local").is_ok());
        assert!(authorize_host(&p, "irma.local", "irma.local").is_ok());
        assert!(authorize_host(&p, "evil.com", "irma.local").is_err());
    }
}
