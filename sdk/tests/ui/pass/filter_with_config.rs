use weir_sdk::{filter, Event, List, Verdict};

#[derive(weir_sdk::Config)]
pub struct Settings {
    #[config(default = "save")]
    actions: List<String>,
    #[config(rename = "min-user")]
    min_user: Option<i64>,
}

#[filter(reads(action: text, user_id: int?), name = "custom-name", version = "2.0.0")]
fn keep(event: &Event, s: &Settings) -> Result<Verdict, weir_sdk::Reject> {
    if !event.is_object() {
        return Err(weir_sdk::Reject("not an object".into()));
    }
    let user_ok = s.min_user.is_none_or(|m| event.int("user_id").unwrap_or(0) >= m);
    let action_ok = event.str("action").is_some_and(|a| s.actions.iter().any(|k| *k == a));
    Ok(if user_ok && action_ok { Verdict::Keep } else { Verdict::Drop })
}

fn main() {
    let d = weir_plugin::describe();
    assert_eq!((d.name, d.version), ("custom-name", "2.0.0"));
    let out = weir_plugin::test(&[r#"{"action":"save","user_id":5}"#], &[("min-user", "6")]).unwrap();
    assert_eq!(out, [weir_sdk::testing::Outcome::Dropped]);
}
