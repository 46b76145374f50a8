//! huge: answers 200 MiB of additions for events with "note":"huge" (must cause: a memory dead letter, the rest enriched).
use weir_test_guests::payload_has;

weir_test_guests::each_event!("huge", writes = ["weir_test" => Text], |events, i| {
    if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"huge""#) {
        let mut a = br#"{"weir_test":""#.to_vec();
        a.resize(a.len() + (200 << 20), b'x');
        a.extend_from_slice(br#""}"#);
        a
    } else {
        br#"{"weir_test":"ok"}"#.to_vec()
    }
});
