//! What the end-to-end benchmarks share: the repository, the services and the generator.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const BROKERS: &str = "127.0.0.1:9092";
pub const SERVER: &str = "mysql://weir:weir@127.0.0.1:3306";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The number after `name` on the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn services(args: &[&str]) -> String {
    let out = Command::new(root().join("scripts/services"))
        .args(args)
        .output()
        .expect("scripts/services");
    assert!(out.status.success(), "scripts/services {args:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn gen(topic: &str, count: u64, rate: u64, geolite: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["gen", "--json", "--brokers", BROKERS, "--topic", topic])
        .args(["--count", &count.to_string(), "--rate", &rate.to_string()])
        .args(["--geolite2", geolite])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("weir gen")
}

/// Creates database `db` afresh with the example's engagement table, plus one
/// copy of it per name in `copies`, then runs `extra` statements there.
pub async fn fresh_database(db: &str, copies: &[&str], extra: &[String]) -> anyhow::Result<()> {
    use mysql_async::prelude::Queryable as _;
    let ddl = std::fs::read_to_string(root().join("examples/sql/mariadb/engagement.sql"))?;
    let mut c = mysql_async::Conn::from_url(format!("{SERVER}/mysql")).await?;
    c.query_drop(format!("DROP DATABASE IF EXISTS {db}"))
        .await?;
    c.query_drop(format!(
        "CREATE DATABASE {db} DEFAULT CHARACTER SET utf8mb4"
    ))
    .await?;
    c.query_drop(format!("USE {db}")).await?;
    c.query_drop(&ddl).await?;
    for copy in copies {
        c.query_drop(ddl.replace("EXISTS engagement", &format!("EXISTS {copy}")))
            .await?;
    }
    for statement in extra {
        c.query_drop(statement).await?;
    }
    c.disconnect().await?;
    Ok(())
}
