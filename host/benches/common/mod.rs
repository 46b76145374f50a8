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
