//! A plugin's additions: the strict parser never panics, accepts exactly the
//! JSON objects serde_json accepts (within the size cap and depth limit), and
//! what it accepts serializes back to something it parses to the same fields,
//! numbers digit for digit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::plugin::{parse_additions, MAX_ADDITIONS_BYTES};

fuzz_target!(|data: &[u8]| {
    let ours = parse_additions(data);
    let theirs = serde_json::from_slice::<serde_json::Value>(data);
    match &ours {
        Ok(fields) => {
            assert!(matches!(theirs, Ok(serde_json::Value::Object(_))));
            let again = serde_json::to_vec(fields).expect("serializes");
            assert_eq!(parse_additions(&again).as_ref(), Ok(fields), "round trip");
        }
        Err(reason) => {
            assert!(reason.starts_with("additions "), "{reason}");
            if data.len() <= MAX_ADDITIONS_BYTES && !reason.contains("nest deeper") {
                assert!(!matches!(theirs, Ok(serde_json::Value::Object(_))), "{reason}");
            }
        }
    }
});
