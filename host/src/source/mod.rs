//! The Kafka source: one consumer group per pipeline, polled on its own thread,
//! cutting each partition's records into batches and handing them to writers.
//!
//! - Assignment starts from the offsets stored in the database, never from Kafka's:
//!   the rebalance callback claims each partition's `weir_offsets` row, assigns at
//!   the stored offset, and records below it are skipped as well.
//! - Each partition is routed to one writer through a bounded queue. When the
//!   queue is full the partition is paused, and resumed once its batches drain,
//!   so a slow database slows consumption instead of growing memory. The poll loop
//!   itself never waits on a database commit.
//! - Kafka's group offsets are committed after the database commit, for lag tools
//!   only; nothing reads them back except to start a brand-new partition row.
//!
//! [`claim`] holds what this process owns, shared with the writers; [`Note`] is
//! what a writer tells the source; [`positions`] reads where each partition
//! stands for `weir offsets`. Uses `store`, `event`, `config` and `ops`; never
//! the sink.

pub mod claim;
pub mod positions;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use mysql_async::Pool;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use tokio::runtime::Handle;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::config::BatchConfig;
use crate::event::batch::Batch;
use crate::source::claim::{Claim, Claims};
use crate::store::db::connect;
use crate::store::offsets::{OffsetTable, Totals};

/// What a writer tells the source about a batch it was handed.
#[derive(Debug)]
pub enum Note {
    /// A batch committed: the partition's stored offset is now `next`.
    Committed {
        partition: i32,
        generation: u64,
        next: i64,
        totals: Totals,
    },
    /// A batch is done with; its buffers can be filled again.
    Spent(Batch),
}

/// Where a sink keeps each partition's position (the offset of the next record
/// to write), which the source starts from on assignment and after a fence.
pub trait PositionStore: Send + Sync + 'static {
    /// The stored position of `partition`, if it has one.
    fn read(&self, partition: i32) -> BoxFuture<'_, anyhow::Result<Option<i64>>>;
    /// Gives a partition with no stored position one at `start`, and returns
    /// the position stored (another owner may have been first).
    fn create(&self, partition: i32, start: i64) -> BoxFuture<'_, anyhow::Result<i64>>;
}

/// The SingleStore sink's positions: `weir_offsets` rows.
pub struct TablePositions {
    pub offsets: OffsetTable,
    pub pool: Pool,
}

impl PositionStore for TablePositions {
    fn read(&self, partition: i32) -> BoxFuture<'_, anyhow::Result<Option<i64>>> {
        Box::pin(async move {
            let mut conn = connect(&self.pool, Duration::from_secs(10)).await?;
            Ok(self.offsets.read(&mut conn, partition).await?)
        })
    }

    fn create(&self, partition: i32, start: i64) -> BoxFuture<'_, anyhow::Result<i64>> {
        Box::pin(async move {
            let mut conn = connect(&self.pool, Duration::from_secs(10)).await?;
            Ok(self.offsets.claim(&mut conn, partition, start).await?)
        })
    }
}

/// What the source needs to know.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub pipeline: String,
    pub topic: String,
    /// The consumer group.
    pub group: String,
    pub brokers: String,
    pub properties: Vec<(String, String)>,
    pub batch: BatchConfig,
    pub max_record_bytes: usize,
    pub dead_letter_cap: usize,
    /// A partition is paused once this many of its batches wait for a full
    /// writer, and resumed when none wait (pausing makes librdkafka drop what it
    /// prefetched, so it must not flap on every momentarily full queue).
    pub pause_at: usize,
}

/// Ownership changes seen by the rebalance callback, applied by the poll loop.
#[derive(Debug)]
enum Change {
    Assigned { partition: i32, claim: Claim },
    Revoked { partition: i32 },
}

/// The consumer's context: claims partitions in the database on assignment.
pub struct SourceContext {
    pipeline: String,
    topic: String,
    store: Arc<dyn PositionStore>,
    rt: Handle,
    claims: Claims,
    generation: AtomicU64,
    changes: Mutex<Vec<Change>>,
    changed: AtomicBool,
    stop: CancellationToken,
}

impl ClientContext for SourceContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        warn!(pipeline = %self.pipeline, "kafka: {error}: {reason}");
    }

    /// librdkafka's statistics, each second: the consumer lag of each assigned
    /// partition, and whether a broker is up, for the metrics and readiness.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let m = crate::ops::metrics::get();
        let mut total = 0;
        if let Some(topic) = statistics.topics.get(&self.topic) {
            for (&partition, p) in &topic.partitions {
                if partition < 0 {
                    continue;
                }
                let labels = crate::ops::metrics::PartitionLabels {
                    pipeline: self.pipeline.clone(),
                    partition: partition.to_string(),
                };
                // -1: not assigned here (or not known yet).
                if p.consumer_lag >= 0 {
                    m.lag.get_or_create(&labels).set(p.consumer_lag);
                    total += p.consumer_lag;
                } else {
                    m.lag.remove(&labels);
                }
            }
        }
        let up = statistics.brokers.values().any(|b| b.state == "UP");
        m.health.kafka(&self.pipeline, up, total);
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions: Vec<i32> = tpl
                    .elements_for_topic(&self.topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                for p in partitions {
                    let stored = self.claim(consumer, p);
                    let _ = tpl.set_partition_offset(&self.topic, p, Offset::Offset(stored));
                }
                // librdkafka keeps a partition's pause across a rebalance: one
                // paused when it was revoked would come back paused, and the
                // new state here (not paused) would never resume it. Resumed
                // before `assign`, so that the assignment's offset is not
                // outdated by the resume.
                let _ = consumer.resume(tpl);
                let r = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(e) = r {
                    error!(pipeline = %self.pipeline, "assigning partitions failed: {e}");
                }
                info!(pipeline = %self.pipeline, partitions = ?self.partitions(tpl), "partitions assigned");
                crate::ops::metrics::get().health.joined(&self.pipeline);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let partitions = self.partitions(tpl);
                {
                    let mut claims = self.claims.lock();
                    let mut changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
                    for &p in &partitions {
                        claims.remove(&p);
                        changes.push(Change::Revoked { partition: p });
                    }
                }
                self.changed.store(true, Ordering::Release);
                // The source forgets these partitions, paused or not.
                let _ = consumer.resume(tpl);
                let r = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = r {
                    warn!(pipeline = %self.pipeline, "unassigning partitions failed: {e}");
                }
                info!(pipeline = %self.pipeline, partitions = ?partitions, "partitions revoked");
            }
            other => {
                error!(pipeline = %self.pipeline, "rebalance error: {other:?}");
                let mut claims = self.claims.lock();
                let mut changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
                for p in claims.keys() {
                    changes.push(Change::Revoked { partition: *p });
                }
                claims.clear();
                self.changed.store(true, Ordering::Release);
                let _ = consumer.unassign();
            }
        }
    }
}

impl SourceContext {
    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect()
    }

    /// Reads (creating if needed) the stored offset of a partition, waiting for the
    /// database as long as it takes, and records the claim.
    fn claim(&self, consumer: &BaseConsumer<Self>, partition: i32) -> i64 {
        let topic = self.topic.as_str();
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .unwrap_or((-1, -1));
        let mut wait = Duration::from_millis(200);
        let stored = loop {
            let attempt = self.rt.block_on(async {
                if let Some(stored) = self.store.read(partition).await? {
                    return Ok::<_, anyhow::Error>(stored);
                }
                // A new position starts where the group's Kafka offset is, else at the log start.
                let start = kafka_committed(consumer, topic, partition).unwrap_or(low.max(0));
                self.store.create(partition, start).await
            });
            match attempt {
                Ok(stored) => break stored,
                Err(e) if self.stop.is_cancelled() => {
                    warn!(pipeline = %self.pipeline, partition, "giving up a claim while stopping: {e:#}");
                    break i64::MAX;
                }
                Err(e) => {
                    warn!(pipeline = %self.pipeline, partition, "cannot read the stored position, retrying: {e:#}");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        };
        if positions::lost(stored, low).is_some() {
            error!(
                pipeline = %self.pipeline, topic, partition, stored, log_start = low,
                "DATA LOSS UPSTREAM: events {stored}..{low} were deleted from Kafka (retention) \
                 before this pipeline read them; consumption resumes at the log start"
            );
        }
        debug!(pipeline = %self.pipeline, partition, stored, low, high, "claimed");
        let claim = Claim {
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
            expected: stored,
            fenced_at: None,
        };
        self.claims.lock().insert(partition, claim);
        self.changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Change::Assigned { partition, claim });
        self.changed.store(true, Ordering::Release);
        stored
    }

    fn take_changes(&self) -> Vec<Change> {
        if !self.changed.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut *self.changes.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn kafka_committed(
    consumer: &BaseConsumer<SourceContext>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .ok()?;
    let offset = committed
        .find_partition(topic, partition)
        .and_then(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some(o),
            _ => None,
        });
    drop(committed);
    offset
}

/// One owned partition, as the poll loop sees it.
struct Partition {
    generation: u64,
    skip_below: i64,
    writer: usize,
    current: Batch,
    first_at: Option<Instant>,
    pending: VecDeque<Batch>,
    paused: bool,
    /// The offset after the last record taken from librdkafka's queue.
    next: Option<i64>,
}

/// Counters the pipeline reports.
#[derive(Debug, Default)]
pub struct Progress {
    pub consumed: AtomicU64,
    pub rows: AtomicU64,
    pub filtered: AtomicU64,
    pub dead_letters: AtomicU64,
}

/// Messages taken from librdkafka's queue at most between two rounds of
/// housekeeping (about a millisecond's worth at full rate).
const BURST: u64 = 256;

/// What the source shares with the rest of its pipeline.
pub struct Wiring {
    /// Where each partition's position is stored.
    pub store: Arc<dyn PositionStore>,
    /// The runtime the rebalance callback claims partitions on.
    pub rt: Handle,
    /// Who owns which partition, shared with the writers.
    pub claims: Claims,
    /// One queue per writer; a partition always goes to the same one.
    pub writers: Vec<tokio::sync::mpsc::Sender<Batch>>,
    /// What the writers tell of their batches.
    pub notes: Receiver<Note>,
    pub stop: CancellationToken,
    pub progress: Arc<Progress>,
}

/// The poll loop of one pipeline, on its own thread. Returns when `stop` is
/// cancelled and every batch read has been committed (or the database could
/// not be reached and a second signal ended the process).
pub fn run(settings: SourceSettings, wiring: Wiring) -> anyhow::Result<()> {
    let Wiring {
        store,
        rt,
        claims,
        writers,
        notes,
        stop,
        progress,
    } = wiring;
    let ctx = SourceContext {
        pipeline: settings.pipeline.clone(),
        topic: settings.topic.clone(),
        store,
        rt,
        claims: claims.clone(),
        generation: AtomicU64::new(0),
        changes: Mutex::new(Vec::new()),
        changed: AtomicBool::new(false),
        stop: stop.clone(),
    };
    let consumer: BaseConsumer<SourceContext> =
        consumer_config(&settings, &settings.group).create_with_context(ctx)?;
    consumer.subscribe(&[settings.topic.as_str()])?;
    let mut source = Loop {
        consumer: &consumer,
        settings: &settings,
        topic: settings.topic.clone(),
        parts: HashMap::new(),
        writers,
        spare: Vec::new(),
        to_commit: HashMap::new(),
        last_commit: Instant::now(),
        last_fence_check: Instant::now(),
        claims,
        progress,
    };
    let max_wait = Duration::from_millis(settings.batch.max_wait_ms);
    let consumed = crate::ops::metrics::get()
        .consumed
        .get_or_create(&crate::ops::metrics::pipeline(&settings.pipeline))
        .clone();
    crate::ops::metrics::get()
        .health
        .started(&settings.pipeline);
    let mut now = Instant::now();
    while !stop.is_cancelled() {
        let mut polled = consumer.poll(source.next_deadline(max_wait, now));
        // A burst: what librdkafka already holds is taken without waiting, and
        // the housekeeping below (clocks, batch deadlines, hand-offs) runs once
        // per burst rather than once per message.
        let mut taken = 0u64;
        loop {
            source.apply_changes();
            match polled {
                None => break,
                Some(Err(e)) => {
                    warn!(pipeline = %settings.pipeline, "kafka: {e}");
                    break;
                }
                Some(Ok(m)) => {
                    taken += 1;
                    source.push(
                        m.partition(),
                        m.offset(),
                        m.timestamp().to_millis().unwrap_or(-1),
                        m.key(),
                        m.payload().unwrap_or_default(),
                    );
                }
            }
            if taken == BURST {
                break;
            }
            polled = consumer.poll(Duration::ZERO);
        }
        source.progress.consumed.fetch_add(taken, Ordering::Relaxed);
        consumed.inc_by(taken);
        now = Instant::now();
        source.flush_due(max_wait, now);
        source.send_pending();
        source.drain_notes(&notes);
        source.check_fences();
        source.commit_kafka(false);
    }
    info!(pipeline = %settings.pipeline, "stopping: writing the batches in flight");
    source.finish(&notes)?;
    Ok(())
}

fn consumer_config(s: &SourceSettings, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &s.brokers)
        .set("group.id", group)
        .set("client.id", format!("weir-{}", s.pipeline))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "50")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("queued.max.messages.kbytes", "16384")
        // librdkafka waits this long (default 1 s) to fetch again once its queue
        // thresholds were reached: with a bounded queue that default stalls the
        // pipeline in bursts.
        .set("fetch.queue.backoff.ms", "10")
        // Lag and broker state for the metrics and readiness.
        .set("statistics.interval.ms", "1000");
    for (k, v) in &s.properties {
        c.set(k, v);
    }
    c
}

struct Loop<'a> {
    consumer: &'a BaseConsumer<SourceContext>,
    settings: &'a SourceSettings,
    topic: String,
    parts: HashMap<i32, Partition>,
    writers: Vec<tokio::sync::mpsc::Sender<Batch>>,
    spare: Vec<Batch>,
    to_commit: HashMap<i32, i64>,
    last_commit: Instant,
    last_fence_check: Instant,
    claims: Claims,
    progress: Arc<Progress>,
}

impl Loop<'_> {
    fn fresh_batch(&mut self, partition: i32, generation: u64) -> Batch {
        let mut b = self.spare.pop().unwrap_or_default();
        b.clear();
        b.partition = partition;
        b.generation = generation;
        b
    }

    fn apply_changes(&mut self) {
        for change in self.consumer.context().take_changes() {
            match change {
                Change::Assigned { partition, claim } => {
                    let current = self.fresh_batch(partition, claim.generation);
                    let writer = partition.rem_euclid(self.writers.len() as i32) as usize;
                    if let Some(old) = self.parts.insert(
                        partition,
                        Partition {
                            generation: claim.generation,
                            skip_below: claim.expected,
                            writer,
                            current,
                            first_at: None,
                            pending: VecDeque::new(),
                            paused: false,
                            next: None,
                        },
                    ) {
                        self.recycle_partition(old);
                    }
                }
                Change::Revoked { partition } => {
                    if let Some(old) = self.parts.remove(&partition) {
                        self.recycle_partition(old);
                    }
                    self.to_commit.remove(&partition);
                }
            }
        }
    }

    fn recycle_partition(&mut self, part: Partition) {
        self.spare.push(part.current);
        self.spare.extend(part.pending);
    }

    fn push(&mut self, partition: i32, offset: i64, ts: i64, key: Option<&[u8]>, payload: &[u8]) {
        let s = self.settings;
        let Some(part) = self.parts.get_mut(&partition) else {
            return;
        };
        part.next = Some(offset + 1);
        if offset < part.skip_below {
            return;
        }
        if part.current.is_empty() {
            part.first_at = Some(Instant::now());
        }
        part.current.push(
            offset,
            ts,
            key,
            payload,
            s.max_record_bytes,
            s.dead_letter_cap,
        );
        if part.current.len() >= s.batch.max_events
            || part.current.payload_bytes() >= s.batch.max_bytes
        {
            self.cut(partition);
        }
    }

    /// Moves a partition's current batch to its pending queue.
    fn cut(&mut self, partition: i32) {
        let Some(generation) = self.parts.get(&partition).map(|p| p.generation) else {
            return;
        };
        let fresh = self.fresh_batch(partition, generation);
        let part = self.parts.get_mut(&partition).expect("present");
        let full = std::mem::replace(&mut part.current, fresh);
        part.first_at = None;
        part.pending.push_back(full);
    }

    fn flush_due(&mut self, max_wait: Duration, now: Instant) {
        let due: Vec<i32> = self
            .parts
            .iter()
            .filter(|(_, p)| {
                p.first_at
                    .is_some_and(|t| now.saturating_duration_since(t) >= max_wait)
            })
            .map(|(k, _)| *k)
            .collect();
        for p in due {
            self.cut(p);
        }
    }

    fn next_deadline(&self, max_wait: Duration, now: Instant) -> Duration {
        let mut next = Duration::from_millis(100);
        for p in self.parts.values() {
            if let Some(t) = p.first_at {
                next = next.min(max_wait.saturating_sub(now.saturating_duration_since(t)));
            }
            if !p.pending.is_empty() {
                next = next.min(Duration::from_millis(5));
            }
        }
        next
    }

    /// Hands pending batches to their writers; pauses partitions whose batches
    /// pile up behind a full writer and resumes those that drained.
    fn send_pending(&mut self) {
        let mut pause = Vec::new();
        let mut resume = Vec::new();
        for (&p, part) in self.parts.iter_mut() {
            while let Some(batch) = part.pending.pop_front() {
                match self.writers[part.writer].try_send(batch) {
                    Ok(()) => {}
                    Err(TrySendError::Full(batch)) | Err(TrySendError::Closed(batch)) => {
                        part.pending.push_front(batch);
                        break;
                    }
                }
            }
            if part.pending.len() >= self.settings.pause_at && !part.paused {
                part.paused = true;
                pause.push(p);
            } else if part.pending.is_empty() && part.paused {
                part.paused = false;
                resume.push((p, part.next));
            }
        }
        let tpl = |ps: &[i32]| {
            let mut tpl = TopicPartitionList::new();
            for &p in ps {
                tpl.add_partition(&self.topic, p);
            }
            tpl
        };
        if !pause.is_empty() {
            debug!(partitions = ?pause, "writers busy: pausing");
            if let Err(e) = self.consumer.pause(&tpl(&pause)) {
                warn!("pausing partitions failed: {e}");
            }
        }
        if !resume.is_empty() {
            let partitions: Vec<i32> = resume.iter().map(|(p, _)| *p).collect();
            debug!(?partitions, "resuming");
            if let Err(e) = self.consumer.resume(&tpl(&partitions)) {
                warn!("resuming partitions failed: {e}");
            }
            // librdkafka (2.12) does not wake the fetcher on resume: with every
            // partition paused it sleeps out its one-second timer first, and the
            // writers run dry meanwhile. A seek to where the partition stands
            // anyway restarts the fetch at once. Asynchronous (no timeout); the
            // position is the one resume would use, the record after the last
            // one taken.
            for (p, next) in resume {
                if let Some(next) = next {
                    if let Err(e) =
                        self.consumer
                            .seek(&self.topic, p, Offset::Offset(next), Duration::ZERO)
                    {
                        debug!(partition = p, "seek after resume failed: {e}");
                    }
                }
            }
        }
    }

    fn drain_notes(&mut self, notes: &Receiver<Note>) {
        while let Ok(note) = notes.try_recv() {
            self.note(note);
        }
    }

    fn note(&mut self, note: Note) {
        match note {
            Note::Spent(b) => {
                if self.spare.len() < 64 {
                    self.spare.push(b);
                }
            }
            Note::Committed {
                partition,
                generation,
                next,
                totals:
                    Totals {
                        rows,
                        filtered,
                        dead_letters,
                    },
            } => {
                self.progress.rows.fetch_add(rows, Ordering::Relaxed);
                self.progress
                    .filtered
                    .fetch_add(filtered, Ordering::Relaxed);
                self.progress
                    .dead_letters
                    .fetch_add(dead_letters, Ordering::Relaxed);
                if self
                    .parts
                    .get(&partition)
                    .is_some_and(|p| p.generation == generation)
                {
                    self.to_commit.insert(partition, next);
                }
            }
        }
    }

    /// A writer found another owner's offset in a partition's row: re-read the
    /// stored offset, start a new generation there, and seek.
    fn check_fences(&mut self) {
        if self.last_fence_check.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last_fence_check = Instant::now();
        let fenced: Vec<(i32, u64)> = self
            .claims
            .lock()
            .iter()
            .filter(|(_, c)| c.fenced_at.is_some())
            .map(|(p, c)| (*p, c.generation))
            .collect();
        for (partition, generation) in fenced {
            if self.parts.get(&partition).map(|p| p.generation) != Some(generation) {
                continue;
            }
            let ctx = self.consumer.context();
            let stored = ctx.claim(self.consumer, partition);
            self.apply_changes();
            // The claim starts the partition's state afresh (not paused); a
            // pause librdkafka still holds from before would never be lifted.
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&self.topic, partition);
            if let Err(e) = self.consumer.resume(&tpl) {
                warn!(pipeline = %self.settings.pipeline, partition, "resuming a fenced partition failed: {e}");
            }
            match self.consumer.seek(
                &self.topic,
                partition,
                Offset::Offset(stored),
                Duration::from_secs(10),
            ) {
                Ok(()) => info!(
                    pipeline = %self.settings.pipeline, partition, stored,
                    "fenced partition re-read from its stored offset"
                ),
                Err(e) => {
                    warn!(pipeline = %self.settings.pipeline, partition, "seek after a fence failed, will retry: {e}");
                    self.claims
                        .fence(partition, self.parts[&partition].generation, stored);
                }
            }
        }
    }

    fn commit_kafka(&mut self, sync: bool) {
        if self.to_commit.is_empty()
            || (!sync && self.last_commit.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last_commit = Instant::now();
        let mut tpl = TopicPartitionList::new();
        for (&p, &next) in &self.to_commit {
            let _ = tpl.add_partition_offset(&self.topic, p, Offset::Offset(next));
        }
        let mode = if sync {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        let r: KafkaResult<()> = self.consumer.commit(&tpl, mode);
        if let Err(e) = r {
            debug!("committing Kafka group offsets (for lag tools) failed: {e}");
        }
        self.to_commit.clear();
    }

    /// Cuts every partial batch, hands everything to the writers, waits for them
    /// to commit, and commits the group offsets.
    fn finish(mut self, notes: &Receiver<Note>) -> anyhow::Result<()> {
        let ps: Vec<i32> = self.parts.keys().copied().collect();
        for p in ps {
            if !self.parts[&p].current.is_empty() {
                self.cut(p);
            }
        }
        let writers = std::mem::take(&mut self.writers);
        for part in self.parts.values_mut() {
            while let Some(b) = part.pending.pop_front() {
                if writers[part.writer].blocking_send(b).is_err() {
                    break;
                }
            }
        }
        drop(writers);
        // Writers end when their queues are empty and closed; notes end when all
        // writers have dropped their senders.
        while let Ok(note) = notes.recv() {
            self.note(note);
        }
        self.commit_kafka(true);
        Ok(())
    }
}
