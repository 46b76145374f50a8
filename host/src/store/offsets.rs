//! The `weir_offsets` table: where each partition's next offset and its totals
//! live, committed in the same transaction as the rows they account for.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::store::sql::str_literal;

/// One partition's row in `weir_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRow {
    pub partition: i32,
    pub next_offset: i64,
    pub rows_total: i64,
    pub filtered_total: i64,
    pub dead_letters_total: i64,
    pub updated_at: String,
}

/// What a batch adds to its partition's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub rows: u64,
    pub filtered: u64,
    pub dead_letters: u64,
}

/// The offsets of one consumer group on one topic.
#[derive(Debug, Clone)]
pub struct OffsetTable {
    group: String,
    topic: String,
    where_group: String,
}

impl OffsetTable {
    pub fn new(group: &str, topic: &str) -> OffsetTable {
        OffsetTable {
            group: group.to_owned(),
            topic: topic.to_owned(),
            where_group: format!(
                "consumer_group = {} AND topic = {}",
                str_literal(group),
                str_literal(topic)
            ),
        }
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The stored next offset of a partition, if it has a row.
    pub async fn read(
        &self,
        conn: &mut Conn,
        partition: i32,
    ) -> Result<Option<i64>, mysql_async::Error> {
        conn.query_first(format!(
            "SELECT next_offset FROM weir_offsets WHERE {} AND kafka_partition = {partition}",
            self.where_group
        ))
        .await
    }

    /// Creates the partition's row at `start` unless it exists, and returns the
    /// stored next offset (the existing one wins).
    pub async fn claim(
        &self,
        conn: &mut Conn,
        partition: i32,
        start: i64,
    ) -> Result<i64, mysql_async::Error> {
        conn.query_drop(format!(
            "INSERT IGNORE INTO weir_offsets (consumer_group, topic, kafka_partition, next_offset, \
             rows_total, filtered_total, dead_letters_total, updated_at) \
             VALUES ({}, {}, {partition}, {start}, 0, 0, 0, NOW(6))",
            str_literal(&self.group),
            str_literal(&self.topic)
        ))
        .await?;
        Ok(self.read(conn, partition).await?.unwrap_or(start))
    }

    /// The compare-and-set that commits a batch: moves `expected` to `next` and adds
    /// the totals. Returns whether the row matched (inside the caller's transaction).
    pub async fn advance(
        &self,
        conn: &mut Conn,
        partition: i32,
        expected: i64,
        next: i64,
        totals: Totals,
    ) -> Result<bool, mysql_async::Error> {
        conn.query_drop(format!(
            "UPDATE weir_offsets SET next_offset = {next}, rows_total = rows_total + {}, \
             filtered_total = filtered_total + {}, dead_letters_total = dead_letters_total + {}, \
             updated_at = NOW(6) WHERE {} AND kafka_partition = {partition} AND next_offset = {expected}",
            totals.rows, totals.filtered, totals.dead_letters, self.where_group
        ))
        .await?;
        Ok(conn.affected_rows() == 1)
    }

    /// Every partition's row.
    pub async fn all(&self, conn: &mut Conn) -> Result<Vec<OffsetRow>, mysql_async::Error> {
        let rows: Vec<(i32, i64, i64, i64, i64, String)> = conn
            .query(format!(
                "SELECT kafka_partition, next_offset, rows_total, filtered_total, dead_letters_total, \
                 CAST(updated_at AS CHAR) FROM weir_offsets WHERE {} ORDER BY kafka_partition",
                self.where_group
            ))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(p, n, r, f, d, u)| OffsetRow {
                partition: p,
                next_offset: n,
                rows_total: r,
                filtered_total: f,
                dead_letters_total: d,
                updated_at: u,
            })
            .collect())
    }

    /// Sets a partition's next offset unconditionally (creating the row if needed).
    /// A running owner of the partition is fenced by its next compare-and-set.
    pub async fn set(
        &self,
        conn: &mut Conn,
        partition: i32,
        next: i64,
    ) -> Result<(), mysql_async::Error> {
        conn.query_drop(format!(
            "INSERT INTO weir_offsets (consumer_group, topic, kafka_partition, next_offset, \
             rows_total, filtered_total, dead_letters_total, updated_at) \
             VALUES ({}, {}, {partition}, {next}, 0, 0, 0, NOW(6)) \
             ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset), updated_at = VALUES(updated_at)",
            str_literal(&self.group),
            str_literal(&self.topic)
        ))
        .await
    }
}
