use weir_sdk::{enricher, ConfigError, Event, Fields, FromConfig};

/// Counts the events it enriched: changed by every call, with no RefCell.
pub struct Counter {
    seen: i64,
}

impl FromConfig for Counter {
    fn from_config(_: &mut weir_sdk::Config) -> Result<Counter, ConfigError> {
        Ok(Counter { seen: 0 })
    }
}

#[enricher(reads(pin_id: int?), writes(seen: int))]
fn enrich(event: &Event, counter: &mut Counter, out: &mut Fields) {
    if event.has(reads::pin_id) {
        counter.seen += 1;
    }
    out.set(writes::seen, counter.seen);
}

fn main() {
    let out = weir_plugin::test(&[r#"{"pin_id":7}"#, "{}", r#"{"pin_id":8}"#], &[]).unwrap();
    let seen: Vec<_> = out.iter().map(|o| o.added().get(writes::seen)).collect();
    assert_eq!(seen, [Some(1), Some(1), Some(2)]);
    // The next batch goes on from there; `init` starts afresh.
    let batch = weir_sdk::testing::TestBatch::new(&[r#"{"pin_id":9}"#]);
    let more = weir_plugin::enrich(&batch.view()).unwrap();
    assert_eq!(more.fields, br#"{"seen":3}"#);
    let out = weir_plugin::test(&[r#"{"pin_id":7}"#], &[]).unwrap();
    assert_eq!(out[0].added().get(writes::seen), Some(1));
}
