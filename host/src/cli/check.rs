//! `weir check`: a configuration checked as `weir run` would, without
//! consuming anything; prints each pipeline's steps and what they read and
//! write, and the SQL to keep a field no column takes.

use weir::chain::fields::{keep_suggestion, show, unmapped_writes};
use weir::config::Config;
use weir::plugin::FieldSpec;
use weir::store::db;

use super::{ConfigArgs, Failure};

pub async fn execute(args: ConfigArgs) -> Result<(), Failure> {
    let config = Config::load(&args.config)?;
    let pool = if config.needs_database() {
        db::pool_for(&config)?
    } else {
        db::unused_pool()
    };
    let (prepared, _) = weir::pipeline::prepare(&config, &pool, true).await?;
    let list = |specs: &[FieldSpec]| {
        if specs.is_empty() {
            return "-".to_string();
        }
        specs.iter().map(show).collect::<Vec<_>>().join(", ")
    };
    for p in &prepared {
        let c = &p.config;
        match &p.target {
            weir::pipeline::Target::Table(_) => println!(
                "pipeline `{}`: topic `{}` -> table `{}` ({} columns checked)",
                c.name,
                c.topic,
                c.table,
                c.columns.len()
            ),
            weir::pipeline::Target::Archive(a) => println!(
                "pipeline `{}`: topic `{}` -> archive {} ({}, {} columns: {})",
                c.name,
                c.topic,
                a.bucket.url(),
                a.settings.format.extension(),
                a.layout.columns.len(),
                a.layout
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
        if c.fields.is_empty() && !p.steps.is_empty() {
            println!("  note: no `fields` declared, so the steps' reads are not checked");
        }
        for (n, s) in p.steps.iter().enumerate() {
            let d = &s.description;
            println!(
                "  step {}: {} {} ({}, sha256 {})\n    reads:  {}\n    writes: {}",
                n + 1,
                s.plugin.name,
                s.version(),
                s.plugin.kind.as_str(),
                s.plugin.short_hash(),
                list(&d.reads),
                list(&d.writes)
            );
            if let Some(c) = &s.canary {
                println!("    canary: {} on one batch in {}", c.spec.label(), c.every);
            }
        }
        for (field, step) in unmapped_writes(c, &p.steps) {
            println!("{}", keep_suggestion(&c.table, field, step));
        }
    }
    println!("{}: ok", args.config.display());
    Ok(())
}
