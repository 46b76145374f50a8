//! What the end-to-end benchmarks share: the repository, the services and the generator.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

/// CPU time used so far, in clock ticks: the whole machine (busy and all),
/// the database server, the broker and optionally one more process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub busy: u64,
    pub total: u64,
    pub database: u64,
    pub broker: u64,
    pub process: u64,
}

/// utime + stime of `pid`, in ticks.
fn process_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may hold spaces: state is field 3,
    // utime and stime fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum()
}

/// With `--database-core`: the database server on CPU 0 alone, the broker and
/// this process (with every process it starts) on the others, as when the
/// database runs on hosts of its own. Undone when dropped.
pub struct DatabaseCore(Option<usize>);

impl DatabaseCore {
    pub fn from_args() -> DatabaseCore {
        let on = std::env::args().any(|a| a == "--database-core");
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if !on || cpus < 2 {
            return DatabaseCore(None);
        }
        let rest = format!("1-{}", cpus - 1);
        pin(&["-x", "mariadbd"], "0");
        pin(&["-f", "kafka.Kafka"], &rest);
        taskset(std::process::id(), &rest);
        println!("database on CPU 0 alone; broker, weir and this bench on CPUs {rest}");
        DatabaseCore(Some(cpus))
    }
}

impl Drop for DatabaseCore {
    fn drop(&mut self) {
        if let Some(cpus) = self.0 {
            let all = format!("0-{}", cpus - 1);
            pin(&["-x", "mariadbd"], &all);
            pin(&["-f", "kafka.Kafka"], &all);
        }
    }
}

fn pin(pattern: &[&str], cpus: &str) {
    if let Some(pid) = pid_of(pattern) {
        taskset(pid, cpus);
    }
}

/// Every thread of `pid` onto `cpus` (threads started later inherit it).
fn taskset(pid: u32, cpus: &str) {
    let _ = Command::new("taskset")
        .args(["-a", "-cp", cpus, &pid.to_string()])
        .stdout(Stdio::null())
        .status();
}

fn pid_of(pattern: &[&str]) -> Option<u32> {
    let out = Command::new("pgrep").args(pattern).output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Cpu {
    /// A snapshot now; `process` is read from `pid` when given.
    pub fn now(pid: Option<u32>) -> Cpu {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let line: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        let total: u64 = line.iter().take(8).sum();
        let idle = line.get(3).copied().unwrap_or(0) + line.get(4).copied().unwrap_or(0);
        Cpu {
            busy: total - idle,
            total,
            database: pid_of(&["-x", "mariadbd"]).map_or(0, process_ticks),
            broker: pid_of(&["-f", "kafka.Kafka"]).map_or(0, process_ticks),
            process: pid.map_or(0, process_ticks),
        }
    }

    /// Waits until the database server has gone quiet (under a tenth of a core
    /// over half a second, for at most 60 s), so that a timed phase does not
    /// pay for the flushing and purging the phase before it left behind.
    /// Returns how long it waited.
    pub fn settle() -> Duration {
        let start = std::time::Instant::now();
        let mut before = Cpu::now(None).database;
        while start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(500));
            let now = Cpu::now(None).database;
            if now - before < 5 {
                break;
            }
            before = now;
        }
        start.elapsed()
    }

    /// What was used between `self` and `later`, per item of `items`:
    /// "machine busy N%, database X µs, broker Y µs[, weir Z µs] CPU per row".
    pub fn report(&self, later: &Cpu, items: u64, process: Option<&str>) -> String {
        let ticks = 1e6 / 100.0 / items.max(1) as f64; // µs per tick per item (USER_HZ = 100)
        let mut s = format!(
            "machine busy {:.0}%; CPU per row: database {:.2} µs, broker {:.2} µs",
            100.0 * (later.busy - self.busy) as f64 / (later.total - self.total).max(1) as f64,
            (later.database - self.database) as f64 * ticks,
            (later.broker - self.broker) as f64 * ticks,
        );
        if let Some(name) = process {
            s += &format!(
                ", {name} {:.2} µs",
                (later.process - self.process) as f64 * ticks
            );
        }
        s
    }
}
