//! The database side of a batch's write, behind [`Database`] so that the
//! writer's decisions (what to retry, when a commit is in doubt, when it is
//! fenced) are tested against a fake: [`MySql`] is the real one.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};

use super::encode::{Encoded, RowFormat};
use super::plan::TablePlan;
use crate::store::db::{classify, connect, ErrorClass};
use crate::store::offsets::{OffsetTable, Totals};

/// What one transaction attempt came to, when the database answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Committed,
    /// The offsets row's compare-and-set matched no row; rolled back.
    Mismatch,
    /// The database warned about the rows; rolled back. The rows at fault
    /// must be found.
    NeedsDryRun,
}

/// One batch's transaction: its rows, its dead letters and the move of its
/// partition's offset from `expected` to `end`.
#[derive(Debug, Clone, Copy)]
pub struct Transaction<'a> {
    pub plan: &'a TablePlan,
    pub rows: &'a Encoded,
    pub format: RowFormat,
    /// Commit even if the database warns about the rows.
    pub tolerate_warnings: bool,
    /// `INSERT` statements for `weir_dead_letters`.
    pub dead_letters: &'a [String],
    pub partition: i32,
    pub expected: i64,
    pub end: i64,
    pub totals: Totals,
}

/// Where a writer commits. Every error is a `mysql_async::Error`, which the
/// writer classifies ([`crate::store::db::classify`]); after one, the writer
/// calls [`Database::reset`] before trying again.
pub trait Database: Send {
    /// The partition's stored next offset (`None`: no row).
    fn stored_offset(
        &mut self,
        partition: i32,
    ) -> impl Future<Output = Result<Option<i64>, mysql_async::Error>> + Send;

    /// Writes `tx` in one transaction, committed only if it answers
    /// [`Attempt::Committed`].
    fn commit(
        &mut self,
        tx: Transaction<'_>,
    ) -> impl Future<Output = Result<Attempt, mysql_async::Error>> + Send;

    /// Inserts `rows` (SQL tuples) one statement each in a transaction that is
    /// rolled back, and returns the events the database refuses or warns
    /// about, with its words.
    fn dry_run(
        &mut self,
        plan: &TablePlan,
        rows: &Encoded,
    ) -> impl Future<Output = Result<HashMap<usize, String>, mysql_async::Error>> + Send;

    /// Forgets the connection after a failure: its transaction, if any, dies
    /// with it.
    fn reset(&mut self);

    /// Closes the connection, if any.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// The real database: a connection from the pool, opened when first needed
/// and again after [`Database::reset`].
pub struct MySql {
    pool: Pool,
    offsets: OffsetTable,
    conn: Option<Conn>,
}

impl MySql {
    pub fn new(pool: Pool, offsets: OffsetTable) -> MySql {
        MySql {
            pool,
            offsets,
            conn: None,
        }
    }

    async fn conn(&mut self) -> Result<&mut Conn, mysql_async::Error> {
        if self.conn.is_none() {
            self.conn = Some(connect(&self.pool, Duration::from_secs(10)).await?);
        }
        Ok(self.conn.as_mut().expect("just set"))
    }
}

impl Database for MySql {
    async fn stored_offset(&mut self, partition: i32) -> Result<Option<i64>, mysql_async::Error> {
        let offsets = self.offsets.clone();
        offsets.read(self.conn().await?, partition).await
    }

    async fn commit(&mut self, tx: Transaction<'_>) -> Result<Attempt, mysql_async::Error> {
        let offsets = self.offsets.clone();
        let conn = self.conn().await?;
        conn.query_drop("START TRANSACTION").await?;
        let outcome = async {
            if !tx.rows.row_ends.is_empty() {
                let clean = match tx.format {
                    RowFormat::Tsv => load_rows(conn, tx.plan, &tx.rows.rows).await?,
                    RowFormat::Sql => insert_rows(conn, tx.plan, tx.rows, 4 << 20).await?,
                } == tx.rows.row_ends.len() as u64;
                if !clean && !tx.tolerate_warnings {
                    return Ok(Attempt::NeedsDryRun);
                }
            }
            for stmt in tx.dead_letters {
                conn.query_drop(stmt).await?;
            }
            if !offsets
                .advance(conn, tx.partition, tx.expected, tx.end, tx.totals)
                .await?
            {
                return Ok(Attempt::Mismatch);
            }
            conn.query_drop("COMMIT").await?;
            Ok(Attempt::Committed)
        }
        .await;
        if !matches!(outcome, Ok(Attempt::Committed)) && conn.query_drop("ROLLBACK").await.is_err()
        {
            self.conn = None;
        }
        outcome
    }

    async fn dry_run(
        &mut self,
        plan: &TablePlan,
        rows: &Encoded,
    ) -> Result<HashMap<usize, String>, mysql_async::Error> {
        let conn = self.conn().await?;
        let mut bad = HashMap::new();
        conn.query_drop("START TRANSACTION").await?;
        let mut sql = String::new();
        for r in 0..rows.row_ends.len() {
            sql.clear();
            sql.push_str(plan.insert_head());
            sql.push_str(&String::from_utf8_lossy(rows.row(r)));
            match conn.query_drop(sql.as_str()).await {
                Ok(()) if conn.get_warnings() == 0 => {}
                Ok(()) => {
                    let warnings: Vec<(String, u32, String)> = conn.query("SHOW WARNINGS").await?;
                    let text: Vec<String> = warnings.into_iter().map(|w| w.2).collect();
                    bad.insert(rows.row_events[r], text.join("; "));
                }
                Err(e) if classify(&e) == ErrorClass::BadRow => {
                    let words = match &e {
                        mysql_async::Error::Server(s) => s.message.clone(),
                        other => other.to_string(),
                    };
                    bad.insert(rows.row_events[r], words);
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

    fn reset(&mut self) {
        self.conn = None;
    }

    async fn close(mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.disconnect().await;
        }
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
