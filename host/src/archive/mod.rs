//! The archive sink: every event of a topic in exactly one file in object
//! storage (S3 or a local folder), under date partitions, as Parquet or
//! gzip'd JSON lines; the role Secor plays beside the SQL half.
//!
//! Exactly once without a database transaction:
//! - a file's name is fixed by topic, Kafka partition, date partition and
//!   the first offset of its generation, so writing it again replaces it;
//! - each Kafka partition keeps its position in its own log of create-only
//!   records ([`log`]): an intent naming a generation's files before they
//!   are uploaded, a commit after; a stale owner finds its next record
//!   number taken and is fenced;
//! - a log that ends with an intent is finished by the next owner, cutting
//!   at the intent's last offset, so the files it named are made again.
//!
//! The files: [`bucket`] (S3 and the filesystem), [`log`], [`files`] (the
//! columns and the two encodings), [`writer`]. Uses `sink` (dead letters,
//! the writer's links), `chain`, `source`, `event`, `store`, `config` and
//! `ops`; never `pipeline`.

pub mod bucket;
pub mod files;
pub mod log;
pub mod writer;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;

pub use bucket::{Bucket, BucketError};
pub use log::{Counts, Head, LogError, PartitionLog};
pub use writer::{ArchiveSettings, ArchiveWriter, DeadLetterTable};

/// What the source read of each partition's log when it claimed it, shared
/// with the writers, which start their generations from it.
#[derive(Debug, Clone, Default)]
pub struct Heads(Arc<Mutex<HashMap<i32, Head>>>);

impl Heads {
    pub fn get(&self, partition: i32) -> Option<Head> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&partition)
            .cloned()
    }

    pub fn set(&self, partition: i32, head: Head) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(partition, head);
    }
}

/// An archive's positions for the source: each partition's log head.
pub struct ArchivePositions {
    pub bucket: Bucket,
    pub group: String,
    pub topic: String,
    pub heads: Heads,
}

impl crate::source::PositionStore for ArchivePositions {
    fn read(&self, partition: i32) -> BoxFuture<'_, anyhow::Result<Option<i64>>> {
        Box::pin(async move {
            let log = PartitionLog::new(&self.group, &self.topic, partition);
            let head = log.head(&self.bucket).await?;
            Ok(head.map(|h| {
                let position = h.position;
                self.heads.set(partition, h);
                position
            }))
        })
    }

    fn create(&self, partition: i32, start: i64) -> BoxFuture<'_, anyhow::Result<i64>> {
        // Nothing is written until a generation is: the first intent is
        // record 1, create-only like every other.
        self.heads.set(partition, Head::empty(start));
        Box::pin(async move { Ok(start) })
    }
}

/// What `weir archive ls` shows of one date partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// Every committed file of an archive's partitions, from their logs: totals
/// per date partition (the file's folder under the topic), and the files in
/// storage that no commit names (left by a try that never committed, or
/// hand-made).
#[derive(Debug, Default)]
pub struct Inventory {
    pub by_folder: BTreeMap<String, Listed>,
    pub dead_letters: Listed,
    /// Per Kafka partition: position and totals from its log's head.
    pub heads: BTreeMap<i32, Head>,
    pub unlisted: Vec<String>,
    pub missing: Vec<String>,
}

/// Reads the logs of `partitions` and lists the bucket under the topic.
pub async fn inventory(
    bucket: &Bucket,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<Inventory, LogError> {
    let mut inv = Inventory::default();
    let mut committed = std::collections::HashSet::new();
    for &p in partitions {
        let log = PartitionLog::new(group, topic, p);
        let seqs = log.seqs(bucket).await?;
        for &seq in &seqs {
            let Some(r) = log.read(bucket, seq).await? else {
                continue;
            };
            if r.kind != log::Kind::Commit {
                continue;
            }
            for f in &r.files {
                committed.insert(f.key.clone());
                let entry = if f.key.starts_with("_dead_letters/") {
                    &mut inv.dead_letters
                } else {
                    let folder = f
                        .key
                        .strip_prefix(&format!("{topic}/"))
                        .and_then(|k| k.rsplit_once('/'))
                        .map_or("", |(folder, _)| folder);
                    inv.by_folder.entry(folder.to_owned()).or_default()
                };
                entry.files += 1;
                entry.rows += f.rows;
                entry.bytes += f.bytes;
            }
        }
        if let Some(&last) = seqs.last() {
            if let Some(r) = log.read(bucket, last).await? {
                inv.heads.insert(p, log::Head::from(r));
            }
        }
    }
    let mut present = std::collections::HashSet::new();
    for (key, _) in bucket.list(&bucket.key([topic])).await? {
        let k = bucket.relative(&key);
        if !committed.contains(&k) {
            inv.unlisted.push(k.clone());
        }
        present.insert(k);
    }
    for (key, _) in bucket.list(&bucket.key(["_dead_letters", topic])).await? {
        let k = bucket.relative(&key);
        if !committed.contains(&k) {
            inv.unlisted.push(k.clone());
        }
        present.insert(k);
    }
    inv.missing = committed
        .into_iter()
        .filter(|k| !present.contains(k))
        .collect();
    inv.missing.sort();
    inv.unlisted.sort();
    Ok(inv)
}
