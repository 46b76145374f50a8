//! engagement-filter: keeps the engagement worth analysing. An event goes on
//! when it has every required field, its action is one of the configured
//! actions, and it does not come from a bot (by a user-agent rule or a flag).
//! Dropped events are counted; a payload that is not a JSON object is rejected.
//!
//! ```toml
//! [[pipeline.step]]
//! plugin = "engagement-filter"
//! config = { actions = "click,save,closeup", bot_agents = "bot,crawler,spider" }
//! ```

use weir_sdk::text::Markers;
use weir_sdk::types::{Any, Boolean};
use weir_sdk::{filter, Event, List, Read, Verdict};

/// The step's `config`. The fields it names must be among the plugin's
/// reads (`init` fails otherwise), `bot_flag` a boolean one.
#[derive(weir_sdk::Config)]
pub struct Settings {
    /// Actions to keep, comma separated.
    #[config(default = "click,save,closeup")]
    pub actions: List<String>,
    /// A user agent containing any of these (ignoring ASCII case) is a bot's.
    #[config(default = "bot,crawler,spider,slurp,headless,python-requests,curl/,wget/")]
    pub bot_agents: Markers,
    /// A boolean field that, when true, marks the event as a bot's.
    #[config(default = "is_bot")]
    pub bot_flag: Read<Boolean>,
    /// Fields an event must carry (present and not null) to be kept.
    #[config(default = "event_id,ts,user_id,pin_id,action")]
    pub required: List<Read<Any>>,
}

#[filter(reads(event_id: text, ts: int, user_id: int, pin_id: int, action: text, user_agent: text?, is_bot: boolean?))]
fn keep(event: &Event, settings: &Settings) -> Verdict {
    if !event.is_object() {
        return Verdict::Reject("payload is not a JSON object".into());
    }
    if settings.required.iter().any(|&f| !event.has(f)) {
        return Verdict::Drop;
    }
    let Some(action) = event.get(reads::action) else {
        return Verdict::Drop;
    };
    if !settings.actions.iter().any(|a| *a == action) {
        return Verdict::Drop;
    }
    if event.get(settings.bot_flag) == Some(true) {
        return Verdict::Drop;
    }
    if let Some(agent) = event.get(reads::user_agent) {
        if settings.bot_agents.found_in(agent.as_bytes()) {
            return Verdict::Drop;
        }
    }
    Verdict::Keep
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::Outcome::{Dropped, Kept, Rejected};

    use super::weir_plugin;

    const BROWSER: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)";

    fn event(action: &str, agent: &str) -> String {
        format!(
            r#"{{"event_id":"e1","ts":1,"user_id":2,"pin_id":3,"action":"{action}","user_agent":"{agent}"}}"#
        )
    }

    #[test]
    fn keeps_configured_actions_from_people() {
        let events = [
            event("save", BROWSER),
            event("hide", BROWSER),
            event("click", BROWSER),
        ];
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        let out = weir_plugin::test(&events, &[]).unwrap();
        assert_eq!(out, [Kept, Dropped, Kept]);
        let out = weir_plugin::test(&events, &[("actions", "hide")]).unwrap();
        assert_eq!(out, [Dropped, Kept, Dropped]);
    }

    #[test]
    fn drops_bots_by_agent_or_flag() {
        let events = [
            event("save", "Mozilla/5.0 (compatible; Googlebot/2.1)"),
            event("save", "Mozilla/5.0 (compatible; bingBOT/2.0)"),
            r#"{"event_id":"e1","ts":1,"user_id":2,"pin_id":3,"action":"save","is_bot":true}"#
                .to_string(),
            r#"{"event_id":"e1","ts":1,"user_id":2,"pin_id":3,"action":"save","is_bot":false}"#
                .to_string(),
        ];
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        let out = weir_plugin::test(&events, &[]).unwrap();
        assert_eq!(out, [Dropped, Dropped, Dropped, Kept]);
        let out = weir_plugin::test(&events[..1], &[("bot_agents", "crawler")]).unwrap();
        assert_eq!(out, [Kept]);
    }

    #[test]
    fn drops_events_missing_required_fields_and_rejects_non_objects() {
        let out = weir_plugin::test(
            &[
                r#"{"event_id":"e1","ts":1,"user_id":2,"action":"save"}"#,
                r#"{"event_id":"e1","ts":1,"user_id":2,"pin_id":null,"action":"save"}"#,
                r#"[1,2,3]"#,
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            out,
            [
                Dropped,
                Dropped,
                Rejected("payload is not a JSON object".into())
            ]
        );
    }

    #[test]
    fn a_misspelt_key_fails_init_naming_it() {
        let err = weir_plugin::test(&[], &[("action", "save")]).unwrap_err();
        assert!(err.starts_with("config `action`: unknown key"), "{err}");
    }

    #[test]
    fn configured_fields_are_declared_reads() {
        let events = [
            r#"{"event_id":"e1","ts":1,"user_id":2,"pin_id":3,"action":"save"}"#,
            r#"{"event_id":"e1","ts":1,"user_id":2,"action":"save","is_bot":true}"#,
        ];
        let config = [("required", "event_id,action"), ("bot_flag", "is_bot")];
        assert_eq!(
            weir_plugin::test(&events, &config).unwrap(),
            [Kept, Dropped]
        );
        let err = weir_plugin::test(&events, &[("bot_flag", "bot")]).unwrap_err();
        assert!(
            err.starts_with("config `bot_flag`: `bot` is not among the fields the plugin reads"),
            "{err}"
        );
        let err = weir_plugin::test(&events, &[("bot_flag", "action")]).unwrap_err();
        assert!(
            err.starts_with("config `bot_flag`: `action` is text, not boolean"),
            "{err}"
        );
        let err = weir_plugin::test(&events, &[("required", "event_id,country")]).unwrap_err();
        assert!(
            err.starts_with("config `required`: item `country`: `country` is not among"),
            "{err}"
        );
    }

    #[test]
    fn describes_what_it_reads() {
        let d = weir_plugin::describe();
        assert_eq!(d.name, "engagement-filter");
        assert!(d.reads.iter().any(|f| f.name == "user_agent" && f.nullable));
        assert!(d.writes.is_empty());
    }
}
