//! Secured connections, against the local services' SASL listener and TLS
//! (`scripts/services`: SASL_PLAINTEXT on 127.0.0.1:9094 with PLAIN and
//! SCRAM-SHA-256 for weir/weir-secret; MariaDB with a local CA and the user
//! weir_tls, which may only connect over TLS). Secrets come from files.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// This scenario's config, its Kafka reached over SASL with `mechanism`, its
/// database as weir_tls over TLS, the password and URL read from files.
fn secured(s: &Scenario, mechanism: &str) -> std::path::PathBuf {
    let ca = services(&["tls"]).trim().to_owned();
    std::fs::write(s.dir.join("kafka-password"), "weir-secret\n").expect("secret");
    std::fs::write(
        s.dir.join("db-url"),
        format!("mysql://weir_tls:weir@127.0.0.1:3306/{}\n", s.database),
    )
    .expect("secret");
    let text = std::fs::read_to_string(&s.config).expect("config");
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("brokers = ") {
            out.push_str("brokers = \"127.0.0.1:9094\"\n");
        } else if line.starts_with("url = ") {
            out.push_str("url_file = \"db-url\"\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    let kafka_end = out.find("\n[singlestore]").expect("a [singlestore] table");
    out.insert_str(
        kafka_end,
        &format!(
            "\n\n[kafka.sasl]\nmechanism = \"{mechanism}\"\nusername = \"weir\"\npassword_file = \"kafka-password\"\n"
        ),
    );
    out.push_str(&format!("\n[singlestore.tls]\nca = \"{ca}\"\n"));
    let path = s.dir.join(format!("secured-{mechanism}.toml"));
    std::fs::write(&path, out).expect("write");
    path
}

fn run_secured(name: &str, mechanism: &str) {
    let s = Scenario::new(name, Settings::default());
    let config = secured(&s, mechanism);
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(
        !text.contains("weir-secret"),
        "no secret in the file:\n{text}"
    );
    let weir = s.start_with(&config, "run");
    let produced = s.gen(5_000, 0, &[]).produced;
    s.wait_accounted(produced, Duration::from_secs(120));
    assert!(weir.stop(Duration::from_secs(30)).success());
    s.assert_exactly_once(produced);
    let log = std::fs::read_to_string(s.dir.join("weir-run.log")).expect("log");
    assert!(
        !log.contains("weir-secret"),
        "the password never reaches the log"
    );
    // The database really was reached over TLS: the same user without it is refused.
    let plain = s.dir.join("plain.toml");
    let without_tls = text.replace(
        "url_file = \"db-url\"",
        &format!(
            "url = \"mysql://weir_tls:weir@127.0.0.1:3306/{}\"",
            s.database
        ),
    );
    std::fs::write(
        &plain,
        without_tls
            .split("\n[singlestore.tls]")
            .next()
            .expect("text"),
    )
    .expect("write");
    let out = Command::new(weir_bin())
        .args(["check", "-c"])
        .arg(&plain)
        .output()
        .expect("weir check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "weir_tls without TLS must be refused"
    );
    assert!(
        stderr.contains("Access denied for user 'weir_tls'"),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn sasl_scram_and_tls_database() {
    let _serial = serial();
    run_secured("sec_scram", "SCRAM-SHA-256");
}

#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn sasl_plain_and_tls_database() {
    let _serial = serial();
    run_secured("sec_plain", "PLAIN");
}

#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn a_password_in_the_file_is_refused() {
    let _serial = serial();
    let dir = std::env::temp_dir().join(format!("weir-sec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("weir.toml");
    std::fs::write(
        &config,
        "[kafka.sasl]\nmechanism = \"PLAIN\"\nusername = \"weir\"\npassword = \"weir-secret\"\n\n\
         [[pipeline]]\nname = \"p\"\ntopic = \"t\"\ntable = \"t\"\ncolumns = { a = \"a\" }\n",
    )
    .expect("write");
    let out = Command::new(weir_bin())
        .args(["check", "-c"])
        .arg(&config)
        .output()
        .expect("weir check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`kafka.sasl.password`: unknown field `password`"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
