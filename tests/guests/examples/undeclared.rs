//! undeclared: declares it writes only `weir_test`, but also adds `country` and `event_id` for "note":"sneak" (must cause: a dead letter for the undeclared fields, or with undeclared_writes = "drop" the fields removed; the rest enriched).
use weir_test_guests::payload_has;

weir_test_guests::each_event!("undeclared", writes = ["weir_test" => Text], |events, i| {
    if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"sneak""#) {
        br#"{"weir_test":"ok","country":"XX","event_id":"forged"}"#.to_vec()
    } else {
        br#"{"weir_test":"ok"}"#.to_vec()
    }
});
