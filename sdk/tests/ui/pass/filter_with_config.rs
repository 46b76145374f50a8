use weir_sdk::types::{Any, Boolean};
use weir_sdk::{filter, Event, List, Read, Verdict};

#[derive(weir_sdk::Config)]
pub struct Settings {
    #[config(default = "save")]
    actions: List<String>,
    #[config(rename = "min-user")]
    min_user: Option<i64>,
    /// Declared reads named in the configuration.
    #[config(default = "action")]
    required: List<Read<Any>>,
    #[config(default = "is_bot")]
    bot_flag: Read<Boolean>,
}

#[filter(
    reads(action: text, user_id: int?, is_bot: boolean?, robot: boolean?),
    name = "custom-name",
    version = "2.0.0"
)]
fn keep(event: &Event, s: &Settings) -> Result<Verdict, weir_sdk::Reject> {
    if !event.is_object() {
        return Err(weir_sdk::Reject("not an object".into()));
    }
    if s.required.iter().any(|&f| !event.has(f)) || event.get(s.bot_flag) == Some(true) {
        return Ok(Verdict::Drop);
    }
    let user_ok = s
        .min_user
        .is_none_or(|m| event.get(reads::user_id).unwrap_or(0) >= m);
    let action_ok = event
        .get(reads::action)
        .is_some_and(|a| s.actions.iter().any(|k| *k == a));
    Ok(if user_ok && action_ok {
        Verdict::Keep
    } else {
        Verdict::Drop
    })
}

fn main() {
    use weir_sdk::testing::Outcome::{Dropped, Kept};
    let d = weir_plugin::describe();
    assert_eq!((d.name, d.version), ("custom-name", "2.0.0"));
    let events = [
        r#"{"action":"save","user_id":5}"#,
        r#"{"action":"save","user_id":7,"robot":true}"#,
        r#"{"user_id":7}"#,
    ];
    assert_eq!(
        weir_plugin::test(&events, &[("min-user", "6")]).unwrap(),
        [Dropped, Kept, Dropped]
    );
    let config = [("bot_flag", "robot"), ("required", "user_id")];
    assert_eq!(
        weir_plugin::test(&events, &config).unwrap(),
        [Kept, Dropped, Dropped]
    );
    let err = weir_plugin::test(&events, &[("bot_flag", "action")]).unwrap_err();
    assert_eq!(
        err,
        "config `bot_flag`: `action` is text, not boolean (got `action`)"
    );
    let err = weir_plugin::test(&events, &[("required", "action,ts")]).unwrap_err();
    assert_eq!(
        err,
        "config `required`: item `ts`: `ts` is not among the fields the plugin reads \
         (action, user_id, is_bot, robot) (got `action,ts`)"
    );
}
