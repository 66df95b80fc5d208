//! `irma-server session show`: a stored session as JSON, for operators. Records are the
//! guest's and opaque to the host, but self-describing: schema 1 is JSON, later schemas CBOR
//! (the guest's `record` module lists their keys), so this prints any of them without knowing
//! their schema.

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::store::{Loaded, status_name};

/// A session as `session show` prints it: where it stands, and its record.
pub fn describe(loaded: &Loaded) -> Result<Value> {
    let s = &loaded.summary;
    Ok(json!({
        "clientToken": loaded.ct,
        "requestorToken": loaded.rt,
        "version": loaded.version,
        "status": status_name(s.status),
        "previousStatus": s.previous.map(status_name),
        "lapsesAtMs": s.lapses_at_ms,
        "record": record_as_json(&loaded.record)?,
    }))
}

/// A record of any schema as JSON: JSON as it is, CBOR converted.
pub fn record_as_json(record: &[u8]) -> Result<Value> {
    if record.first() == Some(&b'{') {
        return Ok(serde_json::from_slice(record)?);
    }
    let value: ciborium::Value = match ciborium::from_reader(record) {
        Ok(v) => v,
        Err(e) => bail!("the record is neither JSON nor CBOR: {e}"),
    };
    Ok(serde_json::to_value(&value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_cbor_records_print_alike_and_garbage_is_refused() {
        let json = br#"{"schema":1,"rt":"x","status":"DONE"}"#;
        let mut cbor = Vec::new();
        ciborium::into_writer(&json!({"v": 3, "rt": "x", "s": 3}), &mut cbor).unwrap();
        assert_eq!(
            record_as_json(json).unwrap(),
            json!({"schema": 1, "rt": "x", "status": "DONE"})
        );
        assert_eq!(
            record_as_json(&cbor).unwrap(),
            json!({"v": 3, "rt": "x", "s": 3})
        );
        assert!(record_as_json(b"\xff\xfe").is_err());
        assert!(record_as_json(b"{no").is_err());
    }
}
