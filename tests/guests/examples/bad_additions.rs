//! bad-additions: answers additions that are not a JSON object for events with "note":"bad" (must cause: a bad-result dead letter, the rest enriched).
use weir_test_guests::payload_has;

weir_test_guests::each_event!("bad-additions", writes = ["weir_test" => Text], |events, i| {
    if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"bad""#) {
        b"[not json".to_vec()
    } else {
        br#"{"weir_test":"ok"}"#.to_vec()
    }
});
