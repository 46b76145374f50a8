//! A partition's archive log: where its position is kept, without a database.
//!
//! Each Kafka partition of an archive has a log of small JSON records under
//! `_weir/log/GROUP/TOPIC/PARTITION/SEQ.json`, written create-only (S3's
//! `If-None-Match: *`), so record `SEQ` can be written once by one owner.
//! A writer that knows the log up to `seq` appends `seq + 1`; finding it taken
//! means another owner moved on, and the writer is fenced.
//!
//! Two kinds of record, every one carrying the partition's whole state:
//! - an **intent** names a generation (offsets `start..=end`) and the files it
//!   will upload, before any is uploaded;
//! - a **commit** says those files are complete; `position` moves to `end + 1`.
//!
//! A log whose last record is an intent was left mid-generation: the next
//! owner rebuilds exactly `start..=end` (same files, same names, so the
//! uploads replace) and commits it. ARCHITECTURE.md has the whole argument.

use bytes::Bytes;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::bucket::{Bucket, BucketError};

/// Counts of what a partition's archive made of its events, since the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub rows: u64,
    pub filtered: u64,
    pub dead_letters: u64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.rows += other.rows;
        self.filtered += other.filtered;
        self.dead_letters += other.dead_letters;
    }
}

/// One file of a generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the archive's prefix.
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
}

/// What a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Intent,
    Commit,
}

/// One record of a partition's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub kind: Kind,
    /// The generation: offsets `start..=end`.
    pub start: i64,
    pub end: i64,
    /// The offset to resume from: `start` after an intent, `end + 1` after a commit.
    pub position: i64,
    /// The generation's files (data and dead letters).
    pub files: Vec<FileEntry>,
    /// Since the partition's first record, with this generation once committed.
    pub totals: Counts,
    /// `host:pid` of the writer, for people reading the log.
    pub writer: String,
    /// When it was written (RFC 3339, UTC), for people reading the log.
    pub at: String,
}

/// What a writer knows of a partition's log.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// The last record's number; 0 for an empty log.
    pub seq: u64,
    pub position: i64,
    pub totals: Counts,
    /// The last record, if it is an intent: a generation to finish.
    pub pending: Option<Record>,
}

impl Head {
    /// A partition with no log yet, starting at `position`.
    pub fn empty(position: i64) -> Head {
        Head {
            seq: 0,
            position,
            totals: Counts::default(),
            pending: None,
        }
    }
}

impl From<Record> for Head {
    fn from(r: Record) -> Head {
        Head {
            seq: r.seq,
            position: r.position,
            totals: r.totals,
            pending: (r.kind == Kind::Intent).then_some(r),
        }
    }
}

/// Why the log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Record `seq` was already written: another owner moved the partition on.
    #[error("record {0} of the log is already written by another owner")]
    Fenced(u64),
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// A record is not one Weir wrote (hand-edited, truncated).
    #[error("{key} is not a log record: {reason}")]
    Corrupt { key: String, reason: String },
}

/// The log of one partition.
#[derive(Debug, Clone)]
pub struct PartitionLog {
    group: String,
    topic: String,
    partition: i32,
}

/// The name of record `seq`, zero-padded so that names sort as numbers.
fn record_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

impl PartitionLog {
    pub fn new(group: &str, topic: &str, partition: i32) -> PartitionLog {
        PartitionLog {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
        }
    }

    fn folder(&self, bucket: &Bucket) -> Path {
        let p = self.partition.to_string();
        bucket.key(["_weir", "log", &self.group, &self.topic, &p])
    }

    fn record_key(&self, bucket: &Bucket, seq: u64) -> Path {
        let p = self.partition.to_string();
        let name = record_name(seq);
        bucket.key(["_weir", "log", &self.group, &self.topic, &p, &name])
    }

    /// The numbers of every record, ascending.
    pub async fn seqs(&self, bucket: &Bucket) -> Result<Vec<u64>, LogError> {
        let mut seqs: Vec<u64> = bucket
            .list(&self.folder(bucket))
            .await?
            .into_iter()
            .filter_map(|(k, _)| k.filename()?.strip_suffix(".json")?.parse().ok())
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Record `seq`.
    pub async fn read(&self, bucket: &Bucket, seq: u64) -> Result<Option<Record>, LogError> {
        let key = self.record_key(bucket, seq);
        let Some(bytes) = bucket.get(&key).await? else {
            return Ok(None);
        };
        let r: Record = serde_json::from_slice(&bytes).map_err(|e| LogError::Corrupt {
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        if r.seq != seq {
            return Err(LogError::Corrupt {
                key: key.to_string(),
                reason: format!("it says it is record {}", r.seq),
            });
        }
        Ok(Some(r))
    }

    /// The log's last record as a [`Head`], or `None` for an empty log.
    pub async fn head(&self, bucket: &Bucket) -> Result<Option<Head>, LogError> {
        let Some(&last) = self.seqs(bucket).await?.last() else {
            return Ok(None);
        };
        Ok(self.read(bucket, last).await?.map(Head::from))
    }

    /// Writes `record` as record `record.seq`, create-only.
    pub async fn append(&self, bucket: &Bucket, record: &Record) -> Result<(), LogError> {
        let key = self.record_key(bucket, record.seq);
        let body = serde_json::to_vec_pretty(record).expect("a record serialises");
        match bucket.create(&key, Bytes::from(body)).await {
            Ok(()) => Ok(()),
            Err(BucketError::Exists(_)) => Err(LogError::Fenced(record.seq)),
            Err(e) => Err(e.into()),
        }
    }
}

/// `host:pid`, naming the writer of a record.
pub fn writer_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ArchiveConfig;

    fn record(seq: u64, kind: Kind, start: i64, end: i64) -> Record {
        Record {
            seq,
            kind,
            start,
            end,
            position: if kind == Kind::Commit { end + 1 } else { start },
            files: vec![],
            totals: Counts::default(),
            writer: writer_id(),
            at: String::new(),
        }
    }

    #[tokio::test]
    async fn the_head_is_the_last_record_and_a_taken_number_fences() {
        let dir = std::env::temp_dir().join(format!("weir-log-{}", rand::random::<u64>()));
        let a: ArchiveConfig =
            toml::from_str(&format!("url = \"file://{}\"", dir.display())).unwrap();
        let b = Bucket::open(&a, std::path::Path::new("/")).unwrap();
        let log = PartitionLog::new("g", "t", 3);
        assert_eq!(log.head(&b).await.unwrap(), None);
        for seq in 1..=11 {
            let kind = if seq % 2 == 1 {
                Kind::Intent
            } else {
                Kind::Commit
            };
            let start = (seq as i64 - 1) / 2 * 10;
            log.append(&b, &record(seq, kind, start, start + 9))
                .await
                .unwrap();
        }
        // Record 11 (an intent) sorts after record 9 although "11" < "9".
        let head = log.head(&b).await.unwrap().unwrap();
        assert_eq!(head.seq, 11);
        assert_eq!(head.position, 50);
        assert_eq!(head.pending.as_ref().map(|r| r.end), Some(59));
        match log.append(&b, &record(11, Kind::Commit, 50, 59)).await {
            Err(LogError::Fenced(11)) => {}
            other => panic!("a second writer of record 11 must be fenced: {other:?}"),
        }
        // A different partition's log is separate.
        let other = PartitionLog::new("g", "t", 4);
        assert_eq!(other.head(&b).await.unwrap(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
