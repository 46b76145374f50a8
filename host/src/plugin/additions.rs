//! An enricher's additions, parsed once, strictly.

use super::guest_text;

/// The most bytes of additions one event may get from one step.
pub const MAX_ADDITIONS_BYTES: usize = 1 << 20;

/// One event's additions, strictly: valid UTF-8 JSON (escapes included, no
/// lone surrogates), an object, nested at most 128 deep, under
/// [`MAX_ADDITIONS_BYTES`]. Numbers keep the digits the plugin wrote.
pub fn parse_additions(bytes: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    if bytes.len() > MAX_ADDITIONS_BYTES {
        return Err(format!(
            "additions of {} bytes, over the {} MiB cap",
            bytes.len(),
            MAX_ADDITIONS_BYTES >> 20
        ));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("additions are not a JSON object".into());
    }
    let fields = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
        .map_err(|e| {
            if e.to_string().starts_with("recursion limit exceeded") {
                "additions nest deeper than 128 levels".to_owned()
            } else {
                format!("additions are not valid JSON: {e}")
            }
        })?;
    reserved_keys(bytes)?;
    Ok(fields)
}

/// The names serde_json gives its own tokens (with `arbitrary_precision` and
/// `raw_value`, an object `{"$serde_json::private::Number": "…"}` is read as a
/// number, `{"$serde_json::private::RawValue": "…"}` as the JSON in the
/// string): a plugin's object named so would be read as something it did not
/// write, so such names are refused, at any depth and however escaped.
pub(super) const RESERVED: &str = "$serde_json::private::";

/// Refuses additions with a key in [`RESERVED`]'s namespace. The walk reads
/// each level as raw values, which serde_json never reinterprets; additions
/// without a `$` or a backslash, nearly all, skip it.
pub(super) fn reserved_keys(bytes: &[u8]) -> Result<(), String> {
    // The name starts with `$`, written as is or escaped: without either
    // byte no key can be in the namespace.
    if !bytes.iter().any(|&b| b == b'$' || b == b'\\') {
        return Ok(());
    }
    pub(super) fn walk(raw: &str) -> Result<(), String> {
        use serde_json::value::RawValue;
        match raw.trim_start().as_bytes().first() {
            Some(b'{') => {
                let map: std::collections::HashMap<String, &RawValue> =
                    serde_json::from_str(raw)
                        .map_err(|e| format!("additions are not valid JSON: {e}"))?;
                for (key, value) in map {
                    if key.starts_with(RESERVED) {
                        return Err(format!(
                            "additions use the reserved name `{}`",
                            guest_text(&key, 64)
                        ));
                    }
                    walk(value.get())?;
                }
                Ok(())
            }
            Some(b'[') => {
                let items: Vec<&RawValue> = serde_json::from_str(raw)
                    .map_err(|e| format!("additions are not valid JSON: {e}"))?;
                items.iter().try_for_each(|v| walk(v.get()))
            }
            _ => Ok(()),
        }
    }
    walk(std::str::from_utf8(bytes).map_err(|e| format!("additions are not valid JSON: {e}"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additions_are_parsed_strictly_and_keep_their_digits() {
        let ok = parse_additions(
            br#"{"a":12345678901234567890123,"b":0.1000000000000000055511151231257827}"#,
        )
        .expect("valid");
        assert_eq!(ok["a"].to_string(), "12345678901234567890123");
        assert_eq!(ok["b"].to_string(), "0.1000000000000000055511151231257827");
        // The digits as written; serde_json spells an exponent's sign out.
        assert_eq!(
            parse_additions(b"{\"a\":1e400}").expect("kept")["a"].to_string(),
            "1e+400"
        );
        let bad = |b: &[u8]| parse_additions(b).expect_err("must be refused");
        assert_eq!(bad(b"[1]"), "additions are not a JSON object");
        assert!(bad(b"{\"a\"").starts_with("additions are not valid JSON: "));
        assert!(
            bad(b"{\"a\":\"\xff\"}").contains("invalid unicode"),
            "{}",
            bad(b"{\"a\":\"\xff\"}")
        );
        assert!(bad(br#"{"a":"\ud800"}"#).starts_with("additions are not valid JSON: "));
        assert!(bad(br#"{"a":"\ud800x"}"#).starts_with("additions are not valid JSON: "));
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            bad(deep.as_bytes()),
            "additions nest deeper than 128 levels"
        );
        // serde_json's own token names cannot smuggle in another value.
        for sneaky in [
            r#"{"a":{"$serde_json::private::Number":"123"}}"#,
            r#"{"$serde_json::private::RawValue":"[1]"}"#,
            r#"{"a":[{"\u0024serde_json::private::RawValue":"{}"}]}"#,
        ] {
            assert!(
                bad(sneaky.as_bytes())
                    .starts_with("additions use the reserved name `$serde_json::private::"),
                "{sneaky}"
            );
        }
        assert!(parse_additions(br#"{"a":"\n$serde_json","b":{"c":[1,{"d":2}]}}"#).is_ok());
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_ADDITIONS_BYTES));
        assert!(bad(big.as_bytes()).contains("over the 1 MiB cap"));
    }
}
