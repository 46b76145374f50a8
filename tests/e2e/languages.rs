//! Plugins in Python and JavaScript on the same contract as the Rust ones:
//! each example plugin against its expected output, both in a chain with the
//! Rust plugins through Kafka and the database with every event accounted for,
//! a Python exception and a JavaScript throw as dead letters with the
//! language's own message and line, and `weir plugin new --lang` scaffolds that
//! build, pass their own tests and run as generated.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// `weir test` with `config` over `input`: (kept lines, dead-letter lines).
fn weir_test(config: &Path, input: &Path, dir: &Path) -> (Vec<String>, Vec<String>) {
    let dead = dir.join("dead-letters.jsonl");
    let out = Command::new(weir_bin())
        .args(["test", "-c"])
        .arg(config)
        .arg("--input")
        .arg(input)
        .arg("--dead-letters")
        .arg(&dead)
        .output()
        .expect("weir test");
    assert!(
        out.status.success(),
        "weir test -c {}:\n{}",
        config.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let dead = std::fs::read_to_string(&dead)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    (kept, dead)
}

/// A temporary folder of the test's own, with `plugins.d/` holding `wasm`.
fn workspace(name: &str, wasm: &[PathBuf]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-lang-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let plugins = dir.join("plugins.d");
    std::fs::create_dir_all(&plugins).expect("plugins.d");
    for w in wasm {
        std::fs::copy(w, plugins.join(w.file_name().unwrap())).expect("copy plugin");
    }
    dir
}

/// Each example's `weir.toml` (one step over the example events) gives its
/// `expected.jsonl`: kept events with their fields, then dead letters.
/// `WEIR_BLESS=1 cargo test --test e2e examples_in_python_and_js -- --include-ignored`
/// rewrites the files from the current output.
#[test]
#[ignore = "needs the Python and JavaScript toolchains: run scripts/test"]
fn examples_in_python_and_js_give_their_expected_output() {
    let root = repo_root();
    let built = polyglot_plugins();
    for name in ["python-device-enricher", "js-sample-filter"] {
        let example = root.join("plugins").join(name);
        let dir = workspace(name, &[built.join(format!("{name}.wasm"))]);
        let config = dir.join("weir.toml");
        let text =
            std::fs::read_to_string(example.join("weir.toml")).expect("the example's weir.toml");
        std::fs::write(
            &config,
            text.replace("../../examples/plugins.d", "plugins.d"),
        )
        .expect("weir.toml");
        let mut cmd = Command::new(weir_bin());
        cmd.args(["test", "-c"])
            .arg(&config)
            .arg("--input")
            .arg(root.join("examples/events.jsonl"));
        let expected = example.join("expected.jsonl");
        if std::env::var_os("WEIR_BLESS").is_some() {
            let dead = dir.join("dead.jsonl");
            let out = cmd
                .arg("--dead-letters")
                .arg(&dead)
                .output()
                .expect("weir test");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&std::fs::read_to_string(&dead).unwrap_or_default());
            std::fs::write(&expected, text).expect("bless");
        }
        let out = cmd
            .arg("--expect")
            .arg(&expected)
            .output()
            .expect("weir test");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// FNV-1a (32-bit) of `text`: the sample filter's hash, computed here on its own.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The Rust filter, the JavaScript sample filter, the Python device enricher
/// and the Rust geo and category enrichers in one chain, through Kafka into
/// the database: every event a row, a counted drop or a dead letter; the
/// sample is exactly the users the hash picks; devices are what their user
/// agents say.
#[test]
#[ignore = "needs Kafka, MariaDB and the Python and JavaScript toolchains: run scripts/test"]
fn python_and_js_steps_run_in_a_chain_with_the_rust_ones() {
    let _serial = serial();
    let s = Scenario::new(
        "polyglot",
        Settings {
            steps: r#"
  [[pipeline.step]]
  plugin = "engagement-filter"
  [[pipeline.step]]
  plugin = "js-sample-filter"
  config = { percent = "50", salt = "e2e" }
  [[pipeline.step]]
  plugin = "python-device-enricher"
  [[pipeline.step]]
  plugin = "geo-enricher"
  lookups = ["geo"]
"#,
            columns: r#"  device_class = "device_class"
  os_family = "os_family"
  browser_family = "browser_family"
  country = "country"
"#,
            ..Settings::default()
        },
    );
    s.exec(
        "ALTER TABLE engagement ADD COLUMN device_class VARCHAR(16) NULL, \
         ADD COLUMN os_family VARCHAR(32) NULL, ADD COLUMN browser_family VARCHAR(32) NULL",
    );
    let plugins = s.dir.join("plugins");
    for name in ["engagement-filter", "geo-enricher"] {
        let built = first_party_plugins().join(format!("{}.wasm", name.replace('-', "_")));
        std::fs::copy(built, plugins.join(format!("{name}.wasm"))).expect("copy plugin");
    }
    for name in ["js-sample-filter", "python-device-enricher"] {
        std::fs::copy(
            polyglot_plugins().join(format!("{name}.wasm")),
            plugins.join(format!("{name}.wasm")),
        )
        .expect("copy plugin");
    }
    let mut config = std::fs::read_to_string(&s.config).expect("weir.toml");
    config.push_str(&format!(
        "\n[lookup.geo]\nmmdb = \"{}\"\nselect = {{ country = \"country.iso_code\" }}\n",
        geolite2().display()
    ));
    std::fs::write(&s.config, config).expect("weir.toml");

    let weir = s.start("run");
    let produced = s.gen(6_000, 0, &[]);
    s.wait_accounted(produced.produced, Duration::from_secs(240));
    assert!(weir.stop(Duration::from_secs(30)).success());
    let acc = s.assert_exactly_once(produced.produced);
    assert!(acc.rows > 300 && acc.filtered > 300, "{acc:?}");

    // The sample is exactly the users whose hash falls below 50%.
    let users: Vec<(i64, i64)> =
        s.query("SELECT user_id, COUNT(*) FROM engagement GROUP BY user_id");
    assert!(users.len() > 10, "{} users", users.len());
    for (user, _) in &users {
        assert!(
            fnv1a(&format!("e2e:{user}")) % 10_000 < 5_000,
            "user {user} is not in the sample"
        );
    }
    // Every row has a device class; the user agent decides it.
    assert_eq!(
        s.count("SELECT COUNT(*) FROM engagement WHERE device_class IS NULL"),
        0
    );
    for (agent, class, os) in [
        ("%iPad%", "tablet", "iOS"),
        ("%iPhone%", "mobile", "iOS"),
        ("%Windows NT%", "desktop", "Windows"),
    ] {
        let all = s.count(&format!(
            "SELECT COUNT(*) FROM engagement WHERE user_agent LIKE '{agent}'"
        ));
        let right = s.count(&format!(
            "SELECT COUNT(*) FROM engagement WHERE user_agent LIKE '{agent}' \
             AND device_class = '{class}' AND os_family = '{os}'"
        ));
        assert!(all > 0, "no {agent} rows");
        assert_eq!(right, all, "{agent}");
    }
    // The Rust step after the Python one still did its work.
    assert!(s.count("SELECT COUNT(*) FROM engagement WHERE country IS NOT NULL") > 0);
}

/// A Python exception and a JavaScript throw cost only their events: each is
/// a dead letter carrying the language's message and the line that raised.
#[test]
#[ignore = "needs the Python and JavaScript toolchains: run scripts/test"]
fn an_exception_or_a_throw_is_a_dead_letter_with_its_message_and_line() {
    let root = repo_root();
    let dir = workspace("raise", &[]);
    for (lang, name) in [("python", "python-raiser"), ("js", "js-thrower")] {
        build_with_sdk(
            lang,
            &root.join("tests/guests").join(lang).join(name),
            &dir.join("plugins.d").join(format!("{name}.wasm")),
        );
    }
    let events = dir.join("events.jsonl");
    let lines: String = (1..=70).map(|u| format!("{{\"user_id\":{u}}}\n")).collect();
    std::fs::write(&events, lines).expect("events");
    for (name, kind, words, file) in [
        (
            "python-raiser",
            "enricher",
            "ZeroDivisionError: division by zero",
            "app.py:",
        ),
        ("js-thrower", "filter", "TypeError", "app.js:"),
    ] {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[plugins]\ndir = \"plugins.d\"\n\n[[pipeline]]\nname = \"{kind}\"\ntopic = \"t\"\n\
                 table = \"t\"\ncolumns = {{ user_id = \"user_id\" }}\n\n  [[pipeline.step]]\n  plugin = \"{name}\"\n"
            ),
        )
        .expect("config");
        let (kept, dead) = weir_test(&config, &events, &dir);
        assert_eq!(kept.len(), 60, "{name}: the other events flow on");
        assert_eq!(dead.len(), 10, "{name}: one user in seven");
        for line in &dead {
            let d: HashMap<String, serde_json::Value> = serde_json::from_str(line).expect("json");
            let reason = d["reason"].as_str().unwrap_or_default();
            assert!(
                reason.contains(words) && reason.contains(file),
                "{name}: {reason}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `weir plugin new --lang python|js` for both kinds: each builds with its
/// SDK, passes its own tests as generated and runs in `weir test`.
#[test]
#[ignore = "needs the Python and JavaScript toolchains: run scripts/test"]
fn new_python_and_js_plugins_build_test_and_run_as_generated() {
    let dir = workspace("new", &[]);
    for (lang, kind) in [
        ("python", "enricher"),
        ("python", "filter"),
        ("js", "enricher"),
        ("js", "filter"),
    ] {
        let name = format!("new-{lang}-{kind}");
        let project = dir.join(&name);
        let out = Command::new(weir_bin())
            .args([
                "plugin", "new", &name, "--kind", kind, "--lang", lang, "--dir",
            ])
            .arg(&project)
            .output()
            .expect("weir plugin new");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Its own tests, as the scaffold says to run them.
        let tested = match lang {
            "python" => Command::new("python3")
                .args(["-m", "pytest", "-q"])
                .env("PYTHONPATH", repo_root().join("sdk/python"))
                .current_dir(&project)
                .output(),
            _ => Command::new("node")
                .arg("--test")
                .current_dir(&project)
                .output(),
        }
        .expect("the plugin's tests");
        assert!(
            tested.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&tested.stdout),
            String::from_utf8_lossy(&tested.stderr)
        );
        build_with_sdk(
            lang,
            &project,
            &dir.join("plugins.d").join(format!("{name}.wasm")),
        );
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[plugins]\ndir = \"plugins.d\"\n\n[[pipeline]]\nname = \"p\"\ntopic = \"t\"\n\
                 table = \"t\"\ncolumns = {{ a = \"action\" }}\n\n  [[pipeline.step]]\n  plugin = \"{name}\"\n"
            ),
        )
        .expect("config");
        let (kept, dead) = weir_test(&config, &repo_root().join("examples/events.jsonl"), &dir);
        // The example events hold malformed records, refused before any step.
        let by_plugin: Vec<&String> = dead
            .iter()
            .filter(|d| !d.contains(r#""stage":"decode""#))
            .collect();
        assert!(by_plugin.is_empty(), "{name}: {by_plugin:?}");
        assert!(!kept.is_empty(), "{name} kept nothing");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A component importing what the sandbox does not grant is refused at load,
/// with the names of those imports, before anything runs.
#[test]
#[ignore = "needs the Python and JavaScript toolchains: run scripts/test"]
fn a_plugin_importing_what_the_sandbox_does_not_grant_is_refused_naming_it() {
    let dir = workspace("imports", &[]);
    let wasm = dir.join("plugins.d/js-fetcher.wasm");
    let source = dir.join("js-fetcher");
    std::fs::create_dir_all(&source).expect("source");
    std::fs::write(
        source.join("app.js"),
        "import { filter } from \"weir\";\n\
         export default filter({ name: \"js-fetcher\", version: \"0.1.0\", reads: {} }, () => true);\n",
    )
    .expect("app.js");
    // The SDK's build disables HTTP; a build that keeps it imports wasi:http.
    let out = Command::new(repo_root().join("sdk/js/build"))
        .arg(&source)
        .arg(&wasm)
        .env("WEIR_JS_ENABLE", "http")
        .output()
        .expect("build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.join("weir.toml");
    std::fs::write(
        &config,
        "[plugins]\ndir = \"plugins.d\"\n\n[[pipeline]]\nname = \"p\"\ntopic = \"t\"\ntable = \"t\"\n\
         columns = { a = \"a\" }\n\n  [[pipeline.step]]\n  plugin = \"js-fetcher\"\n",
    )
    .expect("config");
    let events = dir.join("events.jsonl");
    std::fs::write(&events, "{\"a\":1}\n").expect("events");
    let out = Command::new(weir_bin())
        .args(["test", "-c"])
        .arg(&config)
        .arg("--input")
        .arg(&events)
        .output()
        .expect("weir test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("imports what the sandbox does not grant: wasi:http/"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
