use weir_sdk::{enricher, Event, Fields};

#[enricher(
    reads("user-agent" as user_agent: text?, type: text?),
    writes(mobile: boolean?, "agent length" as agent_length: int, r#type: text)
)]
fn enrich(event: &Event, out: &mut Fields) {
    let agent = event.get(reads::user_agent);
    out.set(
        writes::mobile,
        agent.as_deref().map(|a| a.contains("Mobile")),
    );
    out.set(writes::agent_length, agent.map_or(0, |a| a.len() as i64));
    out.set(writes::r#type, event.get(reads::r#type).unwrap_or_default());
}

fn main() {
    let out = weir_plugin::test(&[r#"{"user-agent":"x Mobile","type":"t"}"#], &[]).unwrap();
    assert_eq!(out[0].added().get(writes::mobile), Some(true));
    assert_eq!(out[0].added().get(writes::agent_length), Some(8));
    assert_eq!(
        out[0].added().0,
        r#"{"mobile":true,"agent length":8,"type":"t"}"#
    );
    let d = weir_plugin::describe();
    assert_eq!(d.reads[0].name, "user-agent");
    assert_eq!(d.writes[2].name, "type");
}
