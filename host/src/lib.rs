//! Weir streams events from Apache Kafka through sandboxed WebAssembly steps
//! into SingleStore tables, exactly once.
//!
//! The folders, lowest layer first; a module uses only those above it in
//! this list (a test in this file checks it):
//! - [`ops`]: metrics, health and `weir top`; every layer reports to it;
//! - [`config`]: `weir.toml`, read strictly, and the typed difference of two;
//! - [`store`]: the database Weir keeps its state in: connections, SQL text,
//!   the offsets table;
//! - [`event`]: a partition's batch of records and the decoding of payloads;
//! - [`plugin`]: the WebAssembly runtime, its sandbox and the host's lookups;
//! - [`chain`]: a pipeline's steps run over a batch, faults contained;
//! - [`source`]: a consumer group per pipeline, batches per partition, claims;
//! - [`sink`]: rows, dead letters and the partition's offset in one
//!   transaction; it hears batches from the source and tells it of commits;
//! - [`archive`]: the other sink: every event in exactly one file in object
//!   storage, under date partitions, positions in per-partition logs there;
//! - [`pipeline`]: running pipelines, and the supervisor that swaps their
//!   parts while events flow (the control plane: nothing below imports it);
//! - [`tools`]: the event generator, plugin scaffolding, offline runs, replay.
//!
//! The command line (`src/main.rs` and `src/cli/`) parses arguments and calls
//! into these; it holds no logic of its own.

pub mod archive;
pub mod chain;
pub mod config;
pub mod event;
pub mod ops;
pub mod pipeline;
pub mod plugin;
pub mod sink;
pub mod source;
pub mod store;
pub mod tools;

#[cfg(test)]
mod layers {
    //! The import direction of the folders, checked on the source text.

    use std::path::Path;

    /// Each folder's layer; a module may import only folders of a lower one.
    /// `chain` and `source` share a layer: neither may use the other.
    const LAYERS: &[(&str, u8)] = &[
        ("ops", 0),
        ("config", 1),
        ("store", 2),
        ("event", 3),
        ("plugin", 4),
        ("chain", 5),
        ("source", 5),
        ("sink", 6),
        ("archive", 7),
        ("pipeline", 8),
        ("tools", 9),
    ];

    fn layer(folder: &str) -> Option<u8> {
        LAYERS.iter().find(|(f, _)| *f == folder).map(|&(_, l)| l)
    }

    /// `crate::NAME` paths in `text`, before its `#[cfg(test)]` modules
    /// (tests may reach further, e.g. to generate their input).
    fn imports(text: &str) -> Vec<String> {
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        code.match_indices("crate::")
            .map(|(i, m)| {
                code[i + m.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect()
    }

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn folders_import_only_lower_layers() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut wrong = Vec::new();
        let mut checked = 0;
        for file in &files {
            let rel = file.strip_prefix(&src).unwrap();
            let folder = rel.iter().next().unwrap().to_str().unwrap();
            let Some(own) = layer(folder) else {
                continue;
            };
            checked += 1;
            for used in imports(&std::fs::read_to_string(file).unwrap()) {
                match layer(&used) {
                    Some(l) if used != folder && l >= own => {
                        wrong.push(format!("{} uses crate::{used}", rel.display()))
                    }
                    None => {
                        wrong.push(format!("{} uses crate::{used}, in no layer", rel.display()))
                    }
                    _ => {}
                }
            }
        }
        assert!(
            checked > 20,
            "only {checked} files found under {}",
            src.display()
        );
        assert!(
            wrong.is_empty(),
            "imports against the layers:\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn every_folder_has_a_layer() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            if path.is_dir() && name != "cli" {
                assert!(
                    layer(name).is_some(),
                    "src/{name}/ is in no layer of LAYERS"
                );
            }
        }
    }
}
