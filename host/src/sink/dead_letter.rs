//! Dead letters: events that cannot become rows, kept with their reason and
//! their original bytes (up to a cap, with the full size and a hash) in
//! `weir_dead_letters`, in the same transaction as the batch they came from.

use crate::event::batch::{sha256_hex, Batch};
use crate::store::sql::{push_bytes_literal, push_str_literal};

/// Where in the pipeline an event was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Before decoding: the record is over the size limit.
    Source,
    /// The payload is not a JSON object.
    Decode,
    /// A value does not fit its column, or the database refused the row.
    Sink,
    /// A step of the chain refused the event or failed on it (`step:NAME`).
    Step(String),
}

impl Stage {
    pub fn as_str(&self) -> &str {
        match self {
            Stage::Source => "source",
            Stage::Decode => "decode",
            Stage::Sink => "sink",
            Stage::Step(label) => label,
        }
    }
}

/// One refused event.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub stage: Stage,
    pub reason: String,
    /// The original payload, cut to the cap.
    pub payload: Vec<u8>,
    /// The original payload's full size.
    pub size: u64,
    pub sha256: String,
}

/// Longest reason stored; longer ones are cut (with a mark).
const MAX_REASON: usize = 4000;
/// Longest key stored.
const MAX_KEY: usize = 1024;

impl DeadLetter {
    /// A dead letter for record `i` of `batch`.
    pub fn from_batch(batch: &Batch, i: usize, stage: Stage, reason: String, cap: usize) -> Self {
        let payload = batch.payload(i);
        let (size, sha256) = match batch.oversized.iter().find(|o| o.index == i) {
            Some(o) => (o.size as u64, o.sha256.clone()),
            None => (payload.len() as u64, sha256_hex(payload)),
        };
        let mut reason = reason;
        if reason.len() > MAX_REASON {
            let mut cut = MAX_REASON;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            reason.push_str(" …(cut)");
        }
        DeadLetter {
            offset: batch.offsets[i],
            timestamp: batch.timestamps[i],
            key: batch.key(i).map(|k| k[..k.len().min(MAX_KEY)].to_vec()),
            stage,
            reason,
            payload: payload[..payload.len().min(cap)].to_vec(),
            size,
            sha256,
        }
    }
}

/// `text`, or, when it has more than `max` characters (the width of the
/// column of Weir's own table it goes into), its first characters followed by
/// `…#` and 16 hex digits of its SHA-256: Weir's tables never refuse Weir's
/// own values, and different long values stay different.
pub fn fit(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max || text.chars().count() <= max {
        return text.into();
    }
    let keep = max.saturating_sub(18);
    let cut: String = text.chars().take(keep).collect();
    format!("{cut}…#{}", &sha256_hex(text.as_bytes())[..16]).into()
}

/// Widths of the `VARCHAR` columns of `weir_dead_letters` (`sql.rs`).
const NAME_WIDTH: usize = 255;
const CHAIN_WIDTH: usize = 2048;

/// `INSERT` statements for dead letters, each under `max_statement` bytes.
pub fn insert_statements(
    dead: &[DeadLetter],
    group: &str,
    topic: &str,
    pipeline: &str,
    partition: i32,
    chain: Option<&str>,
    max_statement: usize,
) -> Vec<String> {
    let head =
        "INSERT INTO weir_dead_letters (consumer_group, topic, kafka_partition, kafka_offset, \
                pipeline, stage, reason, kafka_key, kafka_timestamp_ms, payload, payload_size, \
                payload_sha256, created_at, chain) VALUES ";
    let mut tail = String::from(", NOW(6), ");
    match chain {
        Some(c) => push_str_literal(&mut tail, &fit(c, CHAIN_WIDTH)),
        None => tail.push_str("NULL"),
    }
    tail.push(')');
    let mut prefix = String::new();
    push_str_literal(&mut prefix, &fit(group, NAME_WIDTH));
    prefix.push_str(", ");
    push_str_literal(&mut prefix, &fit(topic, NAME_WIDTH));
    prefix.push_str(&format!(", {partition}, "));
    let mut out = Vec::new();
    let mut sql = String::new();
    for d in dead {
        if !sql.is_empty() && sql.len() + d.payload.len() * 2 + 512 > max_statement {
            out.push(std::mem::take(&mut sql));
        }
        if sql.is_empty() {
            sql.push_str(head);
        } else {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&prefix);
        sql.push_str(&format!("{}, ", d.offset));
        push_str_literal(&mut sql, &fit(pipeline, NAME_WIDTH));
        sql.push_str(", ");
        push_str_literal(&mut sql, &fit(d.stage.as_str(), NAME_WIDTH));
        sql.push_str(", ");
        push_str_literal(&mut sql, &d.reason);
        sql.push_str(", ");
        match &d.key {
            Some(k) => push_bytes_literal(&mut sql, k),
            None => sql.push_str("NULL"),
        }
        if d.timestamp >= 0 {
            sql.push_str(&format!(", {}, ", d.timestamp));
        } else {
            sql.push_str(", NULL, ");
        }
        push_bytes_literal(&mut sql, &d.payload);
        sql.push_str(&format!(", {}, ", d.size));
        push_str_literal(&mut sql, &d.sha256);
        sql.push_str(&tail);
    }
    if !sql.is_empty() {
        out.push(sql);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_keep_size_and_hash_of_the_whole_payload() {
        let mut b = Batch::default();
        let big = vec![b'a'; 500];
        b.push(7, 1, Some(b"k"), &big, 100, 50);
        let d = DeadLetter::from_batch(&b, 0, Stage::Source, "oversized".into(), 20);
        assert_eq!(d.size, 500);
        assert_eq!(d.payload.len(), 20);
        assert_eq!(d.sha256, sha256_hex(&big));
    }

    #[test]
    fn long_values_fit_their_columns_and_stay_distinct() {
        assert_eq!(fit("short", 10), "short");
        let a = format!("f@{}#ab", "9".repeat(3000));
        let b = format!("f@{}#ac", "9".repeat(3000));
        let (fa, fb) = (fit(&a, CHAIN_WIDTH), fit(&b, CHAIN_WIDTH));
        assert_eq!(fa.chars().count(), CHAIN_WIDTH);
        assert!(fa.starts_with("f@999") && fa.contains("…#"), "{fa}");
        assert_ne!(fa, fb);
        assert_eq!(fit(&"é".repeat(300), 255).chars().count(), 255);
    }

    #[test]
    fn statements_are_split_under_the_limit() {
        let mut b = Batch::default();
        for i in 0..10 {
            b.push(i, 1, None, &[b'x'; 100], 1000, 1000);
        }
        let dead: Vec<_> = (0..10)
            .map(|i| DeadLetter::from_batch(&b, i, Stage::Decode, "r".into(), 1000))
            .collect();
        let stmts = insert_statements(&dead, "g", "t", "p", 0, Some("f@1#ab"), 2000);
        assert!(stmts.len() > 1);
        assert!(stmts.iter().all(|s| s.len() < 2000));
        let values: usize = stmts
            .iter()
            .map(|s| s.matches("NOW(6), 'f@1#ab')").count())
            .sum();
        assert_eq!(values, 10);
    }
}
