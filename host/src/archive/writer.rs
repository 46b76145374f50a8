//! The archive writer: the partitions routed to it, each a *generation* of
//! events at a time, sorted into one file per date partition and uploaded
//! between an intent and a commit in the partition's log ([`super::log`]).
//!
//! A generation is cut when its events reach `max_bytes` or its oldest has
//! waited `max_secs`, or, when the log ends with another writer's intent, at
//! exactly that intent's last offset, so that the files it named are made
//! again with the same names and the same rows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tracing::{debug, error, info, warn};

use super::bucket::{Bucket, BucketError};
use super::files::{self, From, Kind, Layout, Rows, Val};
use super::log::{Counts, FileEntry, Head, LogError, PartitionLog, Record};
use super::Heads;
use crate::chain::{Chain, ChainError, ChainOutput, Outcome};
use crate::config::{ArchiveCompression, ArchiveDeadLetters, ArchiveFormat};
use crate::event::batch::Batch;
use crate::event::convert::Decoder;
use crate::ops::metrics;
use crate::sink::dead_letter::{DeadLetter, Stage};
use crate::sink::{off_worker, Backoff, Links, STOP_GRACE};
use crate::source::Note;
use crate::store::offsets::Totals;

/// What an archive writer is set to do.
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    pub pipeline: String,
    pub group: String,
    pub topic: String,
    pub format: ArchiveFormat,
    pub compression: ArchiveCompression,
    /// The `partition` template (`dt=%Y-%m-%d/hr=%H`).
    pub partition: String,
    pub max_bytes: usize,
    pub max_secs: u64,
    pub dead_letters: ArchiveDeadLetters,
    pub max_record_bytes: usize,
    pub dead_letter_cap: usize,
}

/// Where dead letters go when they go to the database.
#[derive(Clone)]
pub struct DeadLetterTable {
    pub pool: mysql_async::Pool,
}

/// One partition's generation being filled.
struct Open {
    /// The claim's generation this state belongs to.
    claim: u64,
    head: Head,
    log: PartitionLog,
    /// The first offset of the generation (the head's position).
    start: i64,
    /// The last offset taken into it.
    last: Option<i64>,
    /// One file per date partition.
    files: Vec<(String, Rows)>,
    dead: Vec<DeadLetter>,
    counts: Counts,
    bytes: usize,
    opened: Option<Instant>,
    /// Kafka's timestamp of the oldest event taken, for the age metric.
    oldest_ms: Option<i64>,
}

impl Open {
    fn new(claim: u64, head: Head, log: PartitionLog) -> Open {
        Open {
            claim,
            start: head.position,
            head,
            log,
            last: None,
            files: Vec::new(),
            dead: Vec::new(),
            counts: Counts::default(),
            bytes: 0,
            opened: None,
            oldest_ms: None,
        }
    }

    /// The intent being finished: the generation must end at its `end`.
    fn redo_end(&self) -> Option<i64> {
        self.head
            .pending
            .as_ref()
            .filter(|r| r.start == self.start)
            .map(|r| r.end)
    }
}

/// How a generation's flush ended.
enum Flushed {
    Committed,
    /// Another owner wrote the log first: the partition is re-read from its log.
    Fenced,
    /// The partition is no longer this process's.
    Revoked,
    /// Stopping, and the bucket did not answer within the grace.
    Abandoned,
}

/// Writes the partitions routed to it, one generation at a time.
pub struct ArchiveWriter {
    settings: ArchiveSettings,
    layout: Arc<Layout>,
    decoder: Decoder,
    bucket: Bucket,
    heads: Heads,
    table: Option<DeadLetterTable>,
    chain: Option<Chain>,
    stages: Vec<String>,
    links: Links,
    open: HashMap<i32, Open>,
    /// Per date partition: the last minute seen and its folder, as the
    /// template makes it (the finest conversion is `%M`).
    folder_cache: Option<(i64, String)>,
    writer_id: String,
    stopping_since: Option<tokio::time::Instant>,
    /// The decoder's slots, kept between events.
    slots: Vec<Option<&'static str>>,
    /// Claims whose generation could not be committed while stopping: their
    /// later batches are dropped, or the next generation would start past
    /// events it never held.
    broken: std::collections::HashSet<(i32, u64)>,
}

impl ArchiveWriter {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: ArchiveSettings,
        layout: Arc<Layout>,
        bucket: Bucket,
        heads: Heads,
        table: Option<DeadLetterTable>,
        chain: Option<Chain>,
        links: Links,
    ) -> ArchiveWriter {
        let stages = chain
            .as_ref()
            .map(|c| (0..c.names().len()).map(|i| c.stage(i)).collect())
            .unwrap_or_default();
        ArchiveWriter {
            decoder: Decoder::new(layout.names.clone()),
            settings,
            layout,
            bucket,
            heads,
            table,
            chain,
            stages,
            links,
            open: HashMap::new(),
            folder_cache: None,
            writer_id: super::log::writer_id(),
            stopping_since: None,
            slots: Vec::new(),
            broken: Default::default(),
        }
    }

    /// Takes batches until the source closes the queue, cutting generations by
    /// size and age; then uploads what is open and returns.
    pub async fn run(mut self, mut rx: tokio::sync::mpsc::Receiver<Batch>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            tokio::select! {
                b = rx.recv() => match b {
                    Some(b) => self.take(b).await,
                    None => break,
                },
                _ = tick.tick() => self.flush_due().await,
            }
        }
        let parts: Vec<i32> = self.open.keys().copied().collect();
        for p in parts {
            if self.open[&p].redo_end().is_some() {
                // A generation another writer named cannot be committed short.
                info!(pipeline = %self.settings.pipeline, partition = p,
                      "stopping before the intent being finished was complete; the next owner finishes it");
                continue;
            }
            self.flush(p).await;
        }
        self.report_open();
    }

    /// Flushes partition `p` within a batch: whether the batch may go on.
    async fn flushed(&mut self, p: i32, claim: u64) -> bool {
        match self.flush(p).await {
            Flushed::Committed => {
                self.state(p, claim);
                true
            }
            Flushed::Abandoned => {
                self.broken.insert((p, claim));
                false
            }
            Flushed::Fenced | Flushed::Revoked => false,
        }
    }

    async fn flush_due(&mut self) {
        let max = std::time::Duration::from_secs(self.settings.max_secs);
        let due: Vec<i32> = self
            .open
            .iter()
            .filter(|(_, o)| o.redo_end().is_none() && o.opened.is_some_and(|t| t.elapsed() >= max))
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            let claim = self.open[&p].claim;
            if let Flushed::Abandoned = self.flush(p).await {
                self.broken.insert((p, claim));
            }
        }
        self.report_open();
    }

    fn report_open(&self) {
        let m = metrics::get();
        let labels = metrics::pipeline(&self.settings.pipeline);
        let files: usize = self.open.values().map(|o| o.files.len()).sum();
        m.archive_open_files
            .get_or_create(&labels)
            .set(files as i64);
        let now = Utc::now().timestamp_millis();
        let oldest = self.open.values().filter_map(|o| o.oldest_ms).min();
        m.archive_oldest
            .get_or_create(&labels)
            .set(oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0));
    }

    /// The partition's state for a batch of claim generation `claim`, made
    /// afresh from the log's head when the claim is new.
    fn state(&mut self, partition: i32, claim: u64) -> &mut Open {
        let stale = self.open.get(&partition).is_none_or(|o| o.claim != claim);
        if stale {
            let head = self.heads.get(partition).unwrap_or_else(|| Head::empty(0));
            let log = PartitionLog::new(&self.settings.group, &self.settings.topic, partition);
            if let Some(r) = &head.pending {
                info!(pipeline = %self.settings.pipeline, partition, start = r.start, end = r.end,
                      files = r.files.len(), "finishing the generation another writer began");
            }
            self.open.insert(partition, Open::new(claim, head, log));
        }
        self.open.get_mut(&partition).expect("inserted")
    }

    async fn take(&mut self, batch: Batch) {
        let (p, claim) = (batch.partition, batch.generation);
        if self.links.claims.current(p, claim).is_none() || self.broken.contains(&(p, claim)) {
            if self.open.get(&p).is_some_and(|o| o.claim == claim) {
                self.open.remove(&p);
            }
            let _ = self.links.notes.send(Note::Spent(batch));
            return;
        }
        self.state(p, claim);
        let chained = match self.run_chain(&batch).await {
            Ok(c) => c,
            Err(()) => {
                // Its events are not in the generation: nothing after them
                // may be, or the commit would skip them.
                self.broken.insert((p, claim));
                self.open.remove(&p);
                let _ = self.links.notes.send(Note::Spent(batch));
                return;
            }
        };
        let mut oversized = batch.oversized.iter().peekable();
        for i in 0..batch.len() {
            let offset = batch.offsets[i];
            let Some(open) = self.open.get_mut(&p) else {
                break;
            };
            if offset < open.start || open.last.is_some_and(|l| offset <= l) {
                continue;
            }
            if open.redo_end().is_some_and(|end| offset > end) && !self.flushed(p, claim).await {
                break;
            }
            while oversized.next_if(|o| o.index < i).is_some() {}
            let too_big = oversized.next_if(|o| o.index == i).map(|o| o.size);
            self.add(p, &batch, i, too_big, chained.as_ref());
            let Some(open) = self.open.get(&p) else {
                break;
            };
            let cut = match open.redo_end() {
                Some(end) => offset >= end,
                None => open.bytes >= self.settings.max_bytes,
            };
            if cut && !self.flushed(p, claim).await {
                break;
            }
        }
        let _ = self.links.notes.send(Note::Spent(batch));
    }

    /// Runs the chain over a batch; `Err` when the batch must be dropped
    /// (revoked, or stopping while the chain cannot run).
    async fn run_chain(&mut self, batch: &Batch) -> Result<Option<ChainOutput>, ()> {
        if self.chain.is_none() {
            return Ok(None);
        }
        let mut skip = vec![false; batch.len()];
        for o in &batch.oversized {
            skip[o.index] = true;
        }
        let mut backoff = Backoff::new();
        loop {
            if self
                .links
                .claims
                .current(batch.partition, batch.generation)
                .is_none()
            {
                return Err(());
            }
            let topic = &self.settings.topic;
            let chain = self.chain.as_mut().expect("checked above");
            match off_worker(|| chain.run(topic, batch, &skip)) {
                Ok(out) => return Ok(Some(out)),
                Err(ChainError::RetryLater { plugin, reason }) => {
                    warn!(pipeline = %self.settings.pipeline, plugin = %plugin,
                          "plugin asked to retry the batch later: {reason}");
                }
                Err(e) => {
                    error!(pipeline = %self.settings.pipeline, partition = batch.partition,
                           "the chain cannot run, will retry: {e}");
                }
            }
            if self.give_up(batch.partition) {
                return Err(());
            }
            backoff.wait().await;
        }
    }

    /// Where event `i` goes: `Some` for a row (in the folder of its date
    /// partition, left in `folder_cache`), `None` for a filter drop, or the
    /// stage and reason of its dead letter.
    fn classify<'b>(
        &mut self,
        batch: &'b Batch,
        i: usize,
        too_big: Option<usize>,
        chained: Option<&ChainOutput>,
        slots: &mut Vec<Option<&'b str>>,
    ) -> Result<Option<()>, (Stage, String)> {
        let s = &self.settings;
        let payload = batch.payload(i);
        if let Some(size) = too_big {
            return Err((
                Stage::Source,
                format!(
                    "oversized record: {size} bytes, over max_record_bytes = {}",
                    s.max_record_bytes
                ),
            ));
        }
        if self.layout.decodes {
            self.decoder
                .decode(payload, slots)
                .map_err(|e| (Stage::Decode, e.to_string()))?;
        } else {
            slots.clear();
        }
        let additions = match chained.map(|c| &c.outcomes[i]) {
            Some(Outcome::Filtered { .. }) => return Ok(None),
            Some(Outcome::Dead { step, reason }) => {
                return Err((Stage::Step(self.stages[*step].clone()), reason.clone()))
            }
            Some(Outcome::Pass) => chained.map(|c| &c.additions[i]),
            None => None,
        };
        if s.format == ArchiveFormat::JsonLinesGz {
            let not_text = |what: &str| {
                (
                    Stage::Sink,
                    format!("the record's {what} is not UTF-8; JSON lines hold text (archive it as Parquet)"),
                )
            };
            if !self.layout.decodes && std::str::from_utf8(payload).is_err() {
                return Err(not_text("payload"));
            }
            if batch
                .key(i)
                .is_some_and(|k| std::str::from_utf8(k).is_err())
            {
                return Err(not_text("key"));
            }
        }
        let ms = match self.layout.time_slot {
            None if batch.timestamps[i] >= 0 => batch.timestamps[i],
            None => {
                return Err((
                    Stage::Sink,
                    "the record has no Kafka timestamp to place it in a date partition".into(),
                ))
            }
            Some(slot) => {
                let name = &self.layout.names[slot];
                // A step's value is printed; the event's own text is read in place.
                let text: std::borrow::Cow<'_, str> = match additions.and_then(|a| a.get(name)) {
                    Some(v) => v.to_string().into(),
                    None => slots[slot].unwrap_or("null").into(),
                };
                event_time(&text).map_err(|e| (Stage::Sink, format!("time field `{name}`: {e}")))?
            }
        };
        self.folder(ms)
            .map(|()| Some(()))
            .map_err(|e| (Stage::Sink, e))
    }

    /// Sorts event `i` into a file of its date partition, a dead letter or a
    /// filter drop.
    fn add(
        &mut self,
        p: i32,
        batch: &Batch,
        i: usize,
        too_big: Option<usize>,
        chained: Option<&ChainOutput>,
    ) {
        let mut slots = std::mem::take(&mut self.slots);
        let outcome = self.classify(batch, i, too_big, chained, &mut slots);
        let Self {
            open,
            layout,
            settings,
            folder_cache,
            ..
        } = self;
        let open = open.get_mut(&p).expect("state made by take");
        let payload = batch.payload(i);
        open.last = Some(batch.offsets[i]);
        open.bytes += payload.len().min(settings.max_record_bytes);
        if open.opened.is_none() {
            open.opened = Some(Instant::now());
        }
        let ts = batch.timestamps[i];
        if ts >= 0 {
            open.oldest_ms = Some(open.oldest_ms.map_or(ts, |o| o.min(ts)));
        }
        let dead = |stage, reason| {
            DeadLetter::from_batch(batch, i, stage, reason, settings.dead_letter_cap)
        };
        match outcome {
            Ok(Some(())) => {}
            Ok(None) => {
                open.counts.filtered += 1;
                self.slots = recycle(slots);
                return;
            }
            Err((stage, reason)) => {
                open.counts.dead_letters += 1;
                open.dead.push(dead(stage, reason));
                self.slots = recycle(slots);
                return;
            }
        };
        let folder = folder_cache.as_ref().map_or("", |(_, f)| f.as_str());
        let f = match open.files.iter().position(|(k, _)| k == folder) {
            Some(f) => f,
            None => {
                open.files.push((folder.to_owned(), Rows::new(layout)));
                open.files.len() - 1
            }
        };
        let rows = &mut open.files[f].1;
        rows.begin_row();
        let additions = chained.and_then(|c| match c.outcomes[i] {
            Outcome::Pass => Some(&c.additions[i]),
            _ => None,
        });
        let mut failed = None;
        for (c, col) in layout.columns.iter().enumerate() {
            let v = match col.from {
                From::Partition => Ok(Val::I32(batch.partition)),
                From::Offset => Ok(Val::I64(batch.offsets[i])),
                From::Timestamp => Ok(if ts >= 0 { Val::I64(ts) } else { Val::Null }),
                From::Key => Ok(batch
                    .key(i)
                    .map_or(Val::Null, |k| Val::Bytes(std::borrow::Cow::Borrowed(k)))),
                From::Payload => Ok(Val::Bytes(std::borrow::Cow::Borrowed(payload))),
                From::Field(slot) => match additions.and_then(|a| a.get(&col.name)) {
                    Some(v) => files::from_value(v, col.kind),
                    None => match slots.get(slot).copied().flatten() {
                        Some(text) => files::from_json_text(text, col.kind),
                        None => Ok(Val::Null),
                    },
                },
            };
            match v {
                Ok(v) => rows.push(c, &v),
                Err(reason) => {
                    failed = Some(format!(
                        "field `{}` ({}): {reason}",
                        col.name,
                        kind_word(col.kind)
                    ));
                    break;
                }
            }
        }
        match failed {
            None => {
                rows.end_row();
                open.counts.rows += 1;
            }
            Some(reason) => {
                rows.undo_row();
                open.counts.dead_letters += 1;
                open.dead.push(dead(Stage::Sink, reason));
            }
        }
        self.slots = recycle(slots);
    }

    /// The folder of an event time, from the template.
    /// Leaves the folder of an event time in `folder_cache`, formatted from
    /// the template only when the minute changes.
    fn folder(&mut self, ms: i64) -> Result<(), String> {
        let minute = ms.div_euclid(60_000);
        if self
            .folder_cache
            .as_ref()
            .is_some_and(|(m, _)| *m == minute)
        {
            return Ok(());
        }
        let t = DateTime::<Utc>::from_timestamp_millis(ms)
            .filter(|t| (0..=MAX_EVENT_MS).contains(&t.timestamp_millis()))
            .ok_or_else(|| format!("event time {ms} ms is outside 1970..=9999"))?;
        self.folder_cache = Some((minute, t.format(&self.settings.partition).to_string()));
        Ok(())
    }

    /// Before a retry while stopping: whether to leave the generation
    /// uncommitted (read again at the next start).
    fn give_up(&mut self, partition: i32) -> bool {
        if !self.links.grace_over(&mut self.stopping_since) {
            return false;
        }
        warn!(pipeline = %self.settings.pipeline, partition,
              "stopping with a generation not uploaded after {STOP_GRACE:?} of retries; it is read again at the next start");
        true
    }

    /// Uploads partition `p`'s generation: intent, files, commit.
    async fn flush(&mut self, p: i32) -> Flushed {
        let Some(mut open) = self.open.remove(&p) else {
            return Flushed::Revoked;
        };
        let Some(end) = open.last else {
            self.open.insert(p, open);
            return Flushed::Committed;
        };
        let claim = open.claim;
        let s = self.settings.clone();
        let s = &s;
        let writer_id = self.writer_id.clone();
        // The files, encoded off the runtime's worker.
        let start = open.start;
        let name = format!("{}-{p}-{start:020}", s.topic);
        let mut uploads: Vec<(FileEntry, Bytes)> = Vec::new();
        for (folder, rows) in std::mem::take(&mut open.files) {
            let n = rows.len() as u64;
            let bytes = off_worker(|| match s.format {
                ArchiveFormat::Parquet => {
                    files::parquet(&self.layout, rows, s.compression).map_err(|e| e.to_string())
                }
                ArchiveFormat::JsonLinesGz => {
                    files::json_lines(&self.layout, &rows).map_err(|e| e.to_string())
                }
            });
            let bytes = match bytes {
                Ok(b) => b,
                Err(e) => {
                    // Nothing a record holds can make encoding fail; if it
                    // does, nothing is committed and the generation is read again.
                    error!(pipeline = %s.pipeline, partition = p, "encoding a file failed: {e}");
                    return Flushed::Abandoned;
                }
            };
            let mut key: Vec<&str> = vec![&s.topic];
            key.extend(folder.split('/'));
            let file = format!("{name}.{}", s.format.extension());
            key.push(&file);
            let key = self.bucket.relative(&self.bucket.key(key));
            uploads.push((
                FileEntry {
                    key,
                    rows: n,
                    bytes: bytes.len() as u64,
                },
                Bytes::from(bytes),
            ));
        }
        let dead = std::mem::take(&mut open.dead);
        if !dead.is_empty() && s.dead_letters == ArchiveDeadLetters::Bucket {
            let bytes = dead_letter_lines(&dead, s, p);
            let file = format!("{name}.jsonl.gz");
            let key = self
                .bucket
                .relative(&self.bucket.key(["_dead_letters", &s.topic, &file]));
            uploads.push((
                FileEntry {
                    key,
                    rows: dead.len() as u64,
                    bytes: bytes.len() as u64,
                },
                Bytes::from(bytes),
            ));
        }
        let mut totals = open.head.totals;
        totals.add(open.counts);
        let record = |seq, kind, position| Record {
            seq,
            kind,
            start,
            end,
            position,
            files: uploads.iter().map(|(f, _)| f.clone()).collect(),
            totals: if kind == super::log::Kind::Commit {
                totals
            } else {
                open.head.totals
            },
            writer: writer_id.clone(),
            at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        };
        let redo = open.redo_end().is_some();
        let mut seq = open.head.seq;
        let mut backoff = Backoff::new();
        // 1. The intent, unless the log already ends with it.
        if !redo {
            let intent = record(seq + 1, super::log::Kind::Intent, start);
            match self
                .retry(p, claim, &mut backoff, |b| {
                    let log = open.log.clone();
                    let intent = intent.clone();
                    async move { log.append(&b, &intent).await }
                })
                .await
            {
                Ok(()) => seq += 1,
                Err(f) => return f,
            }
        }
        // 2. The files, replacing any earlier try's.
        for (f, bytes) in &uploads {
            let key = self.bucket.key(f.key.split('/'));
            let r = self
                .retry(p, claim, &mut backoff, |b| {
                    let key = key.clone();
                    let bytes = bytes.clone();
                    async move { b.put(&key, bytes).await.map_err(LogError::from) }
                })
                .await;
            if let Err(f) = r {
                return f;
            }
        }
        // Dead letters to the table: idempotent by their key, so a retried
        // generation writes each once.
        if !dead.is_empty() && s.dead_letters == ArchiveDeadLetters::Table {
            if let Err(f) = self
                .dead_letters_to_table(p, claim, &dead, &mut backoff)
                .await
            {
                return f;
            }
        }
        // Files an unfinished earlier try named that this one did not make
        // (only when a step is not deterministic).
        if let Some(pending) = open.head.pending.as_ref().filter(|_| redo) {
            for old in &pending.files {
                if !uploads.iter().any(|(f, _)| f.key == old.key) {
                    warn!(pipeline = %s.pipeline, partition = p, key = %old.key,
                          "an earlier try made a file this one did not: deleting it");
                    let key = self.bucket.key(old.key.split('/'));
                    let _ = self.bucket.delete(&key).await;
                }
            }
        }
        // 3. The commit.
        let commit = record(seq + 1, super::log::Kind::Commit, end + 1);
        let r = self
            .retry(p, claim, &mut backoff, |b| {
                let log = open.log.clone();
                let commit = commit.clone();
                async move { log.append(&b, &commit).await }
            })
            .await;
        if let Err(f) = r {
            return f;
        }
        let m = metrics::get();
        let labels = metrics::pipeline(&s.pipeline);
        m.archive_objects
            .get_or_create(&labels)
            .inc_by(uploads.len() as u64);
        m.archive_bytes
            .get_or_create(&labels)
            .inc_by(uploads.iter().map(|(f, _)| f.bytes).sum());
        m.rows.get_or_create(&labels).inc_by(open.counts.rows);
        m.filtered
            .get_or_create(&labels)
            .inc_by(open.counts.filtered);
        for d in &dead {
            m.dead_letters
                .get_or_create(&metrics::StageLabels {
                    pipeline: s.pipeline.clone(),
                    stage: d.stage.as_str().to_owned(),
                })
                .inc();
        }
        debug!(pipeline = %s.pipeline, partition = p, start, end, files = uploads.len(),
               rows = open.counts.rows, "generation committed");
        self.links.claims.advance(p, claim, end + 1);
        let _ = self.links.notes.send(Note::Committed {
            partition: p,
            generation: claim,
            next: end + 1,
            totals: Totals {
                rows: open.counts.rows,
                filtered: open.counts.filtered,
                dead_letters: open.counts.dead_letters,
            },
        });
        let head = Head {
            seq: seq + 1,
            position: end + 1,
            totals,
            pending: None,
        };
        self.heads.set(p, head.clone());
        self.open.insert(p, Open::new(claim, head, open.log));
        Flushed::Committed
    }

    /// Runs `op` until it succeeds, the partition is fenced or revoked, or the
    /// process stops and the grace runs out.
    async fn retry<F, Fut>(
        &mut self,
        p: i32,
        claim: u64,
        backoff: &mut Backoff,
        op: F,
    ) -> Result<(), Flushed>
    where
        F: Fn(Bucket) -> Fut,
        Fut: std::future::Future<Output = Result<(), LogError>>,
    {
        loop {
            if self.links.claims.current(p, claim).is_none() {
                return Err(Flushed::Revoked);
            }
            match op(self.bucket.clone()).await {
                Ok(()) => return Ok(()),
                Err(LogError::Fenced(seq)) => {
                    warn!(pipeline = %self.settings.pipeline, partition = p, seq,
                          "another owner wrote the partition's log first: fenced, re-reading it");
                    self.links.claims.fence(p, claim, -1);
                    return Err(Flushed::Fenced);
                }
                Err(e) => {
                    let what = match &e {
                        LogError::Bucket(BucketError::Failed { .. }) => {
                            "object storage unavailable"
                        }
                        _ => "archive log unusable",
                    };
                    warn!(pipeline = %self.settings.pipeline, partition = p, "{what}, retrying: {e}");
                    metrics::get()
                        .retries
                        .get_or_create(&metrics::pipeline(&self.settings.pipeline))
                        .inc();
                }
            }
            if self.give_up(p) {
                return Err(Flushed::Abandoned);
            }
            backoff.wait().await;
        }
    }

    async fn dead_letters_to_table(
        &mut self,
        p: i32,
        claim: u64,
        dead: &[DeadLetter],
        backoff: &mut Backoff,
    ) -> Result<(), Flushed> {
        let Some(table) = self.table.clone() else {
            return Ok(());
        };
        let s = self.settings.clone();
        let statements: Vec<String> = crate::sink::dead_letter::insert_statements(
            dead,
            &s.group,
            &s.topic,
            &s.pipeline,
            p,
            None,
            1 << 20,
        )
        .into_iter()
        // Written again when a generation is made again: the key
        // (group, topic, partition, offset) keeps one.
        .map(|sql| sql.replacen("INSERT INTO", "INSERT IGNORE INTO", 1))
        .collect();
        loop {
            if self.links.claims.current(p, claim).is_none() {
                return Err(Flushed::Revoked);
            }
            let r = async {
                use mysql_async::prelude::Queryable as _;
                let mut conn = table.pool.get_conn().await?;
                for sql in &statements {
                    conn.query_drop(sql).await?;
                }
                Ok::<_, mysql_async::Error>(())
            }
            .await;
            match r {
                Ok(()) => return Ok(()),
                Err(e) => warn!(pipeline = %s.pipeline, partition = p,
                                "writing dead letters to weir_dead_letters failed, retrying: {e}"),
            }
            if self.give_up(p) {
                return Err(Flushed::Abandoned);
            }
            backoff.wait().await;
        }
    }
}

/// The decoder's slot buffer, emptied of the last event's borrows so that it
/// can be kept for the next (no allocation per event).
fn recycle(mut slots: Vec<Option<&str>>) -> Vec<Option<&'static str>> {
    slots.clear();
    slots.into_iter().map(|_| None).collect()
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Int32 | Kind::Int64 | Kind::TimestampMs => "int",
        Kind::Float64 => "float",
        Kind::Boolean => "boolean",
        Kind::Text => "text",
        Kind::Json => "json",
        Kind::Binary => "bytes",
    }
}

/// The last millisecond of year 9999.
const MAX_EVENT_MS: i64 = 253_402_300_799_999;

/// An event time from a field's JSON text: epoch milliseconds or RFC 3339.
pub fn event_time(text: &str) -> Result<i64, String> {
    if text == "null" {
        return Err("missing".into());
    }
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Some(s) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        return DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|e| {
                format!(
                    "`{}` is not RFC 3339: {e}",
                    crate::sink::dead_letter::fit(s, 64)
                )
            });
    }
    Err(format!(
        "expected epoch milliseconds or RFC 3339 text, found {}",
        crate::event::convert::JsonKind::of(text)
    ))
}

/// Dead letters as gzip'd JSON lines, one per event, with what a person or a
/// replay needs: where it was, why, and the payload (as text when it is
/// UTF-8, else in hex).
fn dead_letter_lines(dead: &[DeadLetter], s: &ArchiveSettings, partition: i32) -> Vec<u8> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for d in dead {
        let mut o = serde_json::Map::new();
        o.insert("pipeline".into(), s.pipeline.clone().into());
        o.insert("topic".into(), s.topic.clone().into());
        o.insert("kafka_partition".into(), partition.into());
        o.insert("kafka_offset".into(), d.offset.into());
        o.insert(
            "kafka_timestamp".into(),
            (d.timestamp >= 0).then_some(d.timestamp).into(),
        );
        o.insert(
            "kafka_key".into(),
            d.key
                .as_ref()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .into(),
        );
        o.insert("stage".into(), d.stage.as_str().into());
        o.insert("reason".into(), d.reason.clone().into());
        match std::str::from_utf8(&d.payload) {
            Ok(t) => o.insert("payload".into(), t.into()),
            Err(_) => o.insert("payload_hex".into(), hex::encode(&d.payload).into()),
        };
        o.insert("payload_size".into(), d.size.into());
        o.insert("payload_sha256".into(), d.sha256.clone().into());
        let _ = serde_json::to_writer(&mut gz, &o);
        let _ = gz.write_all(b"\n");
    }
    gz.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::log::Kind as RecordKind;
    use crate::chain::fields::Fields;
    use crate::config::ArchiveConfig;
    use crate::source::claim::{Claim, Claims};
    use parquet::file::reader::{FileReader, SerializedFileReader};

    fn events(range: std::ops::Range<i64>) -> Batch {
        let mut b = Batch {
            partition: 0,
            generation: 1,
            ..Batch::default()
        };
        for o in range {
            // 2026-11-28T09:00:00Z
            b.push(
                o,
                1_795_856_400_000,
                None,
                format!("{{\"n\":{o}}}").as_bytes(),
                65536,
                1024,
            );
        }
        b
    }

    fn settings() -> ArchiveSettings {
        ArchiveSettings {
            pipeline: "p".into(),
            group: "g".into(),
            topic: "t".into(),
            format: ArchiveFormat::Parquet,
            compression: ArchiveCompression::Zstd,
            partition: "dt=%Y-%m-%d/hr=%H".into(),
            max_bytes: 1 << 30,
            max_secs: 3600,
            dead_letters: ArchiveDeadLetters::Bucket,
            max_record_bytes: 65536,
            dead_letter_cap: 1024,
        }
    }

    /// Runs a writer over `batch` from `head`, until its queue closes.
    async fn write(bucket: &Bucket, head: Head, batch: Batch) -> (Claims, Vec<Note>) {
        let claims = Claims::default();
        claims.lock().insert(
            0,
            Claim {
                generation: 1,
                expected: head.position,
                fenced_at: None,
            },
        );
        let heads = Heads::default();
        heads.set(0, head);
        let (notes, rx_notes) = std::sync::mpsc::channel();
        let layout = Layout::new(&Fields::new(), false, "@timestamp").unwrap();
        let w = ArchiveWriter::new(
            settings(),
            Arc::new(layout),
            bucket.clone(),
            heads,
            None,
            None,
            Links {
                claims: claims.clone(),
                notes,
                reload: None,
                stop: Default::default(),
            },
        );
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(batch).await.unwrap();
        drop(tx);
        w.run(rx).await;
        (claims, rx_notes.try_iter().collect())
    }

    fn folder_bucket() -> (Bucket, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("weir-archive-{}", rand::random::<u64>()));
        let a: ArchiveConfig =
            toml::from_str(&format!("url = \"file://{}\"", dir.display())).unwrap();
        (Bucket::open(&a, std::path::Path::new("/")).unwrap(), dir)
    }

    fn rows_in(dir: &std::path::Path, key: &str) -> i64 {
        let bytes = std::fs::read(dir.join(key)).unwrap();
        let r = SerializedFileReader::new(Bytes::from(bytes)).unwrap();
        r.metadata().file_metadata().num_rows()
    }

    /// A log that ends with another writer's intent (0..=59, two files, one
    /// of them half written) is finished exactly: the generation is cut at 59,
    /// its file replaced with the right rows, the file this try does not make
    /// deleted, and the rest goes on in a generation of its own.
    #[tokio::test]
    async fn an_unfinished_intent_is_made_again_exactly() {
        let (bucket, dir) = folder_bucket();
        let log = PartitionLog::new("g", "t", 0);
        let first = "t/dt=2026-11-28/hr=09/t-0-00000000000000000000.parquet";
        let stray = "t/dt=2026-11-28/hr=08/t-0-00000000000000000000.parquet";
        let intent = Record {
            seq: 1,
            kind: RecordKind::Intent,
            start: 0,
            end: 59,
            position: 0,
            files: [first, stray]
                .map(|k| FileEntry {
                    key: k.into(),
                    rows: 1,
                    bytes: 1,
                })
                .to_vec(),
            totals: Counts::default(),
            writer: "crashed".into(),
            at: String::new(),
        };
        log.append(&bucket, &intent).await.unwrap();
        for k in [first, stray] {
            bucket
                .put(&bucket.key(k.split('/')), Bytes::from_static(b"half"))
                .await
                .unwrap();
        }
        let head = log.head(&bucket).await.unwrap().unwrap();
        assert!(head.pending.is_some());
        let (claims, notes) = write(&bucket, head, events(0..100)).await;
        assert_eq!(
            rows_in(&dir, first),
            60,
            "the intent's generation, made again"
        );
        assert!(
            !dir.join(stray).exists(),
            "a file the new try did not make is gone"
        );
        let second = "t/dt=2026-11-28/hr=09/t-0-00000000000000000060.parquet";
        assert_eq!(rows_in(&dir, second), 40);
        let commits: Vec<i64> = notes
            .iter()
            .filter_map(|n| match n {
                Note::Committed { next, .. } => Some(*next),
                _ => None,
            })
            .collect();
        assert_eq!(commits, [60, 100]);
        assert_eq!(claims.lock()[&0].expected, 100);
        let head = log.head(&bucket).await.unwrap().unwrap();
        assert_eq!((head.seq, head.position, head.totals.rows), (4, 100, 100));
        let r2 = log.read(&bucket, 2).await.unwrap().unwrap();
        assert_eq!((r2.kind, r2.start, r2.end), (RecordKind::Commit, 0, 59));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Two owners start from the same log head; the second to write its intent
    /// finds the record taken: fenced, it uploads nothing and commits nothing.
    #[tokio::test]
    async fn the_second_owner_of_a_record_is_fenced_and_writes_nothing() {
        let (bucket, dir) = folder_bucket();
        let (fresh, _) = write(&bucket, Head::empty(0), events(0..100)).await;
        assert_eq!(fresh.lock()[&0].expected, 100);
        let (stale, notes) = write(&bucket, Head::empty(0), events(0..50)).await;
        assert!(stale.lock()[&0].fenced_at.is_some(), "not fenced");
        assert!(!notes.iter().any(|n| matches!(n, Note::Committed { .. })));
        let file = "t/dt=2026-11-28/hr=09/t-0-00000000000000000000.parquet";
        assert_eq!(
            rows_in(&dir, file),
            100,
            "the stale owner replaced the file"
        );
        let log = PartitionLog::new("g", "t", 0);
        assert_eq!(log.seqs(&bucket).await.unwrap(), [1, 2]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn event_times_are_epoch_ms_or_rfc3339_and_nothing_else() {
        assert_eq!(event_time("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(
            event_time("\"2023-11-14T22:13:20Z\""),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            event_time("\"2023-11-14T23:13:20+01:00\""),
            Ok(1_700_000_000_000)
        );
        assert!(event_time("null").unwrap_err().contains("missing"));
        assert!(event_time("\"yesterday\"")
            .unwrap_err()
            .contains("not RFC 3339"));
        assert!(event_time("true").unwrap_err().contains("found boolean"));
        assert!(event_time("1.5").is_err());
    }
}
