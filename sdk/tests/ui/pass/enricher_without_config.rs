use weir_sdk::{enricher, Event, Fields};

#[enricher(reads("user-agent": text?), writes(mobile: boolean?, "agent length": int))]
fn enrich(event: &Event, out: &mut Fields) {
    let agent = event.str("user-agent");
    out.set("mobile", agent.as_deref().map(|a| a.contains("Mobile")));
    out.set("agent length", agent.map_or(0, |a| a.len() as i64));
}

fn main() {
    let out = weir_plugin::test(&[r#"{"user-agent":"x Mobile"}"#], &[]).unwrap();
    assert_eq!(out[0].added().bool("mobile"), Some(true));
    assert_eq!(out[0].added().int("agent length"), Some(8));
}
