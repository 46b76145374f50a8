//! `weir dead-letters`: look at a pipeline's dead letters, and replay them
//! through the current chain into its table once the cause is fixed.
//!
//! Replay is exactly once. Per partition and chunk, one transaction writes the
//! rows, marks each replayed dead letter (`replayed_at`, `replay_result`) with a
//! guard that it was not marked before, and moves the partition's totals in
//! `weir_offsets` (rows or filtered up, dead letters down), so that rows +
//! filtered + dead letters still add up to what was consumed. A dead letter
//! marked by someone else meanwhile rolls the chunk back. An event the chain or
//! the table refuses again stays a dead letter, with the new reason and one
//! more attempt counted; replaying again retries only those.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context as _};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};

use crate::chain::{Chain, ChainError, Outcome};
use crate::event::batch::Batch;
use crate::pipeline::Prepared;
use crate::sink::{encode, insert_rows, ChainView, EncodeContext, Encoded, RowFormat};
use crate::store::sql::push_str_literal;

/// Which dead letters to take.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only dead letters written at or after this time (UTC).
    pub since: Option<chrono::NaiveDateTime>,
    /// Only dead letters whose reason contains this text.
    pub reason: Option<String>,
}

impl Selection {
    fn sql(&self, group: &str, topic: &str) -> String {
        let mut w = String::from("consumer_group = ");
        push_str_literal(&mut w, group);
        w.push_str(" AND topic = ");
        push_str_literal(&mut w, topic);
        if let Some(t) = self.since {
            w.push_str(" AND created_at >= ");
            push_str_literal(&mut w, &t.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
        }
        if let Some(r) = &self.reason {
            let escaped = r
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            w.push_str(" AND reason LIKE ");
            push_str_literal(&mut w, &format!("%{escaped}%"));
        }
        w
    }
}

/// `--since`: `YYYY-MM-DD HH:MM:SS` (UTC), RFC 3339, or an age such as `30m`,
/// `2h`, `1d` (that long ago).
pub fn parse_since(text: &str) -> Result<chrono::NaiveDateTime, String> {
    let t = text.trim();
    if let Some((n, unit)) = t
        .char_indices()
        .last()
        .map(|(i, c)| (&t[..i], c))
        .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        let n: i64 = n.parse().map_err(|e| format!("`{text}`: {e}"))?;
        let secs = match unit {
            's' => n,
            'm' => n * 60,
            'h' => n * 3600,
            'd' => n * 86_400,
            _ => return Err(format!("`{text}`: an age ends in s, m, h or d")),
        };
        return Ok((chrono::Utc::now() - chrono::Duration::seconds(secs)).naive_utc());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(t.naive_utc());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(t, format) {
            return Ok(t);
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(t, format) {
            return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists"));
        }
    }
    Err(format!(
        "`{text}` is not a time: use `YYYY-MM-DD HH:MM:SS` (UTC), RFC 3339, or an age such as 30m, 2h, 1d"
    ))
}

/// One line of `weir dead-letters show`: dead letters of one stage whose
/// reasons differ only in numbers and quoted text.
#[derive(Debug)]
pub struct Summary {
    pub stage: String,
    /// The reason with numbers as `N` and quoted text as `"…"`.
    pub reason: String,
    pub count: i64,
    pub replayed: i64,
    /// When the latest was written (UTC).
    pub last: String,
}

/// A reason with its particulars (numbers, quoted values) blanked, so that
/// reasons of one kind group together.
pub fn reason_kind(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut chars = reason.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push_str("\"…\"");
                let mut escaped = false;
                for c in chars.by_ref() {
                    if c == '"' && !escaped {
                        break;
                    }
                    escaped = c == '\\' && !escaped;
                }
            }
            '0'..='9' => {
                out.push('N');
                while chars.next_if(|c| c.is_ascii_digit() || *c == '.').is_some() {}
            }
            c => out.push(c),
        }
    }
    out
}

/// Dead letters by stage and kind of reason, most frequent first.
pub async fn show(
    conn: &mut Conn,
    group: &str,
    topic: &str,
    selection: &Selection,
) -> Result<Vec<Summary>, mysql_async::Error> {
    let rows: Vec<(String, String, i64, Option<i64>, String)> = conn
        .query(format!(
            "SELECT stage, reason, COUNT(*), SUM(CASE WHEN replayed_at IS NULL THEN 0 ELSE 1 END), \
             CAST(MAX(created_at) AS CHAR) FROM weir_dead_letters WHERE {} GROUP BY stage, reason",
            selection.sql(group, topic)
        ))
        .await?;
    let mut out: Vec<Summary> = Vec::new();
    for (stage, reason, count, replayed, last) in rows {
        let reason = reason_kind(&reason);
        match out
            .iter_mut()
            .find(|s| s.stage == stage && s.reason == reason)
        {
            Some(s) => {
                s.count += count;
                s.replayed += replayed.unwrap_or(0);
                if last > s.last {
                    s.last = last;
                }
            }
            None => out.push(Summary {
                stage,
                reason,
                count,
                replayed: replayed.unwrap_or(0),
                last,
            }),
        }
    }
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.stage.cmp(&b.stage)));
    Ok(out)
}

/// What a replay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Dead letters selected (not replayed before).
    pub selected: u64,
    /// Now rows of the table.
    pub rows: u64,
    /// Dropped by a filter this time.
    pub filtered: u64,
    /// Refused again: still dead letters, with their new reason.
    pub still_dead: u64,
    /// Not replayable: only a prefix of the payload was kept.
    pub truncated: u64,
}

/// A stored dead letter: partition, offset, key, timestamp, payload.
type Stored = (i32, i64, Option<Vec<u8>>, Option<i64>, Vec<u8>);

/// Dead letters replayed per transaction.
const CHUNK: usize = 500;

/// Replays the selected dead letters of `p` through its current chain into its
/// table (see the module's description). With `dry_run`, everything is done
/// but each transaction is rolled back.
pub async fn replay(
    pool: &Pool,
    p: &Prepared,
    selection: &Selection,
    dry_run: bool,
) -> anyhow::Result<Replayed> {
    let c = &p.config;
    let plan = p.table_plan()?;
    let mut conn = crate::store::db::connect(pool, Duration::from_secs(15))
        .await
        .context("connecting to the database")?;
    let mut chain = if p.steps.is_empty() {
        None
    } else {
        Some(tokio::task::block_in_place(|| Chain::new(&p.steps))?)
    };
    let version = chain.as_ref().map(Chain::version).unwrap_or_default();
    let stages: Vec<String> = chain
        .as_ref()
        .map(|ch| (0..ch.names().len()).map(|s| ch.stage(s)).collect())
        .unwrap_or_default();
    let filter = selection.sql(c.group(), &c.topic);
    let mut out = Replayed::default();
    let truncated: Option<i64> = conn
        .query_first(format!(
            "SELECT COUNT(*) FROM weir_dead_letters WHERE {filter} AND replayed_at IS NULL \
             AND payload_size > LENGTH(payload)"
        ))
        .await?;
    out.truncated = truncated.unwrap_or(0) as u64;
    // Keyset pagination over (partition, offset).
    let mut after = (i32::MIN, i64::MIN);
    let mut enc = Encoded::default();
    loop {
        let rows: Vec<Stored> = conn
            .query(format!(
                "SELECT kafka_partition, kafka_offset, kafka_key, kafka_timestamp_ms, payload \
                 FROM weir_dead_letters WHERE {filter} AND replayed_at IS NULL \
                 AND payload_size = LENGTH(payload) \
                 AND (kafka_partition > {p0} OR (kafka_partition = {p0} AND kafka_offset > {o0})) \
                 ORDER BY kafka_partition, kafka_offset LIMIT {CHUNK}",
                p0 = after.0,
                o0 = after.1
            ))
            .await?;
        let Some(last) = rows.last() else { break };
        after = (last.0, last.1);
        let mut by_partition: Vec<Batch> = Vec::new();
        for (partition, offset, key, ts, payload) in rows {
            if by_partition.last().is_none_or(|b| b.partition != partition) {
                by_partition.push(Batch {
                    partition,
                    ..Batch::default()
                });
            }
            let batch = by_partition.last_mut().expect("just pushed");
            batch.push(
                offset,
                ts.unwrap_or(-1),
                key.as_deref(),
                &payload,
                c.max_record_bytes,
                c.dead_letter_payload_cap,
            );
        }
        for batch in &by_partition {
            out.selected += batch.len() as u64;
            let chained = match chain.as_mut() {
                Some(ch) => {
                    let mut skip = vec![false; batch.len()];
                    let mut slots = Vec::new();
                    for (i, s) in skip.iter_mut().enumerate() {
                        *s = batch.oversized.iter().any(|o| o.index == i)
                            || plan.decoder.decode(batch.payload(i), &mut slots).is_err();
                    }
                    match tokio::task::block_in_place(|| ch.run(&c.topic, batch, &skip)) {
                        Ok(o) => Some(o),
                        Err(e @ (ChainError::RetryLater { .. } | ChainError::Paused { .. })) => {
                            bail!(
                                "partition {}: {e}; nothing of it was replayed",
                                batch.partition
                            )
                        }
                        Err(ChainError::Plugin(e)) => return Err(e.into()),
                    }
                }
                None => None,
            };
            let view = chained.as_ref().map(|output| ChainView {
                output,
                stages: &stages,
                version: &version,
            });
            let ctx = EncodeContext {
                topic: &c.topic,
                ingested_ms: chrono::Utc::now().timestamp_millis(),
                max_record_bytes: c.max_record_bytes,
                dead_letter_cap: c.dead_letter_payload_cap,
                format: RowFormat::Sql,
            };
            encode(plan, batch, 0, ctx, &HashMap::new(), view, &mut enc);
            let filtered: Vec<i64> = match &chained {
                Some(o) => o
                    .outcomes
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| matches!(x, Outcome::Filtered { .. }))
                    .map(|(i, _)| batch.offsets[i])
                    .collect(),
                None => Vec::new(),
            };
            let written: Vec<i64> = enc.row_events.iter().map(|&i| batch.offsets[i]).collect();
            let replayed = Partition {
                partition: batch.partition,
                enc: &enc,
                written: &written,
                filtered: &filtered,
            };
            commit(&mut conn, p, replayed, &version, dry_run)
                .await
                .with_context(|| format!("replaying partition {}", batch.partition))?;
            out.rows += written.len() as u64;
            out.filtered += filtered.len() as u64;
            out.still_dead += enc.dead.len() as u64;
        }
    }
    Ok(out)
}

/// What the chain and the encoder made of one partition's dead letters.
struct Partition<'a> {
    partition: i32,
    /// The rows to write, and the events dead again.
    enc: &'a Encoded,
    /// Offsets that became rows.
    written: &'a [i64],
    /// Offsets a filter dropped.
    filtered: &'a [i64],
}

/// One transaction: the rows, the marks, the moved totals.
async fn commit(
    conn: &mut Conn,
    p: &Prepared,
    replayed: Partition<'_>,
    version: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    let plan = p.table_plan()?;
    let Partition {
        partition,
        enc,
        written,
        filtered,
    } = replayed;
    let c = &p.config;
    let mut key = String::from("consumer_group = ");
    push_str_literal(&mut key, c.group());
    key.push_str(" AND topic = ");
    push_str_literal(&mut key, &c.topic);
    key.push_str(&format!(" AND kafka_partition = {partition}"));
    conn.query_drop("START TRANSACTION").await?;
    let result = async {
        if !enc.row_ends.is_empty() {
            let n = insert_rows(conn, plan, enc, 4 << 20).await?;
            if n != enc.row_ends.len() as u64 {
                let warnings: Vec<(String, u32, String)> = conn.query("SHOW WARNINGS").await?;
                let text: Vec<String> = warnings.into_iter().map(|w| w.2).collect();
                bail!("the database warned about the rows ({}); nothing was replayed", text.join("; "));
            }
        }
        for (offsets, result) in [(written, "row"), (filtered, "filtered")] {
            if offsets.is_empty() {
                continue;
            }
            let list: Vec<String> = offsets.iter().map(i64::to_string).collect();
            conn.query_drop(format!(
                "UPDATE weir_dead_letters SET replayed_at = NOW(6), replay_result = '{result}', \
                 replay_attempts = replay_attempts + 1 \
                 WHERE {key} AND kafka_offset IN ({}) AND replayed_at IS NULL",
                list.join(",")
            ))
            .await?;
            if conn.affected_rows() != offsets.len() as u64 {
                bail!("some of these dead letters were replayed by another process meanwhile; nothing was replayed, run again");
            }
        }
        for d in &enc.dead {
            let mut sql = String::from("UPDATE weir_dead_letters SET stage = ");
            push_str_literal(&mut sql, d.stage.as_str());
            sql.push_str(", reason = ");
            push_str_literal(&mut sql, &d.reason);
            sql.push_str(", chain = ");
            if version.is_empty() {
                sql.push_str("NULL");
            } else {
                push_str_literal(&mut sql, version);
            }
            sql.push_str(&format!(
                ", replay_attempts = replay_attempts + 1 WHERE {key} AND kafka_offset = {} AND replayed_at IS NULL",
                d.offset
            ));
            conn.query_drop(sql).await?;
        }
        let moved = (written.len() + filtered.len()) as u64;
        if moved > 0 {
            conn.query_drop(format!(
                "UPDATE weir_offsets SET rows_total = rows_total + {}, filtered_total = filtered_total + {}, \
                 dead_letters_total = dead_letters_total - {moved} WHERE {key}",
                written.len(),
                filtered.len()
            ))
            .await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) if !dry_run => {
            conn.query_drop("COMMIT").await?;
            Ok(())
        }
        other => {
            let _ = conn.query_drop("ROLLBACK").await;
            other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_and_ages() {
        let t = parse_since("2026-11-26 10:00:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-26 10:00:00");
        assert_eq!(
            parse_since("2026-11-26").unwrap().to_string(),
            "2026-11-26 00:00:00"
        );
        assert_eq!(
            parse_since("2026-11-26T10:00:00+01:00")
                .unwrap()
                .to_string(),
            "2026-11-26 09:00:00"
        );
        let age = chrono::Utc::now().naive_utc() - parse_since("2h").unwrap();
        assert!((age.num_seconds() - 7200).abs() < 5, "{age}");
        assert!(parse_since("yesterday").unwrap_err().contains("not a time"));
        assert!(parse_since("5w").unwrap_err().contains("s, m, h or d"));
    }

    #[test]
    fn reasons_group_by_kind() {
        assert_eq!(
            reason_kind("column `pin_id` (bigint(20) unsigned): expected an integer, found string \"pin-7\\\"9\""),
            "column `pin_id` (bigint(N) unsigned): expected an integer, found string \"…\""
        );
        assert_eq!(
            reason_kind("malformed JSON: EOF while parsing a string at line 1 column 10"),
            "malformed JSON: EOF while parsing a string at line N column N"
        );
        assert_eq!(
            reason_kind("rejected by `picky`: picky 1.0.0 cannot handle bots"),
            "rejected by `picky`: picky N cannot handle bots"
        );
    }

    #[test]
    fn selection_escapes_its_text() {
        let s = Selection {
            since: None,
            reason: Some("50%_o'k".into()),
        };
        assert_eq!(
            s.sql("g", "t"),
            "consumer_group = 'g' AND topic = 't' AND reason LIKE '%50\\\\%\\\\_o\\'k%'"
        );
    }
}
