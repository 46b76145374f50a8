//! The writer: one per connection, committing the batches of the partitions
//! routed to it, one transaction per batch, in order.
//!
//! The write of a batch is a small state machine ([`State`]): write it in the
//! current [`Mode`]; after a failure that may have committed, read the stored
//! offset before anything else (in doubt); after a compare-and-set that
//! matched nothing, find out who moved the offset (contested); after a
//! warning or a refused row, find the rows at fault one by one and write the
//! batch again without them. It ends [`Ending::Committed`], fenced, revoked or
//! abandoned at a stop. The database is behind [`Database`], so the
//! transitions are tested against a fake (`writer/tests.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::dead_letter::insert_statements;
use super::encode::{encode, ChainView, EncodeContext, Encoded, RowFormat};
use super::io::{Attempt, Database, Transaction};
use super::plan::TablePlan;
use super::report::Reporter;
use crate::chain::{Chain, ChainError, ChainOutput};
use crate::config::WriteMethod;
use crate::event::batch::Batch;
use crate::ops::metrics;
use crate::source::claim::Claims;
use crate::source::Note;
use crate::store::db::{classify, ErrorClass};
use crate::store::offsets::{OffsetTable, Totals};

/// What a writer takes over at its next batch.
pub struct Swap {
    /// The new chain (`None`: the pipeline has no steps any more).
    pub chain: Option<Chain>,
    /// A new table plan, when the columns or the chain's fields changed.
    pub plan: Option<Arc<TablePlan>>,
}

/// Where a writer finds a [`Swap`] to use from its next batch on.
pub type Slot = Arc<Mutex<Option<Swap>>>;

/// Leaves `swap` for the writer of `slot`. A plan still waiting there is kept
/// when the new swap brings none.
pub fn offer(slot: &Slot, mut swap: Swap) {
    let mut pending = slot.lock().unwrap_or_else(|e| e.into_inner());
    if swap.plan.is_none() {
        swap.plan = pending.take().and_then(|s| s.plan);
    }
    *pending = Some(swap);
}

/// What a writer is told once, at its start.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub pipeline: String,
    pub method: WriteMethod,
    /// Records larger than this become dead letters.
    pub max_record_bytes: usize,
    /// Bytes of a record kept in its dead letter.
    pub dead_letter_cap: usize,
}

/// How a writer is wired to the rest of its pipeline.
#[derive(Clone)]
pub struct Links {
    /// Who owns which partition, and from which offset.
    pub claims: Claims,
    /// Where the writer tells the source of commits and spent batches.
    pub notes: std::sync::mpsc::Sender<Note>,
    /// Where a reloaded chain waits (`None`: this writer is never reloaded).
    pub reload: Option<Slot>,
    /// Cancelled when the process is told to stop.
    pub stop: CancellationToken,
}

impl Links {
    /// Whether the process was told to stop and `since` (set on the first
    /// call after the signal) is more than [`STOP_GRACE`] ago: then a writer
    /// leaves what it cannot commit, to be read again at the next start.
    pub fn grace_over(&self, since: &mut Option<tokio::time::Instant>) -> bool {
        if !self.stop.is_cancelled() {
            return false;
        }
        since
            .get_or_insert_with(tokio::time::Instant::now)
            .elapsed()
            >= STOP_GRACE
    }
}

/// After a stop signal, how long a batch that cannot be committed (the
/// database away, a plugin paused) keeps being retried before it is left
/// uncommitted, to be read again at the next start. With the backoff's 5 s
/// cap, a stopped process exits at most about 15 s after the signal plus the
/// call or statement in progress.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// How the rows of an attempt are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `LOAD DATA` streamed from memory; any warning fails the attempt.
    Load,
    /// Multi-row `INSERT`; any warning fails the attempt.
    Insert,
    /// Multi-row `INSERT`, warnings accepted: the database warned about the
    /// batch, but about no row of it alone.
    InsertTolerant,
}

impl Mode {
    fn format(self) -> RowFormat {
        match self {
            Mode::Load => RowFormat::Tsv,
            Mode::Insert | Mode::InsertTolerant => RowFormat::Sql,
        }
    }
}

impl From<WriteMethod> for Mode {
    fn from(method: WriteMethod) -> Mode {
        match method {
            WriteMethod::LoadData => Mode::Load,
            WriteMethod::Insert => Mode::Insert,
        }
    }
}

/// Where the write of one batch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Send the batch in one transaction.
    Write(Mode),
    /// An attempt failed where it may have committed: the stored offset
    /// tells whether it did, or whether another owner moved it.
    InDoubt(Mode),
    /// The offsets row did not match and the transaction was rolled back:
    /// the stored offset tells whether another owner moved it.
    Contested(Mode),
    /// The database warned about the rows (`refusal: None`) or refused a
    /// statement: find the rows at fault, one by one.
    FindFaults { mode: Mode, refusal: Option<String> },
}

/// How the write of one batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Rows, dead letters and the offset committed together.
    Committed,
    /// Another owner moved the partition's offset: nothing of the batch is
    /// written and the claim is fenced.
    Fenced,
    /// The partition was revoked, or reassigned, before the batch committed.
    Revoked,
    /// Every record of the batch is below the claim's offset.
    NothingNew,
    /// The process was stopping and the batch could not be committed within
    /// [`STOP_GRACE`]; this writer commits nothing more.
    Abandoned,
}

/// A batch being written: the records from `start`, moving the partition's
/// offset from `expected` to `end`.
struct Job<'a> {
    batch: &'a Batch,
    generation: u64,
    start: usize,
    expected: i64,
    end: i64,
    /// Events the database refused, with its words.
    refused: HashMap<usize, String>,
    chain: Option<ChainView<'a>>,
}

/// Doubling waits between retries, capped.
/// Waits between retries: 100 ms, doubling up to 5 s.
#[derive(Debug)]
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff(Duration::from_millis(100))
    }
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

/// Runs `f`, CPU-bound for milliseconds, off the runtime's worker when the
/// runtime has others, so that the other writers' connections keep streaming.
pub fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Writes batches of the partitions routed to it, one transaction per batch.
pub struct Writer<D: Database> {
    settings: WriterSettings,
    plan: Arc<TablePlan>,
    offsets: OffsetTable,
    db: D,
    links: Links,
    chain: Option<Chain>,
    /// `step:NAME` per step of the chain, for dead letters.
    stages: Vec<String>,
    /// The chain's version label, for `@chain` columns and dead letters.
    version: String,
    /// The last batch's rows, reused.
    enc: Encoded,
    report: Reporter,
    /// When this writer first saw the stop while a batch was being retried.
    stopping_since: Option<tokio::time::Instant>,
    /// A batch was left uncommitted at a stop: nothing after it may commit.
    abandoned: bool,
}

impl<D: Database> Writer<D> {
    pub fn new(
        settings: WriterSettings,
        plan: Arc<TablePlan>,
        offsets: OffsetTable,
        db: D,
        chain: Option<Chain>,
        links: Links,
    ) -> Writer<D> {
        let mut writer = Writer {
            report: Reporter::new(&settings.pipeline),
            settings,
            plan,
            offsets,
            db,
            links,
            chain: None,
            stages: Vec::new(),
            version: String::new(),
            enc: Encoded::default(),
            stopping_since: None,
            abandoned: false,
        };
        writer.set_chain(chain);
        writer
    }

    fn set_chain(&mut self, chain: Option<Chain>) {
        self.stages = chain
            .as_ref()
            .map(|c| (0..c.names().len()).map(|s| c.stage(s)).collect())
            .unwrap_or_default();
        self.version = chain.as_ref().map(Chain::version).unwrap_or_default();
        self.chain = chain;
    }

    /// Writes every batch received until the channel closes.
    pub async fn run(mut self, mut batches: tokio::sync::mpsc::Receiver<Batch>) {
        while let Some(batch) = batches.recv().await {
            if !self.abandoned {
                self.write(&batch).await;
            }
            let _ = self.links.notes.send(Note::Spent(batch));
        }
        self.db.close().await;
    }

    /// Commits one batch, retrying until it lands, is found to have landed, or
    /// its partition turns out to belong to someone else.
    pub async fn write(&mut self, batch: &Batch) -> Ending {
        // A batch boundary: a reloaded chain takes over from here.
        let fresh = self
            .links
            .reload
            .as_ref()
            .and_then(|slot| slot.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(swap) = fresh {
            if let Some(plan) = swap.plan {
                self.plan = plan;
            }
            self.set_chain(swap.chain);
        }
        let (p, generation) = (batch.partition, batch.generation);
        let Some(claim) = self.links.claims.current(p, generation) else {
            debug!(partition = p, "dropping a batch read under an older claim");
            return Ending::Revoked;
        };
        let start = batch.offsets.partition_point(|&o| o < claim.expected);
        let Some(end) = batch.end_offset().filter(|_| start < batch.len()) else {
            return Ending::NothingNew;
        };
        let mut backoff = Backoff::new();
        let chained = match self.run_chain(batch, start, &mut backoff).await {
            Ok(out) => out,
            Err(ending) => return ending,
        };
        let (stages, version) = (self.stages.clone(), self.version.clone());
        let mut job = Job {
            batch,
            generation,
            start,
            expected: claim.expected,
            end,
            refused: HashMap::new(),
            chain: chained.as_ref().map(|output| ChainView {
                output,
                stages: &stages,
                version: &version,
            }),
        };
        let mut state = State::Write(self.settings.method.into());
        let mut first = true;
        loop {
            if self.links.claims.current(p, generation).is_none() {
                debug!(
                    partition = p,
                    "partition revoked while its batch was retried"
                );
                return Ending::Revoked;
            }
            if !first && self.give_up(batch) {
                return Ending::Abandoned;
            }
            first = false;
            state = match self.step(state, &mut job, &mut backoff).await {
                Ok(next) => next,
                Err(ending) => return ending,
            };
        }
    }

    /// One transition of a batch's write: the next state, or how it ended.
    async fn step(
        &mut self,
        state: State,
        job: &mut Job<'_>,
        backoff: &mut Backoff,
    ) -> Result<State, Ending> {
        let p = job.batch.partition;
        Ok(match state {
            State::Write(mode) => match self.attempt(job, mode).await {
                Ok(Attempt::Committed) => return Err(Ending::Committed),
                Ok(Attempt::Mismatch) => State::Contested(mode),
                Ok(Attempt::NeedsDryRun) => State::FindFaults {
                    mode,
                    refusal: None,
                },
                // The dry run's verdicts are per statement: from here on the
                // rows go as INSERTs too.
                Err(e) if classify(&e) == ErrorClass::BadRow => State::FindFaults {
                    mode: Mode::Insert,
                    refusal: Some(e.to_string()),
                },
                Err(e) => {
                    self.retry_later(backoff, p, &e).await;
                    State::InDoubt(mode)
                }
            },
            State::InDoubt(mode) => match self.db.stored_offset(p).await {
                Ok(Some(stored)) if stored == job.end => {
                    info!(
                        partition = p,
                        next = job.end,
                        "an in-doubt commit had landed"
                    );
                    // The totals were committed with it; report them as usual.
                    let totals = self.encode(job, RowFormat::Tsv);
                    self.committed(job, totals);
                    return Err(Ending::Committed);
                }
                Ok(Some(stored)) if stored == job.expected => State::Write(mode),
                Ok(stored) => return Err(self.fenced(job, stored)),
                Err(e) => {
                    self.retry_later(backoff, p, &e).await;
                    State::InDoubt(mode)
                }
            },
            // Our transaction was rolled back: whatever the row holds now was
            // written by another owner, unless it still holds ours.
            State::Contested(mode) => match self.db.stored_offset(p).await.ok().flatten() {
                Some(stored) if stored == job.expected => State::Write(mode),
                stored => return Err(self.fenced(job, stored)),
            },
            State::FindFaults { mode, refusal } => match self.dry_run(job).await {
                Ok(bad) if !bad.is_empty() => {
                    job.refused.extend(bad);
                    State::Write(mode)
                }
                Ok(_) => match refusal {
                    None => {
                        warn!(
                            pipeline = %self.settings.pipeline, partition = p,
                            "the database warned about a batch but no row is at fault; writing it with INSERT"
                        );
                        State::Write(Mode::InsertTolerant)
                    }
                    Some(e) => {
                        // No row is at fault: the statement that failed was
                        // Weir's own (a dead letter or the offsets row).
                        error!(
                            pipeline = %self.settings.pipeline, partition = p, table = %self.plan.table,
                            "the database refused Weir's own bookkeeping for a batch (no row is at fault); retrying with backoff: {e}"
                        );
                        self.wait_to_retry(backoff).await;
                        State::InDoubt(mode)
                    }
                },
                Err(e) => {
                    self.retry_later(backoff, p, &e).await;
                    State::InDoubt(mode)
                }
            },
        })
    }

    /// Encodes the job's rows in `format` into `self.enc`.
    fn encode(&mut self, job: &Job<'_>, format: RowFormat) -> Totals {
        let mut enc = std::mem::take(&mut self.enc);
        let ctx = EncodeContext {
            topic: self.offsets.topic(),
            ingested_ms: chrono::Utc::now().timestamp_millis(),
            max_record_bytes: self.settings.max_record_bytes,
            dead_letter_cap: self.settings.dead_letter_cap,
            format,
        };
        let plan = &self.plan;
        off_worker(|| {
            encode(
                plan,
                job.batch,
                job.start,
                ctx,
                &job.refused,
                job.chain,
                &mut enc,
            )
        });
        self.enc = enc;
        Totals {
            rows: self.enc.row_ends.len() as u64,
            filtered: self.enc.filtered,
            dead_letters: self.enc.dead.len() as u64,
        }
    }

    /// Encodes and sends the batch in one transaction.
    async fn attempt(&mut self, job: &Job<'_>, mode: Mode) -> Result<Attempt, mysql_async::Error> {
        let started = std::time::Instant::now();
        let totals = self.encode(job, mode.format());
        let encoded_in = started.elapsed();
        let dead_letters = insert_statements(
            &self.enc.dead,
            self.offsets.group(),
            self.offsets.topic(),
            &self.settings.pipeline,
            job.batch.partition,
            (!self.version.is_empty()).then_some(self.version.as_str()),
            4 << 20,
        );
        let result = self
            .db
            .commit(Transaction {
                plan: &self.plan,
                rows: &self.enc,
                format: mode.format(),
                tolerate_warnings: mode == Mode::InsertTolerant,
                dead_letters: &dead_letters,
                partition: job.batch.partition,
                expected: job.expected,
                end: job.end,
                totals,
            })
            .await;
        if let Ok(Attempt::Committed) = result {
            debug!(
                partition = job.batch.partition,
                rows = totals.rows,
                dead_letters = totals.dead_letters,
                encode_us = encoded_in.as_micros() as u64,
                write_us = (started.elapsed() - encoded_in).as_micros() as u64,
                "batch committed"
            );
            metrics::get()
                .write_seconds
                .get_or_create(&metrics::pipeline(&self.settings.pipeline))
                .observe(started.elapsed().as_secs_f64());
            self.committed(job, totals);
        }
        result
    }

    /// The rows the database refuses or warns about, tried one by one.
    async fn dry_run(
        &mut self,
        job: &Job<'_>,
    ) -> Result<HashMap<usize, String>, mysql_async::Error> {
        self.encode(job, RowFormat::Sql);
        self.db.dry_run(&self.plan, &self.enc).await
    }

    /// After a commit (`self.enc` holds what was written): the claim moves on,
    /// the metrics count it, the source hears of it.
    fn committed(&self, job: &Job<'_>, totals: Totals) {
        let (partition, generation, next) = (job.batch.partition, job.generation, job.end);
        self.links.claims.advance(partition, generation, next);
        self.report.committed(job.batch, &self.enc, totals);
        let _ = self.links.notes.send(Note::Committed {
            partition,
            generation,
            next,
            totals,
        });
    }

    /// Another owner moved the partition's offset (to `stored`): the claim is
    /// fenced there and the batch dropped.
    fn fenced(&self, job: &Job<'_>, stored: Option<i64>) -> Ending {
        let (p, expected) = (job.batch.partition, job.expected);
        warn!(
            pipeline = %self.settings.pipeline, partition = p, expected, stored = ?stored,
            "fenced: another owner moved this partition's offset; dropping the batch"
        );
        self.links
            .claims
            .fence(p, job.generation, stored.unwrap_or(expected));
        Ending::Fenced
    }

    /// Runs the chain over the batch (if there is one), retrying with backoff while
    /// a plugin asks to retry later or an instance cannot be rebuilt. `Err`: the
    /// partition was revoked meanwhile, or the process is stopping.
    async fn run_chain(
        &mut self,
        batch: &Batch,
        start: usize,
        backoff: &mut Backoff,
    ) -> Result<Option<ChainOutput>, Ending> {
        if self.chain.is_none() {
            return Ok(None);
        }
        // Events the sink will dead-letter anyway are not shown to the steps.
        let mut skip = vec![false; batch.len()];
        for s in skip.iter_mut().take(start) {
            *s = true;
        }
        for o in &batch.oversized {
            skip[o.index] = true;
        }
        let mut slots = Vec::new();
        for (i, s) in skip.iter_mut().enumerate() {
            if !*s
                && self
                    .plan
                    .decoder
                    .decode(batch.payload(i), &mut slots)
                    .is_err()
            {
                *s = true;
            }
        }
        let mut first = true;
        loop {
            if self
                .links
                .claims
                .current(batch.partition, batch.generation)
                .is_none()
            {
                return Err(Ending::Revoked);
            }
            if !first && self.give_up(batch) {
                return Err(Ending::Abandoned);
            }
            first = false;
            let Some(chain) = self.chain.as_mut() else {
                return Ok(None);
            };
            let topic = self.offsets.topic();
            let before = chain.stats.clone();
            let result = off_worker(|| chain.run(topic, batch, &skip));
            self.report.steps(chain, &before);
            let pipeline = &self.settings.pipeline;
            match result {
                Ok(out) => {
                    self.report.step_dead_letters(chain, batch, &out);
                    self.report.canary(chain, batch, &out);
                    return Ok(Some(out));
                }
                Err(ChainError::RetryLater { plugin, reason }) => {
                    warn!(pipeline = %pipeline, partition = batch.partition, plugin = %plugin,
                          "plugin asked to retry the batch later: {reason}");
                }
                Err(e @ ChainError::Paused { .. }) => {
                    error!(pipeline = %pipeline, partition = batch.partition,
                           "partition paused until the plugin is fixed: {e}");
                }
                Err(ChainError::Plugin(e)) => {
                    error!(pipeline = %pipeline, partition = batch.partition,
                           "cannot rebuild a plugin instance, will retry: {e}");
                }
            }
            backoff.wait().await;
        }
    }

    /// Before a retry: whether to leave this batch uncommitted, the process
    /// having been told to stop and this writer retrying for more than
    /// [`STOP_GRACE`] since. Nothing of the batch was committed, so it is read
    /// again at the next start; this writer commits nothing more.
    fn give_up(&mut self, batch: &Batch) -> bool {
        if !self.links.grace_over(&mut self.stopping_since) {
            return false;
        }
        warn!(
            pipeline = %self.settings.pipeline,
            partition = batch.partition,
            from = batch.offsets.first().copied().unwrap_or_default(),
            "stopping with a batch uncommitted after {STOP_GRACE:?} of retries; it is read again at the next start"
        );
        self.abandoned = true;
        true
    }

    /// Logs a failed attempt, drops the connection (its transaction, if any, dies
    /// with it) and waits before the next try. The caller treats the commit as in doubt.
    async fn retry_later(&mut self, backoff: &mut Backoff, partition: i32, e: &mysql_async::Error) {
        let pipeline = &self.settings.pipeline;
        match classify(e) {
            ErrorClass::Other => error!(
                pipeline = %pipeline, partition, table = %self.plan.table,
                "writing a batch failed, will retry: {e}"
            ),
            _ => warn!(pipeline = %pipeline, partition, "database unavailable, retrying: {e}"),
        }
        self.wait_to_retry(backoff).await;
    }

    /// Drops the connection, counts a retry and waits.
    async fn wait_to_retry(&mut self, backoff: &mut Backoff) {
        self.db.reset();
        metrics::get()
            .retries
            .get_or_create(&metrics::pipeline(&self.settings.pipeline))
            .inc();
        backoff.wait().await;
    }
}

#[cfg(test)]
mod tests;
