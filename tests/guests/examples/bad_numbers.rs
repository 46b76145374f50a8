//! bad_numbers: answers additions with invalid UTF-8, a lone surrogate, deep nesting, out-of-range or over-long numbers, by "note" (must cause: a bad-result dead letter for each malformed one, exact digits kept for the valid ones, the rest enriched).
use weir_test_guests::payload_has;

/// The additions for one event whose note is `note`, or `None` for any other note.
fn additions(note: &str) -> Option<Vec<u8>> {
    let mut a = br#"{"weir_test":"#.to_vec();
    match note {
        "utf8" => a.extend_from_slice(b"\"a\xFFb\""),
        "surrogate" => a.extend_from_slice(br#""\ud800""#),
        "deep" => a.extend_from_slice(format!("{}{}", "[".repeat(200), "]".repeat(200)).as_bytes()),
        "inf" => a.extend_from_slice(b"1e400"),
        "digits400" => a.extend_from_slice(format!("1{}", "0".repeat(399)).as_bytes()),
        "bigtext" => a.extend_from_slice(b"12345678901234567890123"),
        "u64over" => return Some(br#"{"weir_int":18446744073709551616}"#.to_vec()),
        "float" => a.extend_from_slice(b"0.1000000000000000055511151231257827"),
        _ => return None,
    }
    a.push(b'}');
    Some(a)
}

const NOTES: [&str; 8] = ["utf8", "surrogate", "deep", "inf", "digits400", "bigtext", "u64over", "float"];

weir_test_guests::each_event!("bad-numbers", writes = ["weir_test" => Text, "weir_int" => Int], |events, i| {
    let note = NOTES
        .iter()
        .find(|n| payload_has(&events.payloads, &events.payload_ends, i, &format!(r#""note":"{n}""#)));
    note.and_then(|n| additions(n)).unwrap_or_else(|| br#"{"weir_test":"ok"}"#.to_vec())
});
