//! Config errors, as a user sees them: `weir run -c FILE` on each
//! `tests/config/*.toml` exits with status 2 before connecting to anything, and
//! prints exactly the text in the `.err` file beside it.
//!
//! Regenerate the expected texts: `WEIR_BLESS=1 cargo test --test e2e config -- --include-ignored`.

use std::process::Command;

use crate::support::{repo_root, weir_bin};

#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn config_errors_match_golden_files() {
    let root = repo_root();
    let bless = std::env::var_os("WEIR_BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(root.join("tests/config"))
        .expect("tests/config")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 8, "golden cases missing");
    let mut failures = Vec::new();
    for case in cases {
        let relative = case.strip_prefix(&root).expect("under the root");
        let out = Command::new(weir_bin())
            .current_dir(&root)
            .args(["run", "-c"])
            .arg(relative)
            .env_remove("WEIR_SINGLESTORE_URL")
            .env_remove("WEIR_KAFKA_BROKERS")
            .output()
            .expect("weir run");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let golden = case.with_extension("err");
        if bless {
            std::fs::write(&golden, &stderr).expect("writing golden file");
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if out.status.code() != Some(2) || stderr != expected {
            failures.push(format!(
                "{}: exit {:?}\n--- expected ({})\n{expected}--- got\n{stderr}",
                relative.display(),
                out.status.code(),
                golden.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
