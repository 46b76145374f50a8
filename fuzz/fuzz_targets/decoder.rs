//! The event decoder against serde_json, differentially: whatever the fast
//! path accepts, serde_json accepts with the same fields and the same raw
//! values; whatever it leaves, `decode` answers exactly as serde_json does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::event::convert::Decoder;

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static DECODER: Decoder = Decoder::new(
            ["event_id", "ts", "user_id", "ip", "a", "é", ""]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
    }
    DECODER.with(|dec| {
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        let answer = dec.decode(data, &mut fast);
        let serde = dec.decode_serde(data, &mut slow);
        let took_fast = std::str::from_utf8(data)
            .ok()
            .and_then(|t| weir::event::scan::object(t, |_, _| ()))
            .is_some();
        if took_fast {
            assert_eq!(serde, Ok(()), "the fast path accepted what serde_json refuses");
            assert_eq!(fast, slow, "the fast path found other values");
        } else {
            assert_eq!(answer, serde);
            assert_eq!(fast, slow);
        }
    });
});
