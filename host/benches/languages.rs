//! The same enrichment written in Rust, Python and JavaScript (a benchmark: it
//! prints figures and ratios, asserts nothing).
//!
//! ```text
//! cargo bench --bench languages
//! ```
//!
//! The enrichment is what `weir plugin new NAME --kind enricher --lang L`
//! generates in each language (the hour of the day of the event's `ts`),
//! built as a user builds it: `cargo build --target wasm32-wasip2 --release`,
//! `sdk/python/build`, `sdk/js/build`. For each: the component's size, its
//! build time, its first load (compiled to native code) and a cached load (the
//! artifact read back), instantiation with `init`, events/s on one core over
//! batches of 1,024 engagement events through the host's chain, and the
//! growth of the process's resident memory: for the step's first instance
//! (its code read back from the cache, the instance, one batch run) and for
//! each further instance (having run a batch too).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::chain::{Chain, StepSpec};
use weir::event::batch::Batch;
use weir::plugin::{Kind, Limits, Runtime};
use weir::tools::scaffold::{new_plugin, Lang, PluginKind};

const BATCH: usize = 1024;
const EXTRA_INSTANCES: usize = 4;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn batch(n: usize) -> Batch {
    let mut b = Batch::default();
    for i in 0..n {
        let payload = format!(
            r#"{{"event_id":"{i:024x}","ts":{},"user_id":{i},"pin_id":{},"action":"save","ip":"81.2.69.142","user_agent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)","app":"web"}}"#,
            1_764_000_000_000i64 + i as i64 * 61_000,
            i * 7919
        );
        b.push(
            i as i64,
            1,
            Some(b"k"),
            payload.as_bytes(),
            1 << 20,
            1 << 20,
        );
    }
    b
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Scaffolds and builds the enricher in `lang`; the component and the build time.
fn build(lang: Lang, dir: &Path) -> anyhow::Result<(PathBuf, Duration)> {
    let name = match lang {
        Lang::Rust => "hour-rust",
        Lang::Python => "hour-python",
        Lang::Js => "hour-js",
    };
    let project = dir.join(name);
    let _ = std::fs::remove_dir_all(&project);
    let sdk = root().join("sdk");
    new_plugin(name, PluginKind::Enricher, lang, &project, &sdk)?;
    let out = dir.join(format!("{name}.wasm"));
    let started = Instant::now();
    match lang {
        Lang::Rust => {
            let target = root().join("target/bench-languages");
            run(Command::new(env!("CARGO"))
                .args(["build", "--quiet", "--target", "wasm32-wasip2", "--release"])
                .current_dir(&project)
                .env("CARGO_TARGET_DIR", &target)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS"))?;
            std::fs::copy(
                target.join(format!(
                    "wasm32-wasip2/release/{}.wasm",
                    name.replace('-', "_")
                )),
                &out,
            )?;
        }
        Lang::Python => run(Command::new(sdk.join("python/build"))
            .arg(&project)
            .arg(&out))?,
        Lang::Js => run(Command::new(sdk.join("js/build")).arg(&project).arg(&out))?,
    }
    Ok((out, started.elapsed()))
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("weir-bench-languages-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let b = batch(BATCH);
    let skip = vec![false; BATCH];
    println!(
        "the same enricher (`weir plugin new --kind enricher`) in three languages; batches of {BATCH}"
    );
    println!(
        "{:>8} {:>10} {:>8} {:>9} {:>9} {:>10} {:>10} {:>11} {:>12} {:>12}",
        "lang",
        "size KiB",
        "build s",
        "cold ms",
        "cached ms",
        "instance ms",
        "ns/event",
        "events/s",
        "RSS 1st MiB",
        "RSS next MiB"
    );
    println!("(RSS 1st: the step's code from the cache + its first instance; next: each further instance)");
    let mut per_event = Vec::new();
    for lang in [Lang::Rust, Lang::Python, Lang::Js] {
        let (wasm, build_time) = build(lang, &dir)?;
        let size = std::fs::metadata(&wasm)?.len();
        // A first load compiles; a second runtime with the same cache reads
        // the artifact back.
        let cache = dir.join(format!("cache-{lang:?}"));
        let _ = std::fs::remove_dir_all(&cache);
        let t = Instant::now();
        let plugin = Runtime::new(Some(cache.clone()))?.load(&wasm, Kind::Enricher)?;
        let cold = t.elapsed();
        drop(plugin);
        // From here on the step's memory is counted: its code read back from
        // the cache, then its instances.
        let before = rss();
        let t = Instant::now();
        let plugin = Runtime::new(Some(cache.clone()))?.load(&wasm, Kind::Enricher)?;
        let cached = t.elapsed();
        let t = Instant::now();
        drop(plugin.instantiate(Limits::default(), &[], &Default::default())?);
        let instance = t.elapsed();

        let spec = Arc::new(StepSpec::bare(plugin));
        let mut first = Chain::new(std::slice::from_ref(&spec))?;
        first.run("t", &b, &skip)?;
        let after_first = rss();
        let mut others = Vec::new();
        for _ in 0..EXTRA_INSTANCES {
            let mut c = Chain::new(std::slice::from_ref(&spec))?;
            c.run("t", &b, &skip)?;
            others.push(c);
        }
        let after_others = rss();

        let rounds = 200;
        for _ in 0..rounds / 10 {
            first.run("t", &b, &skip)?;
        }
        let t = Instant::now();
        for _ in 0..rounds {
            first.run("t", &b, &skip)?;
        }
        let ns = t.elapsed().as_nanos() as f64 / (rounds * BATCH) as f64;
        per_event.push(ns);
        let mib = |bytes: u64| bytes as f64 / 1048576.0;
        println!(
            "{:>8} {:>10.0} {:>8.1} {:>9.0} {:>9.1} {:>10.1} {:>10.0} {:>11.0} {:>12.1} {:>12.1}",
            format!("{lang:?}").to_lowercase(),
            size as f64 / 1024.0,
            build_time.as_secs_f64(),
            cold.as_secs_f64() * 1e3,
            cached.as_secs_f64() * 1e3,
            instance.as_secs_f64() * 1e3,
            ns,
            1e9 / ns,
            mib(after_first.saturating_sub(before)),
            mib(after_others.saturating_sub(after_first)) / EXTRA_INSTANCES as f64,
        );
    }
    println!(
        "time per event against Rust: python {:.1}x, js {:.1}x",
        per_event[1] / per_event[0],
        per_event[2] / per_event[0]
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
