//! The SingleStore sink: turns a partition's batch into rows and dead letters and
//! commits them with the partition's offset in one transaction.
//!
//! One [`Writer`] per connection; each partition is always handled by the same
//! writer, so its batches commit in order. The write path is `LOAD DATA LOCAL
//! INFILE` streamed from memory (or multi-row `INSERT`, see [`WriteMethod`]); any
//! warning fails the attempt, and the rows at fault are found one by one, turned
//! into dead letters, and the batch is written again without them.
//!
//! Architecture Invariant: rows, dead letters and the offsets row of a batch are
//! committed together or not at all, and the offsets row moves only by a
//! compare-and-set from the offset this owner last read or wrote.

pub mod dead_letter;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};
use tracing::{debug, error, info, warn};

use crate::chain::{Chain, ChainError, ChainOutput, Outcome};
use crate::config::{FieldType, PipelineConfig, WriteMethod};
use crate::event::batch::Batch;
use crate::event::convert::{convert, CellError, Decoder, SqlType};
use crate::sink::dead_letter::{insert_statements, DeadLetter, Stage};
use crate::source::claim::Claims;
use crate::source::Note;
use crate::store::db::{classify, connect, ErrorClass};
use crate::store::offsets::{OffsetTable, Totals};
use crate::store::sql::{ident, load_data};

/// Where a column's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnSource {
    /// The event field in decoder slot `n`.
    Field(usize),
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    IngestedAt,
    /// The chain's version label (`@chain`).
    Chain,
}

/// A target column and how to fill it.
#[derive(Debug, Clone)]
pub struct PlannedColumn {
    pub name: String,
    /// The field or `@property` it is mapped from.
    pub from: String,
    pub source: ColumnSource,
    pub ty: SqlType,
    /// The column's declared type, for messages.
    pub column_type: String,
    pub nullable: bool,
}

/// How a pipeline's events become rows of its table; checked against the table.
#[derive(Debug)]
pub struct TablePlan {
    pub table: String,
    pub columns: Vec<PlannedColumn>,
    pub decoder: Decoder,
    load_sql: String,
    insert_head: String,
}

/// Why a pipeline's table cannot take its events.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("table `{0}` does not exist in the database")]
    NoTable(String),
    #[error("table `{table}` has no column `{column}` (mapped from `{from}`)")]
    MissingColumn {
        table: String,
        column: String,
        from: String,
    },
    #[error("column `{table}.{column}` has type `{ty}`, which weir cannot write")]
    Unsupported {
        table: String,
        column: String,
        ty: String,
    },
    #[error("column `{table}.{column}` ({ty}) cannot hold field `{field}`, declared {declared:?}")]
    Incompatible {
        table: String,
        column: String,
        ty: String,
        field: String,
        declared: FieldType,
    },
    #[error(
        "column `{table}.{column}` is NOT NULL without a default, and no field is mapped to it"
    )]
    UnmappedRequired { table: String, column: String },
    #[error(
        "column `{table}.{column}` is NOT NULL, but plugin `{plugin}` may write `{field}` as null"
    )]
    MayBeNull {
        table: String,
        column: String,
        field: String,
        plugin: String,
    },
    #[error("reading the table's columns: {0}")]
    Db(#[from] mysql_async::Error),
}

type SchemaRow = (
    String,
    String,
    String,
    String,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<String>,
    String,
);

impl TablePlan {
    /// Reads the table's columns and matches them with the pipeline's mapping.
    /// `fields` are the types the chain leaves its fields with ([`crate::chain::fields::chain_fields`]).
    pub async fn load(
        conn: &mut Conn,
        p: &PipelineConfig,
        fields_in: &crate::chain::fields::Fields,
    ) -> Result<TablePlan, PlanError> {
        let rows: Vec<SchemaRow> = conn
            .query(format!(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH, \
                 NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, COLUMN_DEFAULT, EXTRA \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {}",
                crate::store::sql::str_literal(&p.table)
            ))
            .await?;
        if rows.is_empty() {
            return Err(PlanError::NoTable(p.table.clone()));
        }
        let mut by_name: HashMap<String, SchemaRow> = rows
            .into_iter()
            .map(|r| (r.0.to_ascii_lowercase(), r))
            .collect();
        let mut fields: Vec<String> = Vec::new();
        let mut columns = Vec::new();
        for (column, from) in &p.columns {
            let Some(row) = by_name.remove(&column.to_ascii_lowercase()) else {
                return Err(PlanError::MissingColumn {
                    table: p.table.clone(),
                    column: column.clone(),
                    from: from.clone(),
                });
            };
            let (name, data_type, column_type, nullable, chars, prec, scale, dtp, _, _) = row;
            let ty = SqlType::from_schema(&data_type, &column_type, chars, prec, scale, dtp);
            if let SqlType::Unsupported(t) = &ty {
                return Err(PlanError::Unsupported {
                    table: p.table.clone(),
                    column: name,
                    ty: t.clone(),
                });
            }
            let source = match from.as_str() {
                "@topic" => ColumnSource::Topic,
                "@partition" => ColumnSource::Partition,
                "@offset" => ColumnSource::Offset,
                "@timestamp" => ColumnSource::Timestamp,
                "@key" => ColumnSource::Key,
                "@ingested_at" => ColumnSource::IngestedAt,
                "@chain" => ColumnSource::Chain,
                field => {
                    if let Some(info) = fields_in.get(field) {
                        if !compatible(info.ty, &ty) {
                            return Err(PlanError::Incompatible {
                                table: p.table.clone(),
                                column: name,
                                ty: column_type,
                                field: field.to_owned(),
                                declared: info.ty,
                            });
                        }
                        if let crate::chain::fields::Origin::Step(plugin) = &info.origin {
                            if info.nullable && nullable.eq_ignore_ascii_case("NO") {
                                return Err(PlanError::MayBeNull {
                                    table: p.table.clone(),
                                    column: name,
                                    field: field.to_owned(),
                                    plugin: plugin.clone(),
                                });
                            }
                        }
                    }
                    let slot = match fields.iter().position(|f| f == field) {
                        Some(i) => i,
                        None => {
                            fields.push(field.to_owned());
                            fields.len() - 1
                        }
                    };
                    ColumnSource::Field(slot)
                }
            };
            columns.push(PlannedColumn {
                name,
                from: from.clone(),
                source,
                ty,
                column_type: column_type.to_ascii_lowercase(),
                nullable: nullable.eq_ignore_ascii_case("YES"),
            });
        }
        for (_, row) in by_name {
            let (name, _, _, nullable, _, _, _, _, default, extra) = row;
            let generated = extra.to_ascii_lowercase();
            if nullable.eq_ignore_ascii_case("NO")
                && default.is_none()
                && !generated.contains("auto_increment")
                && !generated.contains("generated")
            {
                return Err(PlanError::UnmappedRequired {
                    table: p.table.clone(),
                    column: name,
                });
            }
        }
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        let load_sql = load_data(&p.table, &names, "weir-batch");
        let cols: Vec<String> = names.iter().map(|c| ident(c)).collect();
        let insert_head = format!(
            "INSERT INTO {} ({}) VALUES ",
            ident(&p.table),
            cols.join(", ")
        );
        Ok(TablePlan {
            table: p.table.clone(),
            columns,
            decoder: Decoder::new(fields),
            load_sql,
            insert_head,
        })
    }

    /// The `LOAD DATA` statement for this table.
    pub fn load_sql(&self) -> &str {
        &self.load_sql
    }

    /// `INSERT INTO t (cols) VALUES ` for this table.
    pub fn insert_head(&self) -> &str {
        &self.insert_head
    }
}

fn compatible(declared: FieldType, ty: &SqlType) -> bool {
    use SqlType as S;
    match declared {
        FieldType::Int => !matches!(ty, S::Unsupported(_)),
        FieldType::Float => matches!(
            ty,
            S::Float | S::Decimal { .. } | S::Text { .. } | S::Binary { .. } | S::Json
        ),
        FieldType::Text => matches!(
            ty,
            S::Text { .. } | S::Binary { .. } | S::Json | S::DateTime { .. } | S::Date
        ),
        FieldType::Boolean => matches!(ty, S::Int { .. } | S::Text { .. } | S::Json),
        FieldType::Json => matches!(ty, S::Text { .. } | S::Binary { .. } | S::Json),
    }
}

/// How rows are laid out in [`Encoded::rows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// Tab-separated, one line per row, for `LOAD DATA`.
    Tsv,
    /// `(v1, v2, ...)` tuples for `INSERT`.
    Sql,
}

/// A batch turned into rows and dead letters. Reused across batches.
#[derive(Debug, Default)]
pub struct Encoded {
    /// All rows back to back.
    pub rows: Vec<u8>,
    /// End of row r in `rows`.
    pub row_ends: Vec<usize>,
    /// The batch index of row r.
    pub row_events: Vec<usize>,
    pub dead: Vec<DeadLetter>,
    /// Events a filter dropped.
    pub filtered: u64,
}

impl Encoded {
    pub fn clear(&mut self) {
        self.filtered = 0;
        self.rows.clear();
        self.row_ends.clear();
        self.row_events.clear();
        self.dead.clear();
    }

    /// Row r's bytes.
    pub fn row(&self, r: usize) -> &[u8] {
        let start = if r == 0 { 0 } else { self.row_ends[r - 1] };
        &self.rows[start..self.row_ends[r]]
    }
}

/// Per-event inputs that do not come from the payload.
#[derive(Debug, Clone, Copy)]
pub struct EncodeContext<'a> {
    pub topic: &'a str,
    pub ingested_ms: i64,
    pub max_record_bytes: usize,
    pub dead_letter_cap: usize,
    pub format: RowFormat,
}

/// What the chain made of a batch, for [`encode`].
#[derive(Debug, Clone, Copy)]
pub struct ChainView<'a> {
    pub output: &'a ChainOutput,
    /// `step:NAME` per step.
    pub stages: &'a [String],
    /// The chain's version label ([`Chain::version`]).
    pub version: &'a str,
}

/// Turns records `start..` of `batch` into rows, filter drops or dead letters.
/// `refused` holds events the database refused in an earlier attempt, with its
/// reason; `chain`, what the steps decided and added.
pub fn encode(
    plan: &TablePlan,
    batch: &Batch,
    start: usize,
    ctx: EncodeContext<'_>,
    refused: &HashMap<usize, String>,
    chain: Option<ChainView<'_>>,
    out: &mut Encoded,
) {
    out.clear();
    let mut slots = Vec::with_capacity(plan.decoder.names().len());
    let mut scratch = String::new();
    let mut sql = String::new();
    // Columns whose value is the batch's, not the event's (topic, partition,
    // ingestion time, chain): converted and encoded once per batch.
    let constant: Vec<Option<Result<Vec<u8>, CellError>>> = plan
        .columns
        .iter()
        .map(|col| {
            let mut text = String::new();
            match col.source {
                ColumnSource::Topic => json_string(&mut text, ctx.topic),
                ColumnSource::Partition => {
                    crate::event::convert::push_int(&mut text, batch.partition.into())
                }
                ColumnSource::IngestedAt => {
                    crate::event::convert::push_int(&mut text, ctx.ingested_ms)
                }
                ColumnSource::Chain => json_string(&mut text, chain.map_or("", |c| c.version)),
                _ => return None,
            }
            Some(
                convert(Some(&text), &col.ty, col.nullable).map(|cell| match ctx.format {
                    RowFormat::Tsv => {
                        let mut bytes = Vec::new();
                        cell.push_tsv(&mut bytes);
                        bytes
                    }
                    RowFormat::Sql => {
                        let mut literal = String::new();
                        cell.push_sql(&mut literal);
                        literal.into_bytes()
                    }
                }),
            )
        })
        .collect();
    let mut oversized = batch.oversized.iter().peekable();
    for i in start..batch.len() {
        while oversized.next_if(|o| o.index < i).is_some() {}
        let dead =
            |stage, reason| DeadLetter::from_batch(batch, i, stage, reason, ctx.dead_letter_cap);
        if let Some(o) = oversized.next_if(|o| o.index == i) {
            out.dead.push(dead(
                Stage::Source,
                format!(
                    "oversized record: {} bytes, over max_record_bytes = {}",
                    o.size, ctx.max_record_bytes
                ),
            ));
            continue;
        }
        if let Some(reason) = refused.get(&i) {
            out.dead.push(dead(
                Stage::Sink,
                format!("database refused the row: {reason}"),
            ));
            continue;
        }
        if let Err(e) = plan.decoder.decode(batch.payload(i), &mut slots) {
            out.dead.push(dead(Stage::Decode, e.to_string()));
            continue;
        }
        let additions = match chain.map(|c| (c, &c.output.outcomes[i])) {
            Some((_, Outcome::Filtered { .. })) => {
                out.filtered += 1;
                continue;
            }
            Some((c, Outcome::Dead { step, reason })) => {
                out.dead
                    .push(dead(Stage::Step(c.stages[*step].clone()), reason.clone()));
                continue;
            }
            Some((c, Outcome::Pass)) => Some(&c.output.additions[i]),
            None => None,
        };
        let row_start = out.rows.len();
        match ctx.format {
            RowFormat::Tsv => {}
            RowFormat::Sql => out.rows.push(b'('),
        }
        let mut failed = None;
        for (n, col) in plan.columns.iter().enumerate() {
            if n > 0 {
                match ctx.format {
                    RowFormat::Tsv => out.rows.push(b'\t'),
                    RowFormat::Sql => out.rows.extend_from_slice(b", "),
                }
            }
            match &constant[n] {
                Some(Ok(bytes)) => {
                    out.rows.extend_from_slice(bytes);
                    continue;
                }
                Some(Err(e)) => {
                    failed = Some((col, e.clone()));
                    break;
                }
                None => {}
            }
            scratch.clear();
            let raw: Option<&str> = match col.source {
                ColumnSource::Field(slot) => {
                    match additions.and_then(|a| a.get(&plan.decoder.names()[slot])) {
                        Some(v) => {
                            let _ = write!(scratch, "{v}");
                            Some(scratch.as_str())
                        }
                        None => slots[slot],
                    }
                }
                ColumnSource::Offset => {
                    crate::event::convert::push_int(&mut scratch, batch.offsets[i]);
                    Some(&scratch)
                }
                ColumnSource::Timestamp => (batch.timestamps[i] >= 0).then(|| {
                    crate::event::convert::push_int(&mut scratch, batch.timestamps[i]);
                    scratch.as_str()
                }),
                ColumnSource::Key => batch.key(i).map(|k| {
                    json_string(&mut scratch, &String::from_utf8_lossy(k));
                    scratch.as_str()
                }),
                ColumnSource::Topic
                | ColumnSource::Partition
                | ColumnSource::IngestedAt
                | ColumnSource::Chain => unreachable!("converted once per batch above"),
            };
            let cell = match convert(raw, &col.ty, col.nullable) {
                Ok(c) => c,
                Err(e) => {
                    failed = Some((col, e));
                    break;
                }
            };
            match ctx.format {
                RowFormat::Tsv => cell.push_tsv(&mut out.rows),
                RowFormat::Sql => {
                    sql.clear();
                    cell.push_sql(&mut sql);
                    out.rows.extend_from_slice(sql.as_bytes());
                }
            }
        }
        if let Some((col, e)) = failed {
            out.rows.truncate(row_start);
            out.dead.push(dead(Stage::Sink, column_reason(col, &e)));
            continue;
        }
        match ctx.format {
            RowFormat::Tsv => out.rows.push(b'\n'),
            RowFormat::Sql => out.rows.push(b')'),
        }
        out.row_ends.push(out.rows.len());
        out.row_events.push(i);
    }
}

fn column_reason(col: &PlannedColumn, e: &CellError) -> String {
    if col.from == col.name {
        format!("column `{}` ({}): {e}", col.name, col.column_type)
    } else {
        format!(
            "column `{}` ({}) from `{}`: {e}",
            col.name, col.column_type, col.from
        )
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// The outcome of one transaction attempt.
enum Attempt {
    Committed,
    /// The compare-and-set matched no row.
    Mismatch,
    /// The database warned or refused; the rows at fault must be found.
    NeedsDryRun,
}

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

/// Writes batches of the partitions routed to it, one transaction per batch.
pub struct Writer {
    pub pool: Pool,
    pub plan: Arc<TablePlan>,
    pub offsets: OffsetTable,
    pub pipeline: String,
    pub method: WriteMethod,
    pub max_record_bytes: usize,
    pub dead_letter_cap: usize,
    pub claims: Claims,
    pub notes: std::sync::mpsc::Sender<Note>,
    chain: Option<Chain>,
    stages: Vec<String>,
    /// The chain's version label, for `@chain` columns and dead letters.
    version: String,
    conn: Option<Conn>,
    enc: Encoded,
    /// When each step's dead letters were last logged.
    last_step_log: Vec<Option<std::time::Instant>>,
    /// When a canary difference was last logged.
    last_canary_log: Option<std::time::Instant>,
    /// Where a reloaded chain waits; taken at a batch boundary.
    pub reload: Option<Slot>,
    /// Set when the process is told to stop.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// When this writer first saw the stop while a batch was being retried.
    stopping_since: Option<std::time::Instant>,
    /// A batch was left uncommitted at a stop: nothing after it may commit.
    abandoned: bool,
}

/// After a stop signal, how long a batch that cannot be committed (the
/// database away, a plugin paused) keeps being retried before it is left
/// uncommitted, to be read again at the next start. With the backoff's 5 s
/// cap, a stopped process exits at most about 15 s after the signal plus the
/// call or statement in progress.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Adds what the chain's steps did since `before` to the metrics.
fn record_steps(pipeline: &str, chain: &Chain, before: &[crate::chain::StepStats]) {
    let m = crate::ops::metrics::get();
    for ((name, now), was) in chain.names().iter().zip(&chain.stats).zip(before) {
        let count = |outcome: &str, n: u64| {
            if n > 0 {
                m.step_events
                    .get_or_create(&crate::ops::metrics::OutcomeLabels {
                        pipeline: pipeline.to_owned(),
                        step: name.clone(),
                        outcome: outcome.to_owned(),
                    })
                    .inc_by(n);
            }
        };
        count("in", now.events_in - was.events_in);
        count("kept", now.kept - was.kept);
        count("dropped", now.dropped - was.dropped);
        count("dead_letter", now.dead_letters - was.dead_letters);
        let labels = crate::ops::metrics::StepLabels {
            pipeline: pipeline.to_owned(),
            step: name.clone(),
        };
        if now.undeclared_dropped > was.undeclared_dropped {
            m.undeclared_dropped
                .get_or_create(&labels)
                .inc_by(now.undeclared_dropped - was.undeclared_dropped);
        }
        if now.settled > was.settled {
            m.settled
                .get_or_create(&labels)
                .inc_by(now.settled - was.settled);
        }
        for (result, n) in [
            ("same", now.canary_same - was.canary_same),
            ("different", now.canary_different - was.canary_different),
        ] {
            if n > 0 {
                m.canary_events
                    .get_or_create(&crate::ops::metrics::CanaryLabels {
                        pipeline: pipeline.to_owned(),
                        step: name.clone(),
                        result: result.to_owned(),
                    })
                    .inc_by(n);
            }
        }
        let peak = m
            .memory_peak
            .get_or_create(&crate::ops::metrics::StepLabels {
                pipeline: pipeline.to_owned(),
                step: name.clone(),
            });
        if now.memory_peak as i64 > peak.get() {
            peak.set(now.memory_peak as i64);
        }
        if now.events_in > was.events_in {
            m.step_seconds
                .get_or_create(&crate::ops::metrics::StepLabels {
                    pipeline: pipeline.to_owned(),
                    step: name.clone(),
                })
                .observe((now.time - was.time).as_secs_f64());
        }
        for (kind, n) in &now.traps {
            let n = n - was.traps.get(kind).copied().unwrap_or(0);
            if n > 0 {
                m.traps
                    .get_or_create(&crate::ops::metrics::TrapLabels {
                        pipeline: pipeline.to_owned(),
                        step: name.clone(),
                        kind: (*kind).to_owned(),
                    })
                    .inc_by(n);
            }
        }
    }
}

/// Doubling waits between retries, capped.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(Duration::from_millis(100))
    }
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

impl Writer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pool: Pool,
        plan: Arc<TablePlan>,
        offsets: OffsetTable,
        pipeline: String,
        method: WriteMethod,
        max_record_bytes: usize,
        dead_letter_cap: usize,
        claims: Claims,
        notes: std::sync::mpsc::Sender<Note>,
        chain: Option<Chain>,
    ) -> Writer {
        let stages = chain
            .as_ref()
            .map(|c| (0..c.names().len()).map(|s| c.stage(s)).collect())
            .unwrap_or_default();
        let version = chain.as_ref().map(Chain::version).unwrap_or_default();
        Writer {
            chain,
            stages,
            version,
            pool,
            plan,
            offsets,
            pipeline,
            method,
            max_record_bytes,
            dead_letter_cap,
            claims,
            notes,
            conn: None,
            enc: Encoded::default(),
            last_step_log: Vec::new(),
            last_canary_log: None,
            reload: None,
            stop: None,
            stopping_since: None,
            abandoned: false,
        }
    }

    /// Writes every batch received until the channel closes.
    pub async fn run(mut self, mut batches: tokio::sync::mpsc::Receiver<Batch>) {
        while let Some(batch) = batches.recv().await {
            if !self.abandoned {
                self.write(&batch).await;
            }
            let _ = self.notes.send(Note::Spent(batch));
        }
        if let Some(conn) = self.conn.take() {
            let _ = conn.disconnect().await;
        }
    }

    async fn conn(&mut self) -> Result<&mut Conn, mysql_async::Error> {
        if self.conn.is_none() {
            self.conn = Some(connect(&self.pool, Duration::from_secs(10)).await?);
        }
        Ok(self.conn.as_mut().expect("just set"))
    }

    /// Commits one batch, retrying until it lands, is found to have landed, or
    /// its partition turns out to belong to someone else.
    pub async fn write(&mut self, batch: &Batch) {
        // A batch boundary: a reloaded chain takes over from here.
        let fresh = self
            .reload
            .as_ref()
            .and_then(|slot| slot.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(swap) = fresh {
            if let Some(plan) = swap.plan {
                self.plan = plan;
            }
            self.stages = swap
                .chain
                .as_ref()
                .map(|c| (0..c.names().len()).map(|s| c.stage(s)).collect())
                .unwrap_or_default();
            self.version = swap.chain.as_ref().map(Chain::version).unwrap_or_default();
            self.chain = swap.chain;
        }
        let (p, generation) = (batch.partition, batch.generation);
        let Some(claim) = self.claims.current(p, generation) else {
            debug!(partition = p, "dropping a batch read under an older claim");
            return;
        };
        let start = batch.offsets.partition_point(|&o| o < claim.expected);
        let Some(end) = batch.end_offset().filter(|_| start < batch.len()) else {
            return;
        };
        let expected = claim.expected;
        let mut backoff = Backoff::new();
        let chained = match self.run_chain(batch, start, &mut backoff).await {
            Some(out) => out,
            None => return,
        };
        let stages = self.stages.clone();
        let version = self.version.clone();
        let chain_view = chained.as_ref().map(|output| ChainView {
            output,
            stages: &stages,
            version: &version,
        });
        let mut refused: HashMap<usize, String> = HashMap::new();
        let mut in_doubt = false;
        let mut use_insert = self.method == WriteMethod::Insert;
        let mut tolerate_warnings = false;
        let mut retried = false;
        loop {
            if self.claims.current(p, generation).is_none() {
                debug!(
                    partition = p,
                    "partition revoked while its batch was retried"
                );
                return;
            }
            if retried && self.give_up(batch) {
                return;
            }
            retried = true;
            if in_doubt {
                let offsets = self.offsets.clone();
                let read = match self.conn().await {
                    Ok(conn) => offsets.read(conn, p).await,
                    Err(e) => Err(e),
                };
                match read {
                    Ok(Some(stored)) if stored == end => {
                        info!(partition = p, next = end, "an in-doubt commit had landed");
                        // The totals were committed with it; report them as usual.
                        let totals = self.totals(batch, start, &refused, chain_view);
                        self.committed(batch, generation, end, totals);
                        return;
                    }
                    Ok(Some(stored)) if stored == expected => in_doubt = false,
                    Ok(stored) => {
                        warn!(
                            pipeline = %self.pipeline, partition = p, expected, stored = ?stored,
                            "fenced: another owner moved this partition's offset; dropping the batch"
                        );
                        self.claims.fence(p, generation, stored.unwrap_or(expected));
                        return;
                    }
                    Err(e) => {
                        self.retry_later(&mut backoff, p, &e).await;
                        continue;
                    }
                }
            }
            let format = if use_insert {
                RowFormat::Sql
            } else {
                RowFormat::Tsv
            };
            let encode_started = std::time::Instant::now();
            let mut enc = std::mem::take(&mut self.enc);
            let ctx = self.context(format);
            // Milliseconds of CPU: off the runtime's worker, so that the other
            // writers' connections keep streaming their rows meanwhile.
            tokio::task::block_in_place(|| {
                encode(
                    &self.plan, batch, start, ctx, &refused, chain_view, &mut enc,
                )
            });
            let encoded_in = encode_started.elapsed();
            let totals = Totals {
                rows: enc.row_ends.len() as u64,
                filtered: enc.filtered,
                dead_letters: enc.dead.len() as u64,
            };
            let result = self
                .attempt(&enc, p, expected, end, totals, format, tolerate_warnings)
                .await;
            match result {
                Ok(Attempt::Committed) => {
                    debug!(
                        partition = p,
                        rows = totals.rows,
                        dead_letters = totals.dead_letters,
                        encode_us = encoded_in.as_micros() as u64,
                        write_us = (encode_started.elapsed() - encoded_in).as_micros() as u64,
                        "batch committed"
                    );
                    self.enc = enc;
                    crate::ops::metrics::get()
                        .write_seconds
                        .get_or_create(&crate::ops::metrics::pipeline(&self.pipeline))
                        .observe(encode_started.elapsed().as_secs_f64());
                    self.committed(batch, generation, end, totals);
                    return;
                }
                Ok(Attempt::Mismatch) => {
                    // Our transaction was rolled back: whatever the row holds now
                    // was written by another owner.
                    let offsets = self.offsets.clone();
                    let stored = match self.conn().await {
                        Ok(conn) => offsets.read(conn, p).await.ok().flatten(),
                        Err(_) => None,
                    };
                    if stored == Some(expected) {
                        continue;
                    }
                    warn!(
                        pipeline = %self.pipeline, partition = p, expected, stored = ?stored,
                        "fenced: another owner moved this partition's offset; dropping the batch"
                    );
                    self.claims.fence(p, generation, stored.unwrap_or(expected));
                    self.enc = enc;
                    return;
                }
                Ok(Attempt::NeedsDryRun) => {
                    match self.dry_run(batch, start, &refused, chain_view).await {
                        Ok(bad) if bad.is_empty() => {
                            warn!(
                                pipeline = %self.pipeline, partition = p,
                                "the database warned about a batch but no row is at fault; writing it with INSERT"
                            );
                            use_insert = true;
                            tolerate_warnings = true;
                        }
                        Ok(bad) => refused.extend(bad),
                        Err(e) => {
                            self.retry_later(&mut backoff, p, &e).await;
                            in_doubt = true;
                        }
                    }
                }
                Err(e) if classify(&e) == ErrorClass::BadRow => {
                    use_insert = true;
                    match self.dry_run(batch, start, &refused, chain_view).await {
                        Ok(bad) if bad.is_empty() => {
                            // No row is at fault: the statement that failed was
                            // Weir's own (a dead letter or the offsets row).
                            error!(
                                pipeline = %self.pipeline, partition = p, table = %self.plan.table,
                                "the database refused Weir's own bookkeeping for a batch (no row is at fault); retrying with backoff: {e}"
                            );
                            self.retry_later(&mut backoff, p, &e).await;
                            in_doubt = true;
                        }
                        Ok(bad) => refused.extend(bad),
                        Err(e) => {
                            self.retry_later(&mut backoff, p, &e).await;
                            in_doubt = true;
                        }
                    }
                }
                Err(e) => {
                    self.retry_later(&mut backoff, p, &e).await;
                    in_doubt = true;
                }
            }
            self.enc = enc;
        }
    }

    fn totals(
        &mut self,
        batch: &Batch,
        start: usize,
        refused: &HashMap<usize, String>,
        chain: Option<ChainView<'_>>,
    ) -> Totals {
        let mut enc = std::mem::take(&mut self.enc);
        let ctx = self.context(RowFormat::Tsv);
        encode(&self.plan, batch, start, ctx, refused, chain, &mut enc);
        self.enc = enc;
        Totals {
            rows: self.enc.row_ends.len() as u64,
            filtered: self.enc.filtered,
            dead_letters: self.enc.dead.len() as u64,
        }
    }

    /// Runs the chain over the batch (if there is one), retrying with backoff while
    /// a plugin asks to retry later or an instance cannot be rebuilt. `None`: the
    /// partition was revoked meanwhile.
    async fn run_chain(
        &mut self,
        batch: &Batch,
        start: usize,
        backoff: &mut Backoff,
    ) -> Option<Option<ChainOutput>> {
        if self.chain.is_none() {
            return Some(None);
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
        let mut retried = false;
        loop {
            self.claims.current(batch.partition, batch.generation)?;
            if retried && self.give_up(batch) {
                return None;
            }
            retried = true;
            let chain = self.chain.as_mut()?;
            let topic = self.offsets.topic().to_owned();
            let before = chain.stats.clone();
            let result = tokio::task::block_in_place(|| chain.run(&topic, batch, &skip));
            record_steps(&self.pipeline, chain, &before);
            match result {
                Ok(out) => {
                    self.log_step_dead_letters(batch, &out);
                    self.log_canary(batch, &out);
                    return Some(Some(out));
                }
                Err(ChainError::RetryLater { plugin, reason }) => {
                    warn!(pipeline = %self.pipeline, partition = batch.partition, plugin = %plugin,
                          "plugin asked to retry the batch later: {reason}");
                }
                Err(e @ ChainError::Paused { .. }) => {
                    error!(pipeline = %self.pipeline, partition = batch.partition,
                           "partition paused until the plugin is fixed: {e}");
                }
                Err(ChainError::Plugin(e)) => {
                    error!(pipeline = %self.pipeline, partition = batch.partition,
                           "cannot rebuild a plugin instance, will retry: {e}");
                }
            }
            backoff.wait().await;
        }
    }

    /// One warning per step and batch that dead-lettered events, at most one a
    /// second per step and writer: the pipeline, the plugin with its version
    /// and hash, and the first event's partition, offset and reason.
    fn log_step_dead_letters(&mut self, batch: &Batch, out: &ChainOutput) {
        let Some(chain) = self.chain.as_ref() else {
            return;
        };
        let mut first: Vec<Option<(usize, &str, usize)>> = vec![None; chain.names().len()];
        for (i, o) in out.outcomes.iter().enumerate() {
            if let Outcome::Dead { step, reason } = o {
                let entry = &mut first[*step];
                match entry {
                    Some((_, _, n)) => *n += 1,
                    None => *entry = Some((i, reason.as_str(), 1)),
                }
            }
        }
        for (step, found) in first.into_iter().enumerate() {
            let Some((i, reason, n)) = found else {
                continue;
            };
            let now = std::time::Instant::now();
            if self.last_step_log.len() <= step {
                self.last_step_log.resize(step + 1, None);
            }
            if self.last_step_log[step]
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
            {
                continue;
            }
            self.last_step_log[step] = Some(now);
            warn!(
                pipeline = %self.pipeline,
                plugin = %chain.plugin_label(step),
                partition = batch.partition,
                offset = batch.offsets[i],
                dead_letters = n,
                "events dead-lettered by a step; the first: {reason}"
            );
        }
    }

    /// A sample of canary differences: at most one line every ten seconds per writer.
    fn log_canary(&mut self, batch: &Batch, out: &ChainOutput) {
        let (Some(chain), Some(d)) = (self.chain.as_ref(), out.canary_diffs.first()) else {
            return;
        };
        let now = std::time::Instant::now();
        if self
            .last_canary_log
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(10))
        {
            return;
        }
        self.last_canary_log = Some(now);
        warn!(
            pipeline = %self.pipeline,
            step = %chain.names()[d.step],
            candidate = %chain.canary_label(d.step).unwrap_or_default(),
            partition = batch.partition,
            offset = batch.offsets[d.event],
            "canary differs from the live step: live {}; candidate {} (nothing of the candidate's is written)",
            d.live,
            d.candidate
        );
    }

    /// Before a retry: whether to leave this batch uncommitted, the process
    /// having been told to stop and this writer retrying for more than
    /// [`STOP_GRACE`] since. Nothing of the batch was committed, so it is read
    /// again at the next start; this writer commits nothing more.
    fn give_up(&mut self, batch: &Batch) -> bool {
        if !self
            .stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
        {
            return false;
        }
        let since = *self
            .stopping_since
            .get_or_insert_with(std::time::Instant::now);
        if since.elapsed() < STOP_GRACE {
            return false;
        }
        warn!(
            pipeline = %self.pipeline,
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
        match classify(e) {
            ErrorClass::Other => error!(
                pipeline = %self.pipeline, partition, table = %self.plan.table,
                "writing a batch failed, will retry: {e}"
            ),
            _ => warn!(pipeline = %self.pipeline, partition, "database unavailable, retrying: {e}"),
        }
        self.conn = None;
        crate::ops::metrics::get()
            .retries
            .get_or_create(&crate::ops::metrics::pipeline(&self.pipeline))
            .inc();
        backoff.wait().await;
    }

    fn context(&self, format: RowFormat) -> EncodeContext<'_> {
        EncodeContext {
            topic: self.offsets.topic(),
            ingested_ms: chrono::Utc::now().timestamp_millis(),
            max_record_bytes: self.max_record_bytes,
            dead_letter_cap: self.dead_letter_cap,
            format,
        }
    }

    /// After a commit (`self.enc` holds what was written): the claim moves on,
    /// the metrics count it, the source hears of it.
    fn committed(&self, batch: &Batch, generation: u64, next: i64, totals: Totals) {
        let partition = batch.partition;
        self.claims.advance(partition, generation, next);
        let m = crate::ops::metrics::get();
        let labels = crate::ops::metrics::pipeline(&self.pipeline);
        m.rows.get_or_create(&labels).inc_by(totals.rows);
        m.filtered.get_or_create(&labels).inc_by(totals.filtered);
        m.batch_events
            .get_or_create(&labels)
            .observe(batch.len() as f64);
        let mut stages: Vec<(&str, u64)> = Vec::new();
        for d in &self.enc.dead {
            match stages.iter_mut().find(|(s, _)| *s == d.stage.as_str()) {
                Some((_, n)) => *n += 1,
                None => stages.push((d.stage.as_str(), 1)),
            }
        }
        for (stage, n) in stages {
            m.dead_letters
                .get_or_create(&crate::ops::metrics::StageLabels {
                    pipeline: self.pipeline.clone(),
                    stage: stage.to_owned(),
                })
                .inc_by(n);
        }
        let now = chrono::Utc::now().timestamp_millis();
        let freshness = m.freshness.get_or_create(&labels);
        for &i in &self.enc.row_events {
            let ts = batch.timestamps[i];
            if ts >= 0 {
                freshness.observe((now - ts).max(0) as f64 / 1000.0);
            }
        }
        m.health.progressed(&self.pipeline);
        let _ = self.notes.send(Note::Committed {
            partition,
            generation,
            next,
            totals,
        });
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &mut self,
        enc: &Encoded,
        partition: i32,
        expected: i64,
        end: i64,
        totals: Totals,
        format: RowFormat,
        tolerate_warnings: bool,
    ) -> Result<Attempt, mysql_async::Error> {
        let plan = self.plan.clone();
        let offsets = self.offsets.clone();
        let dl = insert_statements(
            &enc.dead,
            offsets.group(),
            offsets.topic(),
            &self.pipeline,
            partition,
            (!self.version.is_empty()).then_some(self.version.as_str()),
            4 << 20,
        );
        let conn = self.conn().await?;
        conn.query_drop("START TRANSACTION").await?;
        let outcome = async {
            if !enc.row_ends.is_empty() {
                let clean = match format {
                    RowFormat::Tsv => load_rows(conn, &plan, &enc.rows).await?,
                    RowFormat::Sql => insert_rows(conn, &plan, enc, 4 << 20).await?,
                } == enc.row_ends.len() as u64;
                if !clean && !tolerate_warnings {
                    return Ok(Attempt::NeedsDryRun);
                }
            }
            for stmt in dl {
                conn.query_drop(stmt).await?;
            }
            if !offsets
                .advance(conn, partition, expected, end, totals)
                .await?
            {
                return Ok(Attempt::Mismatch);
            }
            conn.query_drop("COMMIT").await?;
            Ok(Attempt::Committed)
        }
        .await;
        if !matches!(outcome, Ok(Attempt::Committed)) {
            if let Some(conn) = self.conn.as_mut() {
                if conn.query_drop("ROLLBACK").await.is_err() {
                    self.conn = None;
                }
            }
        }
        outcome
    }

    /// Inserts the rows one by one in a transaction that is rolled back, and
    /// returns the events the database refuses or warns about, with its words.
    async fn dry_run(
        &mut self,
        batch: &Batch,
        start: usize,
        refused: &HashMap<usize, String>,
        chain: Option<ChainView<'_>>,
    ) -> Result<HashMap<usize, String>, mysql_async::Error> {
        let mut enc = Encoded::default();
        let ctx = self.context(RowFormat::Sql);
        encode(&self.plan, batch, start, ctx, refused, chain, &mut enc);
        let head = self.plan.insert_head().to_owned();
        let conn = self.conn().await?;
        let mut bad = HashMap::new();
        conn.query_drop("START TRANSACTION").await?;
        for r in 0..enc.row_ends.len() {
            let mut sql = head.clone();
            sql.push_str(&String::from_utf8_lossy(enc.row(r)));
            match conn.query_drop(sql).await {
                Ok(()) if conn.get_warnings() == 0 => {}
                Ok(()) => {
                    let warnings: Vec<(String, u32, String)> = conn.query("SHOW WARNINGS").await?;
                    let text: Vec<String> = warnings.into_iter().map(|w| w.2).collect();
                    bad.insert(enc.row_events[r], text.join("; "));
                }
                Err(mysql_async::Error::Server(e))
                    if classify(&mysql_async::Error::Server(e.clone())) == ErrorClass::BadRow =>
                {
                    bad.insert(enc.row_events[r], e.message.clone());
                }
                Err(e) => {
                    let _ = conn.query_drop("ROLLBACK").await;
                    return Err(e);
                }
            }
        }
        conn.query_drop("ROLLBACK").await?;
        Ok(bad)
    }
}

/// Streams TSV rows into the plan's table with `LOAD DATA LOCAL INFILE`. Returns
/// the rows loaded, or 0 if the server warned about anything.
pub async fn load_rows(
    conn: &mut Conn,
    plan: &TablePlan,
    rows: &[u8],
) -> Result<u64, mysql_async::Error> {
    const CHUNK: usize = 1 << 20;
    let chunks: Vec<std::io::Result<Bytes>> = rows
        .chunks(CHUNK)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    conn.set_infile_handler(async move { Ok(futures_util::stream::iter(chunks).boxed()) });
    conn.query_drop(plan.load_sql()).await?;
    if conn.get_warnings() > 0 {
        return Ok(0);
    }
    Ok(conn.affected_rows())
}

/// Writes SQL-format rows with multi-row `INSERT`s under `max_statement` bytes.
/// Returns the rows inserted, or 0 if the server warned about anything.
pub async fn insert_rows(
    conn: &mut Conn,
    plan: &TablePlan,
    enc: &Encoded,
    max_statement: usize,
) -> Result<u64, mysql_async::Error> {
    let head = plan.insert_head();
    let mut sql = String::with_capacity(max_statement.min(enc.rows.len() + head.len() + 16));
    let mut total = 0;
    let mut warned = false;
    let mut r = 0;
    while r < enc.row_ends.len() {
        sql.clear();
        sql.push_str(head);
        let first = r;
        while r < enc.row_ends.len()
            && (r == first || sql.len() + enc.row(r).len() + 2 <= max_statement)
        {
            if r > first {
                sql.push_str(", ");
            }
            sql.push_str(&String::from_utf8_lossy(enc.row(r)));
            r += 1;
        }
        conn.query_drop(sql.as_str()).await?;
        warned |= conn.get_warnings() > 0;
        total += conn.affected_rows();
    }
    Ok(if warned { 0 } else { total })
}
