//! The writer's decisions against a fake database: what it retries, when it
//! trusts a commit it did not see, when it is fenced, how it finds the rows
//! at fault, and when it gives up at a stop. No services; the clock is paused.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::*;
use crate::config::PipelineConfig;
use crate::source::claim::Claim;

/// What the fake does with the next commit, instead of its usual behaviour.
#[derive(Debug, Clone)]
enum Script {
    /// The connection dies; `landed`: after the commit reached the database.
    Lost { landed: bool },
    /// The server answers a statement with this error code.
    Server(u16),
}

/// One commit the fake accepted.
#[derive(Debug, Clone, PartialEq)]
struct Commit {
    rows: usize,
    dead_letters: usize,
    expected: i64,
    end: i64,
    format: RowFormat,
    tolerate_warnings: bool,
}

/// A database with one partition's offsets row. It warns about (`LOAD
/// DATA`) or refuses (`INSERT`) rows whose `n` is negative; `ambient_warning`
/// makes it warn about every batch but no row alone.
#[derive(Default)]
struct State {
    stored: Option<i64>,
    script: VecDeque<Script>,
    commits: Vec<Commit>,
    dry_runs: usize,
    /// The next reads of the stored offset that fail.
    read_failures: usize,
    ambient_warning: bool,
    resets: usize,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<State>>);

impl Fake {
    fn with_stored(at: i64) -> Fake {
        let fake = Fake::default();
        fake.state().stored = Some(at);
        fake
    }
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }
}

fn lost() -> mysql_async::Error {
    mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection reset",
    )))
}

fn server(code: u16, message: &str) -> mysql_async::Error {
    mysql_async::Error::Server(mysql_async::ServerError {
        code,
        message: message.to_owned(),
        state: "HY000".to_owned(),
    })
}

/// ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: a bad value, so a row is at fault.
const BAD_VALUE: u16 = 1366;

/// Whether a row (TSV or an SQL tuple) holds a negative `n` (its last field).
fn bad(row: &[u8]) -> bool {
    let text = String::from_utf8_lossy(row);
    let last = text
        .trim_end_matches([')', '\n'])
        .rsplit(['\t', ','])
        .next();
    last.is_some_and(|n| n.trim().starts_with('-'))
}

impl Database for Fake {
    async fn stored_offset(&mut self, _partition: i32) -> Result<Option<i64>, mysql_async::Error> {
        let mut s = self.state();
        if s.read_failures > 0 {
            s.read_failures -= 1;
            return Err(lost());
        }
        Ok(s.stored)
    }

    async fn commit(&mut self, tx: Transaction<'_>) -> Result<Attempt, mysql_async::Error> {
        let mut s = self.state();
        let commit = Commit {
            rows: tx.rows.row_ends.len(),
            dead_letters: tx.dead_letters.len(),
            expected: tx.expected,
            end: tx.end,
            format: tx.format,
            tolerate_warnings: tx.tolerate_warnings,
        };
        match s.script.pop_front() {
            Some(Script::Lost { landed }) => {
                if landed {
                    s.stored = Some(tx.end);
                    s.commits.push(commit);
                }
                return Err(lost());
            }
            Some(Script::Server(code)) => return Err(server(code, "refused")),
            None => {}
        }
        let warned = (0..tx.rows.row_ends.len()).any(|r| bad(tx.rows.row(r)));
        if warned && tx.format == RowFormat::Sql && !tx.tolerate_warnings {
            return Err(server(BAD_VALUE, "Out of range value for column 'n'"));
        }
        if (warned || s.ambient_warning) && !tx.tolerate_warnings {
            return Ok(Attempt::NeedsDryRun);
        }
        if s.stored != Some(tx.expected) {
            return Ok(Attempt::Mismatch);
        }
        s.stored = Some(tx.end);
        s.commits.push(commit);
        Ok(Attempt::Committed)
    }

    async fn dry_run(
        &mut self,
        _plan: &TablePlan,
        rows: &Encoded,
    ) -> Result<HashMap<usize, String>, mysql_async::Error> {
        self.state().dry_runs += 1;
        Ok((0..rows.row_ends.len())
            .filter(|&r| bad(rows.row(r)))
            .map(|r| {
                (
                    rows.row_events[r],
                    "Out of range value for column 'n'".into(),
                )
            })
            .collect())
    }

    fn reset(&mut self) {
        self.state().resets += 1;
    }

    async fn close(self) {}
}

fn plan() -> Arc<TablePlan> {
    let p: PipelineConfig = toml::from_str(
        "name = \"t\"\ntopic = \"t\"\ntable = \"t\"\ncolumns = { action = \"action\", n = \"n\" }",
    )
    .unwrap();
    let column = |name: &str, data_type: &str, column_type: &str| {
        (
            name.to_owned(),
            data_type.to_owned(),
            column_type.to_owned(),
            "YES".to_owned(),
            Some(16),
            None,
            None,
            None,
            None,
            String::new(),
        )
    };
    let rows = vec![
        column("action", "varchar", "varchar(16)"),
        column("n", "int", "int(11)"),
    ];
    let fields = crate::chain::fields::source_fields(&p);
    Arc::new(TablePlan::from_schema(&p, &fields, rows).unwrap())
}

/// Events at offsets `range`; `n` is the offset, negated for `negative`.
fn batch(range: std::ops::Range<i64>, negative: &[i64]) -> Batch {
    let mut b = Batch {
        partition: 0,
        generation: 1,
        ..Batch::default()
    };
    for o in range {
        let n = if negative.contains(&o) { -o } else { o };
        let payload = format!(r#"{{"action":"click","n":{n}}}"#);
        b.push(o, 1, None, payload.as_bytes(), 65536, 1024);
    }
    b
}

struct Rig {
    writer: Writer<Fake>,
    db: Fake,
    claims: Claims,
    notes: std::sync::mpsc::Receiver<Note>,
    stop: CancellationToken,
}

fn rig(db: Fake, method: WriteMethod, claimed_at: i64) -> Rig {
    let claims = Claims::default();
    claims.lock().insert(
        0,
        Claim {
            generation: 1,
            expected: claimed_at,
            fenced_at: None,
        },
    );
    let (tx, notes) = std::sync::mpsc::channel();
    let stop = CancellationToken::new();
    let writer = Writer::new(
        WriterSettings {
            pipeline: "t".into(),
            method,
            max_record_bytes: 65536,
            dead_letter_cap: 1024,
        },
        plan(),
        OffsetTable::new("g", "t"),
        db.clone(),
        None,
        Links {
            claims: claims.clone(),
            notes: tx,
            reload: None,
            stop: stop.clone(),
        },
    );
    Rig {
        writer,
        db,
        claims,
        notes,
        stop,
    }
}

impl Rig {
    fn committed_notes(&self) -> Vec<(i64, Totals)> {
        self.notes
            .try_iter()
            .filter_map(|n| match n {
                Note::Committed { next, totals, .. } => Some((next, totals)),
                Note::Spent(_) => None,
            })
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn a_clean_batch_commits_once_and_moves_the_claim() {
    let mut r = rig(Fake::with_stored(0), WriteMethod::LoadData, 0);
    assert_eq!(r.writer.write(&batch(0..10, &[])).await, Ending::Committed);
    let commits = r.db.state().commits.clone();
    assert_eq!(commits.len(), 1);
    assert_eq!(
        (commits[0].rows, commits[0].expected, commits[0].end),
        (10, 0, 10)
    );
    assert_eq!(commits[0].format, RowFormat::Tsv);
    assert_eq!(r.claims.lock()[&0].expected, 10);
    let notes = r.committed_notes();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].0, 10);
    assert_eq!(notes[0].1.rows, 10);
}

#[tokio::test(start_paused = true)]
async fn records_below_the_claim_are_skipped() {
    let mut r = rig(Fake::with_stored(5), WriteMethod::LoadData, 5);
    assert_eq!(r.writer.write(&batch(0..10, &[])).await, Ending::Committed);
    assert_eq!(r.db.state().commits[0].rows, 5);
    let mut r = rig(Fake::with_stored(10), WriteMethod::LoadData, 10);
    assert_eq!(r.writer.write(&batch(0..10, &[])).await, Ending::NothingNew);
    assert!(r.db.state().commits.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_commit_lost_after_it_landed_is_recognised_not_repeated() {
    let db = Fake::with_stored(0);
    db.state().script.push_back(Script::Lost { landed: true });
    let mut r = rig(db, WriteMethod::LoadData, 0);
    assert_eq!(r.writer.write(&batch(0..10, &[])).await, Ending::Committed);
    assert_eq!(r.db.state().commits.len(), 1, "written twice");
    assert_eq!(r.db.state().resets, 1, "the broken connection was kept");
    assert_eq!(r.claims.lock()[&0].expected, 10);
    let notes = r.committed_notes();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].1.rows, 10, "the totals of the landed commit");
}

#[tokio::test(start_paused = true)]
async fn a_commit_lost_before_it_landed_is_retried() {
    let db = Fake::with_stored(0);
    db.state().script.push_back(Script::Lost { landed: false });
    db.state().read_failures = 2;
    let mut r = rig(db, WriteMethod::LoadData, 0);
    assert_eq!(r.writer.write(&batch(0..10, &[])).await, Ending::Committed);
    let s = r.db.state();
    assert_eq!(s.commits.len(), 1);
    assert_eq!(s.stored, Some(10));
    // The lost commit and the two failed reads each dropped the connection.
    assert_eq!(s.resets, 3);
}

#[tokio::test(start_paused = true)]
async fn an_offset_moved_by_another_owner_fences_the_claim() {
    // In doubt after a lost connection: meanwhile another owner moved the
    // row past us.
    let db = Fake::with_stored(25);
    db.state().script.push_back(Script::Lost { landed: false });
    let mut r = rig(db, WriteMethod::LoadData, 0);
    assert_eq!(r.writer.write(&batch(0..10, &[])).await, Ending::Fenced);
    assert!(r.db.state().commits.is_empty());
    assert_eq!(r.claims.lock()[&0].fenced_at, Some(25));
    assert!(r.committed_notes().is_empty());

    // The compare-and-set fails: same ending, nothing written.
    let mut r = rig(Fake::with_stored(40), WriteMethod::LoadData, 0);
    assert_eq!(r.writer.write(&batch(0..10, &[])).await, Ending::Fenced);
    assert_eq!(r.claims.lock()[&0].fenced_at, Some(40));
    assert!(r.db.state().commits.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_stored_offset_equal_to_a_batch_end_of_another_owner_is_not_ours() {
    // Contested (the compare-and-set matched nothing): even a row at exactly
    // our batch's end was written by someone else, since ours rolled back.
    let mut r = rig(Fake::with_stored(10), WriteMethod::LoadData, 0);
    assert_eq!(r.writer.write(&batch(0..10, &[])).await, Ending::Fenced);
    assert!(r.committed_notes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn rows_the_database_warns_about_become_dead_letters() {
    let mut r = rig(Fake::with_stored(0), WriteMethod::LoadData, 0);
    assert_eq!(
        r.writer.write(&batch(0..10, &[3, 7])).await,
        Ending::Committed
    );
    let s = r.db.state();
    assert_eq!(s.dry_runs, 1);
    assert_eq!(s.commits.len(), 1);
    assert_eq!((s.commits[0].rows, s.commits[0].dead_letters), (8, 1));
    assert_eq!(s.commits[0].format, RowFormat::Tsv, "load data kept");
    drop(s);
    let totals = r.committed_notes()[0].1;
    assert_eq!((totals.rows, totals.dead_letters), (8, 2));
}

#[tokio::test(start_paused = true)]
async fn a_refused_insert_finds_the_rows_and_stays_with_insert() {
    let mut r = rig(Fake::with_stored(0), WriteMethod::Insert, 0);
    assert_eq!(r.writer.write(&batch(0..6, &[2])).await, Ending::Committed);
    let s = r.db.state();
    assert_eq!(s.dry_runs, 1);
    assert_eq!(s.commits[0].format, RowFormat::Sql);
    assert_eq!(s.commits[0].rows, 5);
    assert!(!s.commits[0].tolerate_warnings);
}

#[tokio::test(start_paused = true)]
async fn a_warning_about_no_row_in_particular_falls_back_to_tolerant_insert() {
    let db = Fake::with_stored(0);
    db.state().ambient_warning = true;
    let mut r = rig(db, WriteMethod::LoadData, 0);
    assert_eq!(r.writer.write(&batch(0..4, &[])).await, Ending::Committed);
    let s = r.db.state();
    assert_eq!(s.dry_runs, 1);
    assert_eq!(s.commits[0].format, RowFormat::Sql);
    assert!(s.commits[0].tolerate_warnings);
    assert_eq!(s.commits[0].rows, 4, "no row was dropped for it");
}

#[tokio::test(start_paused = true)]
async fn a_refusal_with_no_row_at_fault_is_retried_not_dead_lettered() {
    let db = Fake::with_stored(0);
    db.state().script.push_back(Script::Server(BAD_VALUE));
    let mut r = rig(db, WriteMethod::LoadData, 0);
    assert_eq!(r.writer.write(&batch(0..4, &[])).await, Ending::Committed);
    let s = r.db.state();
    assert_eq!(s.commits.len(), 1);
    assert_eq!((s.commits[0].rows, s.commits[0].dead_letters), (4, 0));
    assert_eq!(
        s.commits[0].format,
        RowFormat::Sql,
        "insert from the refusal on"
    );
}

#[tokio::test(start_paused = true)]
async fn an_error_naming_no_row_is_retried_as_it_was() {
    // ER_NO_SUCH_TABLE, then ER_LOCK_DEADLOCK: neither is any row's fault.
    let db = Fake::with_stored(0);
    db.state()
        .script
        .extend([Script::Server(1146), Script::Server(1213)]);
    let mut r = rig(db, WriteMethod::LoadData, 0);
    assert_eq!(r.writer.write(&batch(0..4, &[])).await, Ending::Committed);
    let s = r.db.state();
    assert_eq!(s.dry_runs, 0, "looked for rows at fault");
    assert_eq!(s.commits.len(), 1);
    assert_eq!((s.commits[0].rows, s.commits[0].dead_letters), (4, 0));
    assert_eq!(s.commits[0].format, RowFormat::Tsv, "the method changed");
    assert_eq!(s.resets, 2);
}

#[tokio::test(start_paused = true)]
async fn a_revoked_partition_is_not_written() {
    let mut r = rig(Fake::with_stored(0), WriteMethod::LoadData, 0);
    r.claims.lock().clear();
    assert_eq!(r.writer.write(&batch(0..4, &[])).await, Ending::Revoked);
    assert!(r.db.state().commits.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_stop_gives_up_a_batch_that_cannot_commit_after_the_grace() {
    let db = Fake::with_stored(0);
    db.state().script.push_back(Script::Lost { landed: false });
    db.state().read_failures = usize::MAX;
    let mut r = rig(db, WriteMethod::LoadData, 0);
    r.stop.cancel();
    let started = tokio::time::Instant::now();
    assert_eq!(r.writer.write(&batch(0..4, &[])).await, Ending::Abandoned);
    let waited = started.elapsed();
    assert!(waited >= STOP_GRACE, "gave up after {waited:?}");
    assert!(
        waited < STOP_GRACE + Duration::from_secs(6),
        "gave up after {waited:?}"
    );
    // Nothing after the abandoned batch commits on this writer.
    r.db.state().read_failures = 0;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(batch(4..8, &[])).await.unwrap();
    drop(tx);
    r.writer.run(rx).await;
    assert!(r.db.state().commits.is_empty());
    let spent = r
        .notes
        .try_iter()
        .filter(|n| matches!(n, Note::Spent(_)))
        .count();
    assert_eq!(spent, 1, "the batch is handed back all the same");
}

#[tokio::test(start_paused = true)]
async fn without_a_stop_a_failing_database_is_retried_with_capped_backoff() {
    let db = Fake::with_stored(0);
    db.state().script.push_back(Script::Lost { landed: false });
    db.state().read_failures = 20;
    let mut r = rig(db, WriteMethod::LoadData, 0);
    let started = tokio::time::Instant::now();
    assert_eq!(r.writer.write(&batch(0..4, &[])).await, Ending::Committed);
    let waited = started.elapsed();
    // 0.1 + 0.2 + ... doubling to the 5 s cap, 21 waits.
    assert!(waited > Duration::from_secs(60), "{waited:?}");
    assert!(waited < Duration::from_secs(100), "{waited:?}");
}

#[test]
fn a_new_plan_waiting_in_the_slot_is_kept_when_a_chain_alone_follows() {
    let slot: Slot = Default::default();
    offer(
        &slot,
        Swap {
            chain: None,
            plan: Some(plan()),
        },
    );
    offer(
        &slot,
        Swap {
            chain: None,
            plan: None,
        },
    );
    assert!(slot.lock().unwrap().as_ref().unwrap().plan.is_some());
}
