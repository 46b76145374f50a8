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
//! cost of rebuilding an instance after a trap.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use weir::batch::Batch;
use weir::chain::{Chain, StepSpec};
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
        Ok(std::sync::Arc::new(StepSpec {
            plugin: runtime.load(&dir.join(format!("{name}.wasm")), kind)?,
            config: Vec::new(),
            limits: Limits::default(),
            files: None,
        }))
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
    let mut inst = panics.instantiate(Limits::default(), &[], None)?;
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
    Ok(())
}
