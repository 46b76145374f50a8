//! The chain's fields, checked before anything runs: each step's reads are
//! satisfied by the source fields the TOML declares or by an earlier step's
//! writes, with a fitting type, and every mapped column's field exists. The
//! result, the type of every field a column may take, is what the table plan
//! is then checked against.

use std::collections::BTreeMap;
use std::fmt;

use crate::chain::StepSpec;
use crate::config::{Config, ConfigError, FieldType};

/// Who sets a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The source event (declared in `pipeline.fields`).
    Source,
    /// A step's plugin, by name.
    Step(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Source => f.write_str("the source events"),
            Origin::Step(p) => write!(f, "plugin `{p}`"),
        }
    }
}

/// A field as the chain leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    pub ty: FieldType,
    /// Whether it may be null (a source field may always be absent).
    pub nullable: bool,
    pub origin: Origin,
}

/// Fields by name.
pub type Fields = BTreeMap<String, FieldInfo>;

fn from_wit(t: crate::plugin::FieldType) -> FieldType {
    use crate::plugin::FieldType as W;
    match t {
        W::Text => FieldType::Text,
        W::Int => FieldType::Int,
        W::Float => FieldType::Float,
        W::Boolean => FieldType::Boolean,
        W::Json => FieldType::Json,
    }
}

fn name(t: FieldType) -> &'static str {
    match t {
        FieldType::Text => "text",
        FieldType::Int => "int",
        FieldType::Float => "float",
        FieldType::Boolean => "boolean",
        FieldType::Json => "json",
    }
}

/// `name type` with `?` when nullable, as `weir check` prints a field.
pub fn show(f: &crate::plugin::FieldSpec) -> String {
    format!(
        "{} {}{}",
        crate::plugin::guest_text(&f.name, 128),
        name(from_wit(f.type_)),
        if f.nullable { "?" } else { "" }
    )
}

/// A column type that takes a field of this type, in SQL SingleStore and
/// MariaDB both run.
pub fn column_type(f: &crate::plugin::FieldSpec) -> String {
    let ty = match from_wit(f.type_) {
        FieldType::Int => "BIGINT",
        FieldType::Float => "DOUBLE",
        FieldType::Text => "VARCHAR(255)",
        FieldType::Boolean => "TINYINT",
        FieldType::Json => "JSON",
    };
    format!("{ty} {}", if f.nullable { "NULL" } else { "NOT NULL" })
}

/// What `weir check` prints for a field a step writes that no column takes:
/// the SQL and the mapping that would keep it. The name is the plugin's, so it
/// is quoted as an identifier in the SQL and as a string in the TOML: nothing a
/// plugin names can become a statement of its own.
pub fn keep_suggestion(table: &str, field: &crate::plugin::FieldSpec, step: &str) -> String {
    let toml_string = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let key = if !field.name.is_empty()
        && field
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        field.name.clone()
    } else {
        toml_string(&field.name)
    };
    format!(
        "  note: `{}` (written by `{}`) goes to no column; to keep it:\n    \
         ALTER TABLE {} ADD COLUMN {} {};\n    \
         and under [pipeline.columns]: {key} = {}",
        crate::plugin::guest_text(&field.name, 128),
        crate::plugin::guest_text(step, 128),
        crate::store::sql::ident(table),
        crate::store::sql::ident(&field.name),
        column_type(field),
        toml_string(&field.name),
    )
}

/// Fields the steps write that no column takes, with the step writing each
/// (the last one, if several do).
pub fn unmapped_writes<'a>(
    p: &crate::config::PipelineConfig,
    steps: &'a [std::sync::Arc<StepSpec>],
) -> Vec<(&'a crate::plugin::FieldSpec, &'a str)> {
    let mut out: Vec<(&crate::plugin::FieldSpec, &str)> = Vec::new();
    for s in steps {
        for w in &s.description.writes {
            if p.columns.values().any(|from| *from == w.name) {
                continue;
            }
            out.retain(|(f, _)| f.name != w.name);
            out.push((w, &s.description.name));
        }
    }
    out
}

/// Whether a field of type `has` can be read as `wants`.
fn readable(has: FieldType, wants: FieldType) -> bool {
    has == wants || wants == FieldType::Json || (has == FieldType::Int && wants == FieldType::Float)
}

/// The fields a pipeline declares its source events to carry.
pub fn source_fields(p: &crate::config::PipelineConfig) -> Fields {
    p.fields
        .iter()
        .map(|(n, &ty)| {
            (
                n.clone(),
                FieldInfo {
                    ty,
                    nullable: true,
                    origin: Origin::Source,
                },
            )
        })
        .collect()
}

/// Walks pipeline `i`'s chain. When the pipeline declares no source fields,
/// reads cannot be checked and only the steps' writes are known.
pub fn chain_fields(
    config: &Config,
    i: usize,
    steps: &[std::sync::Arc<StepSpec>],
) -> Result<Fields, ConfigError> {
    let p = &config.pipelines[i];
    let declared = !p.fields.is_empty();
    let mut fields = source_fields(p);
    for (n, step) in steps.iter().enumerate() {
        let d = &step.description;
        let at = format!("pipeline[{i}].step[{n}].plugin");
        for r in &d.reads {
            let wants = from_wit(r.type_);
            match fields.get(&r.name) {
                None if declared && !r.nullable => {
                    return Err(config.error_at(
                        &at,
                        format!(
                            "plugin `{}` reads `{}` ({}), which pipeline[{i}].fields does not declare and no earlier step writes",
                            d.name,
                            r.name,
                            name(wants)
                        ),
                    ))
                }
                None => {}
                Some(f) if !readable(f.ty, wants) => {
                    return Err(config.error_at(
                        &at,
                        format!(
                            "plugin `{}` reads `{}` as {}, but {} gives it as {}",
                            d.name,
                            r.name,
                            name(wants),
                            f.origin,
                            name(f.ty)
                        ),
                    ))
                }
                Some(f) if f.nullable && !r.nullable && f.origin != Origin::Source => {
                    return Err(config.error_at(
                        &at,
                        format!(
                            "plugin `{}` reads `{}` as never null, but {} may write null",
                            d.name, r.name, f.origin
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        for w in &d.writes {
            fields.insert(
                w.name.clone(),
                FieldInfo {
                    ty: from_wit(w.type_),
                    nullable: w.nullable,
                    origin: Origin::Step(d.name.clone()),
                },
            );
        }
    }
    if declared || !steps.is_empty() {
        for (column, source) in &p.columns {
            if source.starts_with('@') || fields.contains_key(source) {
                continue;
            }
            if declared {
                return Err(config.error_at(
                    &format!("pipeline[{i}].columns.{column}"),
                    format!(
                        "field `{source}` is neither declared in pipeline[{i}].fields nor written by a step"
                    ),
                ));
            }
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod suggestion_tests {
    use super::*;
    use crate::plugin::{FieldSpec, FieldType as WitType};

    #[test]
    fn a_plugin_named_field_cannot_become_sql_or_toml() {
        let field = FieldSpec {
            name: "x INT NULL; DROP TABLE engagement; -- `".into(),
            type_: WitType::Int,
            nullable: true,
        };
        let text = keep_suggestion("engagement", &field, "evil");
        let sql = text
            .lines()
            .find(|l| l.contains("ALTER TABLE"))
            .expect("sql line");
        assert_eq!(
            sql.trim(),
            "ALTER TABLE `engagement` ADD COLUMN `x INT NULL; DROP TABLE engagement; -- ``` BIGINT NULL;"
        );
        let toml_line = text.lines().last().expect("toml line");
        let mapping = toml_line.split_once(": ").expect("mapping").1;
        let parsed: toml::Table = toml::from_str(mapping).expect("valid TOML");
        assert_eq!(parsed.len(), 1);
        assert_eq!(
            parsed.values().next().and_then(|v| v.as_str()),
            Some(field.name.as_str())
        );
        let plain = FieldSpec {
            name: "device".into(),
            type_: WitType::Text,
            nullable: true,
        };
        assert!(keep_suggestion("t", &plain, "s").ends_with("device = \"device\""));
    }
}
