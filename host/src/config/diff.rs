//! What changed between the configuration running and a new one, as the
//! supervisor in `pipeline::reload` applies it: compared field by
//! field (`PartialEq`), never through printed text.

use super::{Config, PipelineConfig};

/// How one pipeline present in both configurations changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineChange {
    Same,
    /// Its steps, columns or fields: new chains and a new table plan, taken
    /// by each writer at its next batch.
    Rechain,
    /// Anything else (topic, table, group, batching, writers, queue, record
    /// limits): stopped at a batch boundary and started again.
    Restart,
}

impl PipelineChange {
    pub fn between(old: &PipelineConfig, new: &PipelineConfig) -> PipelineChange {
        let frame = |p: &PipelineConfig| PipelineConfig {
            steps: Vec::new(),
            columns: Default::default(),
            fields: Default::default(),
            ..p.clone()
        };
        if frame(old) != frame(new) {
            PipelineChange::Restart
        } else if old.steps != new.steps || old.columns != new.columns || old.fields != new.fields {
            PipelineChange::Rechain
        } else {
            PipelineChange::Same
        }
    }
}

/// The difference between two configurations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    /// Sections read only at start that differ: a new file changing them is
    /// refused whole.
    pub fixed: Vec<&'static str>,
    /// Pipelines only in the new configuration.
    pub added: Vec<String>,
    /// Pipelines only in the old one.
    pub removed: Vec<String>,
    /// Pipelines in both, with how they changed (unchanged ones left out).
    pub changed: Vec<(String, PipelineChange)>,
}

impl ConfigDiff {
    pub fn between(old: &Config, new: &Config) -> ConfigDiff {
        let mut fixed = Vec::new();
        for (section, same) in [
            ("[kafka]", old.kafka == new.kafka),
            ("[singlestore]", old.singlestore == new.singlestore),
            ("[metrics]", old.metrics == new.metrics),
            ("[lookup.*]", old.lookups == new.lookups),
            ("[plugins] dir", old.plugin_dir() == new.plugin_dir()),
        ] {
            if !same {
                fixed.push(section);
            }
        }
        let mut diff = ConfigDiff {
            fixed,
            ..ConfigDiff::default()
        };
        for p in &new.pipelines {
            match old.pipeline(&p.name) {
                None => diff.added.push(p.name.clone()),
                Some(o) => match PipelineChange::between(o, p) {
                    PipelineChange::Same => {}
                    change => diff.changed.push((p.name.clone(), change)),
                },
            }
        }
        diff.removed = old
            .pipelines
            .iter()
            .filter(|o| new.pipeline(&o.name).is_none())
            .map(|o| o.name.clone())
            .collect();
        diff
    }

    /// How pipeline `name`, present in both, changed.
    pub fn change(&self, name: &str) -> PipelineChange {
        self.changed
            .iter()
            .find(|(n, _)| n == name)
            .map_or(PipelineChange::Same, |&(_, c)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const BASE: &str = r#"
        [kafka]
        brokers = "127.0.0.1:9092"
        [singlestore]
        url = "mysql://root@127.0.0.1/weir"
        [[pipeline]]
        name = "a"
        topic = "t"
        table = "events"
        fields = { action = "text" }
        columns = { action = "action" }
        [[pipeline]]
        name = "b"
        topic = "u"
        table = "other"
        columns = { action = "action" }
    "#;

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("/tmp/weir.toml")).expect("valid")
    }

    fn with(edit: &str, replace: &str) -> Config {
        assert!(BASE.contains(edit), "{edit}");
        parse(&BASE.replacen(edit, replace, 1))
    }

    #[test]
    fn the_same_text_is_no_change() {
        assert_eq!(
            ConfigDiff::between(&parse(BASE), &parse(BASE)),
            ConfigDiff::default()
        );
    }

    #[test]
    fn columns_and_fields_rechain_source_and_batching_restart() {
        let old = parse(BASE);
        let columns = with(
            "columns = { action = \"action\" }\n        [[pipeline]]",
            "columns = { action = \"action\", kind = \"action\" }\n        [[pipeline]]",
        );
        assert_eq!(
            ConfigDiff::between(&old, &columns).change("a"),
            PipelineChange::Rechain
        );
        let fields = with(
            "{ action = \"text\" }",
            "{ action = \"text\", n = \"int\" }",
        );
        assert_eq!(
            ConfigDiff::between(&old, &fields).change("a"),
            PipelineChange::Rechain
        );
        let topic = with("topic = \"t\"", "topic = \"t2\"");
        assert_eq!(
            ConfigDiff::between(&old, &topic).change("a"),
            PipelineChange::Restart
        );
        let batching = with("name = \"a\"", "name = \"a\"\n        writers = 3");
        let diff = ConfigDiff::between(&old, &batching);
        assert_eq!(diff.change("a"), PipelineChange::Restart);
        assert_eq!(diff.change("b"), PipelineChange::Same);
        assert!(diff.fixed.is_empty());
    }

    #[test]
    fn sections_read_at_start_are_named() {
        let old = parse(BASE);
        let new = with("127.0.0.1:9092", "127.0.0.1:9093");
        assert_eq!(ConfigDiff::between(&old, &new).fixed, ["[kafka]"]);
        let new = with("/weir\"", "/other\"");
        assert_eq!(ConfigDiff::between(&old, &new).fixed, ["[singlestore]"]);
    }

    #[test]
    fn pipelines_added_and_removed_by_name() {
        let old = parse(BASE);
        let new = with("name = \"b\"", "name = \"c\"");
        let diff = ConfigDiff::between(&old, &new);
        assert_eq!(diff.added, ["c"]);
        assert_eq!(diff.removed, ["b"]);
        assert!(diff.changed.is_empty());
    }
}
