//! A plugin's additions: the strict parser never panics, accepts exactly the
//! JSON objects serde_json accepts (within the size cap and depth limit, and
//! without serde_json's own token names, which would make serde_json read
//! something else than was written), reads them as serde_json does, and what it
//! accepts serializes back to something it parses to the same fields, numbers
//! digit for digit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::plugin::{parse_additions, MAX_ADDITIONS_BYTES};

fuzz_target!(|data: &[u8]| {
    let ours = parse_additions(data);
    let theirs = serde_json::from_slice::<serde_json::Value>(data);
    match &ours {
        Ok(fields) => {
            match &theirs {
                Ok(serde_json::Value::Object(m)) => assert_eq!(m, fields),
                other => panic!("accepted what serde_json reads as {other:?}"),
            }
            let again = serde_json::to_vec(fields).expect("serializes");
            assert_eq!(parse_additions(&again).as_ref(), Ok(fields), "round trip");
        }
        Err(reason) => {
            assert!(reason.starts_with("additions "), "{reason}");
            if data.len() <= MAX_ADDITIONS_BYTES
                && !reason.contains("nest deeper")
                && !reason.contains("reserved name")
            {
                assert!(!matches!(theirs, Ok(serde_json::Value::Object(_))), "{reason}");
            }
        }
    }
});
