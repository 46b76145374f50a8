//! A batch turned into rows (`LOAD DATA` TSV or `INSERT` tuples), filter drops
//! and dead letters, in buffers reused from batch to batch.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::plan::*;
use crate::chain::{ChainOutput, Outcome};
use crate::event::batch::Batch;
use crate::event::convert::{convert, CellError};
use crate::sink::dead_letter::{DeadLetter, Stage};

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
