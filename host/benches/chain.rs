//! The Pinterest chain (engagement-filter → geo-enricher → category-enricher)
//! per event, as wasm components in the host, beside the same plugin crates
//! compiled natively and called through the same batch interface (the native
//! baseline). A benchmark: it prints figures and ratios, asserts nothing.
//!
//! ```text
//! scripts/services geolite2          # the GeoLite2 City file the `geo` table reads
//! cargo bench --bench chain
//! ```
//!
//! Events come from `weir gen`'s generator (Zipf users and pins, real public
//! IPs, 4% bots, no malformed records). For each batch size every step sees
//! the events the previous one kept, with the fields it set, exactly as in the
//! host. "wasm" times the three calls into the components (lowering, the
//! guest, lifting, epoch interruption on); "native" the three calls into the
//! natively compiled crates over the same columns; "host chain" is the whole
//! `Chain::run`, which also builds each step's batch and merges the fields.
//! Both sides look up in the host's own tables (`categories` and the MaxMind
//! DB `geo`), the native side through the SDK's native host functions.
//! "ratio" is wasm's best pass against native's; "paired" the median, over
//! six rounds in which the two sides take turns, of each round's ratio.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clap::Parser;
use weir::chain::Chain;
use weir::event::batch::Batch;
use weir::plugin::{Runtime, WitBatch};

const EVENTS: usize = 32_768;
/// Rounds of (wasm, native) timings; each round times five passes of each.
const PASSES: usize = 6;

#[derive(Parser)]
struct GenOnly {
    #[command(flatten)]
    args: weir::tools::gen::GenArgs,
}

/// The host's tables, which the native side's lookups read too.
static TABLES: OnceLock<weir::plugin::lookup::Lookups> = OnceLock::new();

fn native_lookup(table: &str, key: &str) -> Option<String> {
    let t = TABLES.get()?.get(table)?.table();
    let mut out = Vec::new();
    t.get_into(key, &mut out)
        .then(|| String::from_utf8_lossy(&out).into_owned())
}

fn native_lookup_many(table: &str, keys: &[u8], ends: &[u32]) -> (Vec<u8>, Vec<u32>, Vec<bool>) {
    let t = TABLES.get().and_then(|l| l.get(table)).map(|t| t.table());
    let (mut values, mut value_ends, mut found) = (Vec::new(), Vec::new(), Vec::new());
    let mut start = 0;
    for &end in ends {
        let key = std::str::from_utf8(&keys[start..end as usize]).unwrap_or_default();
        start = end as usize;
        found.push(t.as_ref().is_some_and(|t| t.get_into(key, &mut values)));
        value_ends.push(values.len() as u32);
    }
    (values, value_ends, found)
}

/// The example's `[lookup.geo] select`.
fn geo_select() -> std::collections::BTreeMap<String, String> {
    [
        ("country", "country.iso_code"),
        ("region", "subdivisions.0.names.en"),
        ("city", "city.names.en"),
        ("latitude", "location.latitude"),
        ("longitude", "location.longitude"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn geolite2() -> PathBuf {
    let out = Command::new(root().join("scripts/services"))
        .arg("geolite2")
        .output()
        .expect("scripts/services geolite2");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn build_plugins(dir: &Path) {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "plugin",
        ])
        .args([
            "-p",
            "engagement-filter",
            "-p",
            "geo-enricher",
            "-p",
            "category-enricher",
        ])
        .current_dir(root())
        .status()
        .expect("cargo");
    assert!(status.success(), "building the plugins failed");
    std::fs::create_dir_all(dir).unwrap();
    for p in ["engagement-filter", "geo-enricher", "category-enricher"] {
        let built = root().join(format!(
            "target/wasm32-wasip2/plugin/{}.wasm",
            p.replace('-', "_")
        ));
        std::fs::copy(built, dir.join(format!("{p}.wasm"))).unwrap();
    }
}

/// The columns of events `idx` of `payloads`, with per-event `fields`.
fn columns(payloads: &[String], idx: &[usize], fields: &[Vec<u8>]) -> WitBatch {
    let mut w = WitBatch {
        topic: "pin-engagement".into(),
        payloads: Vec::new(),
        payload_ends: Vec::new(),
        keys: Vec::new(),
        key_ends: Vec::new(),
        fields: Vec::new(),
        field_ends: Vec::new(),
        timestamps_ms: Vec::new(),
        partitions: Vec::new(),
        offsets: Vec::new(),
    };
    for &i in idx {
        w.payloads.extend_from_slice(payloads[i].as_bytes());
        w.payload_ends.push(w.payloads.len() as u32);
        w.key_ends.push(0);
        w.fields.extend_from_slice(&fields[i]);
        w.field_ends.push(w.fields.len() as u32);
        w.timestamps_ms.push(-1);
        w.partitions.push(0);
        w.offsets.push(i as i64);
    }
    w
}

fn view(w: &WitBatch) -> weir_sdk::Batch<'_> {
    weir_sdk::Batch {
        topic: &w.topic,
        payloads: &w.payloads,
        payload_ends: &w.payload_ends,
        keys: &w.keys,
        key_ends: &w.key_ends,
        fields: &w.fields,
        field_ends: &w.field_ends,
        timestamps_ms: &w.timestamps_ms,
        partitions: &w.partitions,
        offsets: &w.offsets,
    }
}

/// Each step's input batches for one batch size: the filter's, then the geo
/// enricher's (the kept events), then the category enricher's (with the geo
/// fields), computed once with the native crates.
fn inputs(payloads: &[String], size: usize) -> Vec<[WitBatch; 3]> {
    let mut out = Vec::new();
    let mut fields = vec![Vec::new(); payloads.len()];
    for chunk in (0..payloads.len()).collect::<Vec<_>>().chunks(size) {
        let first = columns(payloads, chunk, &fields);
        let (keep, _) = engagement_filter::weir_plugin::keep(&view(&first)).unwrap();
        let kept: Vec<usize> = chunk
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(i, _)| *i)
            .collect();
        let second = columns(payloads, &kept, &fields);
        let geo = geo_enricher::weir_plugin::enrich(&view(&second)).unwrap();
        let mut start = 0;
        for (&i, &end) in kept.iter().zip(&geo.field_ends) {
            fields[i] = geo.fields[start..end as usize].to_vec();
            start = end as usize;
        }
        let third = columns(payloads, &kept, &fields);
        out.push([first, second, third]);
    }
    out
}

fn main() -> anyhow::Result<()> {
    let mmdb = geolite2();
    let networks = weir::tools::gen::ipv4_networks(&mmdb)?;
    let args = GenOnly::parse_from([
        "gen",
        "--malformed",
        "0",
        "--non-object",
        "0",
        "--ill-typed",
        "0",
        "--oversized",
        "0",
    ])
    .args;
    let mut g = weir::tools::gen::Generator::new(&args, networks)?;
    let mut buf = String::new();
    let payloads: Vec<String> = (0..EVENTS)
        .map(|i| {
            g.next_event(1_764_000_000_000 + i as i64, &mut buf);
            buf.clone()
        })
        .collect();

    // The category table, as the host loads it from `pins`.
    let catalog: Vec<(String, String)> = (1..=args.pins)
        .map(|r| {
            (
                weir::tools::gen::pin_id(r).to_string(),
                weir::tools::gen::CATEGORIES[weir::tools::gen::pin_category(r)].to_string(),
            )
        })
        .collect();
    let rows: weir::plugin::lookup::Rows = catalog
        .iter()
        .map(|(k, v)| (k.clone().into_boxed_str(), Arc::<str>::from(v.as_str())))
        .collect();
    let mut lookups = weir::plugin::lookup::Lookups::new();
    lookups.insert(
        "categories".into(),
        Arc::new(weir::plugin::lookup::LookupTable::new("categories", rows)),
    );
    let geo = weir::plugin::mmdb::MmdbTable::open(&mmdb, &geo_select())?;
    lookups.insert(
        "geo".into(),
        Arc::new(weir::plugin::lookup::LookupTable::of(
            "geo",
            weir::plugin::lookup::Table::Mmdb(geo),
        )),
    );
    let _ = TABLES.set(lookups.clone());
    weir_sdk::__install_host(weir_sdk::HostFns {
        log: |_, _| {},
        lookup: native_lookup,
        lookup_many: native_lookup_many,
    });

    // Native: the plugin crates' own entry points.
    engagement_filter::weir_plugin::init(vec![("actions".into(), "click,save,closeup".into())])
        .map_err(anyhow::Error::msg)?;
    geo_enricher::weir_plugin::init(Vec::new()).map_err(anyhow::Error::msg)?;
    category_enricher::weir_plugin::init(Vec::new()).map_err(anyhow::Error::msg)?;

    // Wasm: the same crates as components, loaded as `weir run` loads them.
    let dir = std::env::temp_dir().join(format!("weir-bench-chain-{}", std::process::id()));
    let plugins = dir.join("plugins.d");
    build_plugins(&plugins);
    let toml = format!(
        r#"[lookup.categories]
csv = "unused.csv"
[lookup.geo]
mmdb = "{}"
[[pipeline]]
name = "bench"
topic = "t"
table = "t"
columns = {{ a = "a" }}
  [[pipeline.step]]
  plugin = "engagement-filter"
  config = {{ actions = "click,save,closeup" }}
  [[pipeline.step]]
  plugin = "geo-enricher"
  lookups = ["geo"]
  [[pipeline.step]]
  plugin = "category-enricher"
  lookups = ["categories"]
"#,
        mmdb.display()
    );
    let config = weir::config::Config::parse(&toml, &dir.join("weir.toml"))?;
    let runtime = Runtime::new(None)?;
    let specs = weir::chain::load_steps(&runtime, &config, &config.pipelines[0].steps, &lookups)?;
    let mut instances = specs
        .iter()
        .map(|s| s.plugin.instantiate(s.limits, &s.config, &s.grants))
        .collect::<Result<Vec<_>, _>>()?;

    println!("the Pinterest chain over {EVENTS} generated events, per event in (ns):");
    println!(
        "{:>6} {:>10} {:>10} {:>7} {:>7} {:>12} {:>14}",
        "batch", "wasm", "native", "ratio", "paired", "host chain", "wasm events/s"
    );
    let mut steps = String::new();
    for size in [64usize, 256, 1024] {
        let batches = inputs(&payloads, size);
        let time = |f: &mut dyn FnMut()| {
            f();
            let mut best = Duration::MAX;
            for _ in 0..5 {
                let t = Instant::now();
                f();
                best = best.min(t.elapsed());
            }
            best.as_nanos() as f64 / EVENTS as f64
        };
        // The two sides take turns, pass for pass, so that both see the same
        // moments of this shared machine; each keeps its best pass.
        let (mut wasm, mut native) = (f64::MAX, f64::MAX);
        let mut paired = Vec::new();
        for _ in 0..PASSES {
            let w = time(&mut || {
                for [a, b, c] in &batches {
                    let (i0, rest) = instances.split_at_mut(1);
                    let (i1, i2) = rest.split_at_mut(1);
                    i0[0].keep(a).unwrap().unwrap();
                    i1[0].enrich(b).unwrap().unwrap();
                    i2[0].enrich(c).unwrap().unwrap();
                }
            });
            let n = time(&mut || {
                for [a, b, c] in &batches {
                    std::hint::black_box(engagement_filter::weir_plugin::keep(&view(a)).unwrap());
                    std::hint::black_box(geo_enricher::weir_plugin::enrich(&view(b)).unwrap());
                    std::hint::black_box(category_enricher::weir_plugin::enrich(&view(c)).unwrap());
                }
            });
            (wasm, native) = (wasm.min(w), native.min(n));
            paired.push(w / n);
        }
        // The ratio within each round, whose two sides ran moments apart: the
        // median of these is steadier than best against best when the
        // machine's speed drifts between rounds.
        paired.sort_by(f64::total_cmp);
        let median = (paired[(PASSES - 1) / 2] + paired[PASSES / 2]) / 2.0;
        let mut chain = Chain::new(&specs)?;
        let host_batches: Vec<Batch> = payloads
            .chunks(size)
            .enumerate()
            .map(|(n, chunk)| {
                let mut b = Batch::default();
                for (i, p) in chunk.iter().enumerate() {
                    b.push(
                        (n * size + i) as i64,
                        -1,
                        None,
                        p.as_bytes(),
                        1 << 20,
                        1 << 20,
                    );
                }
                b
            })
            .collect();
        let host = time(&mut || {
            for b in &host_batches {
                std::hint::black_box(chain.run("t", b, &vec![false; b.len()]).unwrap());
            }
        });
        println!(
            "{size:>6} {wasm:>10.0} {native:>10.0} {:>6.2}x {median:>6.2}x {host:>12.0} {:>14.0}",
            wasm / native,
            1e9 / wasm
        );
        if size == 256 {
            let mut per_step = Vec::new();
            for step in 0..3 {
                let w = time(&mut || {
                    for b in &batches {
                        if step == 0 {
                            instances[0].keep(&b[0]).unwrap().unwrap();
                        } else {
                            instances[step].enrich(&b[step]).unwrap().unwrap();
                        }
                    }
                });
                let n = time(&mut || {
                    for b in &batches {
                        match step {
                            0 => drop(std::hint::black_box(engagement_filter::weir_plugin::keep(
                                &view(&b[0]),
                            ))),
                            1 => drop(std::hint::black_box(geo_enricher::weir_plugin::enrich(
                                &view(&b[1]),
                            ))),
                            _ => drop(std::hint::black_box(
                                category_enricher::weir_plugin::enrich(&view(&b[2])),
                            )),
                        }
                    }
                });
                per_step.push(format!("{w:.0}/{n:.0}"));
            }
            steps = per_step.join(", ");
        }
    }
    println!("per step at batch 256, wasm/native ns per chain input event (filter, geo, category): {steps}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
