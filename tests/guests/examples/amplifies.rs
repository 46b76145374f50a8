//! amplifies: for "note":"amplify" asks `lookup-many` on table "big" for 60,000 keys, all "k" (must cause: the answer refused for the memory cap before the host builds it, a resource dead letter, the rest enriched).
use weir_test_guests::payload_has;

weir_test_guests::each_event!("amplifies", writes = ["weir_test" => Text], |events, i| {
    if payload_has(&events.payloads, &events.payload_ends, i, r#""note":"amplify""#) {
        let keys = vec![b'k'; 60_000];
        let ends: Vec<u32> = (1..=60_000).collect();
        let (_values, _value_ends, found) = lookup_many("big", &keys, &ends);
        let count = found.iter().filter(|f| **f).count();
        format!(r#"{{"weir_test":"{count}"}}"#).into_bytes()
    } else {
        br#"{"weir_test":"ok"}"#.to_vec()
    }
});
