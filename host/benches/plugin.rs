//! Boundary and engine cost of the plugin runtime (a benchmark: it prints
//! figures, asserts nothing about time).
//!
//! ```text
//! cargo bench --bench plugin
//! ```
//!
//! The pass-through filter and the constant enricher of `tests/guests` (built
//! here for wasm32-wasip2 if needed) run over batches of 1, 64, 256, 1024 and
//! 4096 engagement events (~230 bytes each), epoch interruption on; then the
//! cost of rebuilding an instance after a trap, the host's memory over a
//! million events through hostile guests, and how long containment takes
//! when every event, one or ten of a 5,000-event batch overrun the deadline.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use weir::chain::{Chain, StepSpec};
use weir::event::batch::Batch;
use weir::plugin::{Kind, Limits, Runtime};

fn guests() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let target = root.join("target/guests");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--examples",
            "--quiet",
        ])
        .arg("--manifest-path")
        .arg(root.join("tests/guests/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("cargo");
    assert!(status.success(), "building the test guests failed");
    target.join("wasm32-wasip2/release/examples")
}

fn batch(n: usize) -> Batch {
    let mut b = Batch::default();
    for i in 0..n {
        let payload = format!(
            r#"{{"event_id":"{i:024x}","ts":1764000000000,"user_id":{i},"pin_id":{},"action":"save","ip":"81.2.69.142","user_agent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)","app":"web"}}"#,
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

fn main() -> anyhow::Result<()> {
    let dir = guests();
    let runtime = Runtime::new(None)?;
    println!("per event, boundary + engine, epoch interruption on (ns/event):");
    println!(
        "{:>8} {:>12} {:>12}",
        "batch", "pass filter", "constant enricher"
    );
    let load = |name: &str, kind| -> anyhow::Result<std::sync::Arc<StepSpec>> {
        Ok(std::sync::Arc::new(StepSpec::bare(
            runtime.load(&dir.join(format!("{name}.wasm")), kind)?,
        )))
    };
    let pass = load("pass", Kind::Filter)?;
    let constant = load("constant", Kind::Enricher)?;
    for size in [1usize, 64, 256, 1024, 4096] {
        let b = batch(size);
        let skip = vec![false; size];
        let mut row = Vec::new();
        for spec in [&pass, &constant] {
            let mut chain = Chain::new(std::slice::from_ref(spec))?;
            let rounds = (400_000 / size).max(50);
            for _ in 0..rounds / 10 {
                chain.run("t", &b, &skip)?;
            }
            let t = Instant::now();
            for _ in 0..rounds {
                chain.run("t", &b, &skip)?;
            }
            row.push(t.elapsed().as_nanos() as f64 / (rounds * size) as f64);
        }
        println!("{size:>8} {:>12.0} {:>12.0}", row[0], row[1]);
    }

    // Rebuilding an instance after a trap.
    let panics = runtime.load(&dir.join("panics.wasm"), Kind::Filter)?;
    let mut inst = panics.instantiate(Limits::default(), &[], &Default::default())?;
    let rounds = 200;
    let mut rebuild = Duration::ZERO;
    for _ in 0..rounds {
        let t = Instant::now();
        inst.rebuild(&[])?;
        rebuild += t.elapsed();
    }
    println!(
        "instance rebuild (instantiate from InstancePre + init): {:.1} µs",
        rebuild.as_secs_f64() * 1e6 / rounds as f64
    );

    // Memory over 1M events with hostile guests in the chain.
    let hostile = ["panics", "allocates", "short", "loops", "constant"];
    let mut specs = Vec::new();
    for name in hostile {
        let kind = if name == "constant" {
            Kind::Enricher
        } else {
            Kind::Filter
        };
        let mut spec = (*load(name, kind)?).clone();
        if name == "allocates" {
            spec.limits.memory_bytes = 32 << 20;
        }
        specs.push(std::sync::Arc::new(spec));
    }
    let mut chain = Chain::new(&specs)?;
    let size = 1024;
    let mut samples = Vec::new();
    let started = Instant::now();
    let mut dead = 0usize;
    for round in 0..(1_000_000 / size) {
        let mut b = Batch::default();
        for i in 0..size {
            let n = round * size + i;
            let note = if n % 20_000 == 7 {
                "panic"
            } else if n % 100_000 == 11 {
                "alloc"
            } else if n % 50_000 == 13 {
                "short"
            } else if n % 250_000 == 17 {
                "loop"
            } else {
                "ok"
            };
            let payload = format!(
                r#"{{"event_id":"{n:024x}","ts":1764000000000,"user_id":{n},"pin_id":{n},"action":"save","note":"{note}"}}"#
            );
            b.push(n as i64, 1, None, payload.as_bytes(), 1 << 20, 1 << 20);
        }
        let out = chain.run("t", &b, &vec![false; size])?;
        dead += out
            .outcomes
            .iter()
            .filter(|o| matches!(o, weir::chain::Outcome::Dead { .. }))
            .count();
        if round % 195 == 0 {
            samples.push(rss_mib());
        }
    }
    samples.push(rss_mib());
    println!(
        "1M events through panics, allocates (32 MiB cap), short, loops, constant: {dead} dead letters, \
         {:.1} s; host RSS (MiB) every ~200k events: {samples:?}",
        started.elapsed().as_secs_f64()
    );

    // Containment: 5,000-event batches in which every event, or one event,
    // overruns the deadline (default limits: 200 µs an event, 100 ms at least).
    println!("containment of `loops` at batch 5000 (default limits):");
    let loops = load("loops", Kind::Filter)?;
    for (what, looping) in [
        ("every event loops", 5000usize),
        ("one event loops", 1),
        ("ten events loop", 10),
        ("every other loops", 2500),
    ] {
        let mut chain = Chain::new(std::slice::from_ref(&loops))?;
        let mut b = Batch::default();
        for n in 0..5000 {
            let note = if n * looping / 5000 != (n + 1) * looping / 5000 {
                "loop"
            } else {
                "ok"
            };
            let payload = format!(r#"{{"event_id":"{n:024x}","note":"{note}"}}"#);
            b.push(n as i64, 1, None, payload.as_bytes(), 1 << 20, 1 << 20);
        }
        let t = Instant::now();
        let out = chain.run("t", &b, &vec![false; 5000])?;
        let dead = out
            .outcomes
            .iter()
            .filter(|o| matches!(o, weir::chain::Outcome::Dead { .. }))
            .count();
        println!(
            "  {what:<18} settled in {:>5.2} s: {} calls faulted, {dead} dead letters, {} batch settled without running each alone",
            t.elapsed().as_secs_f64(),
            chain.stats[0].faults,
            chain.stats[0].settled
        );
    }
    Ok(())
}

fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}
