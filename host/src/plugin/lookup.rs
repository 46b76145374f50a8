//! Reference tables plugins look keys up in (`[lookup.NAME]`): loaded from a CSV
//! file, an SQL query or a MaxMind DB file before anything is consumed,
//! refreshed on an interval in the background, and swapped whole so that a
//! batch always sees one version. The host holds one copy of each table for
//! every instance of every step: large reference data belongs here rather than
//! in each instance's memory. A step sees only the tables it is granted
//! (`lookups = ["NAME"]`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use mysql_async::Pool;

use super::mmdb::MmdbTable;
use crate::config::{Config, LookupConfig, LookupSource};

/// Key → value. Values are shared: a few categories serve many keys.
pub type Rows = HashMap<Box<str>, Arc<str>>;

/// One version of a table's contents.
#[derive(Debug)]
pub enum Table {
    /// From a CSV file or a query.
    Rows(Rows),
    /// IP address → the selected members of its record, from a MaxMind DB file.
    Mmdb(MmdbTable),
}

impl Table {
    /// Rows (or networks, for a MaxMind DB).
    pub fn len(&self) -> usize {
        match self {
            Table::Rows(rows) => rows.len(),
            Table::Mmdb(db) => db.nodes(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `key`'s value to `out`; false when the table has none.
    pub fn get_into(&self, key: &str, out: &mut Vec<u8>) -> bool {
        match self {
            Table::Rows(rows) => match rows.get(key) {
                Some(v) => {
                    out.extend_from_slice(v.as_bytes());
                    true
                }
                None => false,
            },
            Table::Mmdb(db) => db.get_into(key, out),
        }
    }
}

/// One table, swapped whole on refresh.
#[derive(Debug)]
pub struct LookupTable {
    pub name: String,
    table: RwLock<Arc<Table>>,
}

impl LookupTable {
    pub fn new(name: &str, rows: Rows) -> LookupTable {
        LookupTable::of(name, Table::Rows(rows))
    }

    pub fn of(name: &str, table: Table) -> LookupTable {
        LookupTable {
            name: name.to_string(),
            table: RwLock::new(Arc::new(table)),
        }
    }

    /// The current version of the table.
    pub fn table(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn replace(&self, table: Table) {
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
    }
}

/// The tables of a configuration, by name.
pub type Lookups = BTreeMap<String, Arc<LookupTable>>;

/// Why a table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("lookup `{name}`: cannot read {path}: {source}")]
    Read {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lookup `{name}`: {path}:{line}: {message}")]
    Csv {
        name: String,
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("lookup `{name}`: the query failed: {message}")]
    Query { name: String, message: String },
    #[error("lookup `{name}` reads a query but no database is configured")]
    NoDatabase { name: String },
    #[error("lookup `{name}`: {source}")]
    Mmdb {
        name: String,
        source: super::mmdb::MmdbError,
    },
}

/// Loads every table the configuration defines. SQL tables need `pool`.
pub async fn load_all(config: &Config, pool: Option<&Pool>) -> Result<Lookups, LookupError> {
    let mut out = Lookups::new();
    for (name, l) in &config.lookups {
        let table = load(config, name, l, pool).await?;
        tracing::info!(lookup = %name, rows = table.len(), "lookup table loaded");
        out.insert(name.clone(), Arc::new(LookupTable::of(name, table)));
    }
    Ok(out)
}

/// Loads every table for a run without a pipeline (`weir test`, `weir plugin
/// diff`): a database is opened only when a table is read by a query.
pub async fn load_offline(config: &Config) -> anyhow::Result<Lookups> {
    let needs_db = config
        .lookups
        .values()
        .any(|l| matches!(l.source(), LookupSource::Query(_)));
    let pool = if needs_db {
        Some(crate::store::db::pool_for(config)?)
    } else {
        None
    };
    let lookups = load_all(config, pool.as_ref()).await?;
    if let Some(pool) = pool {
        let _ = pool.disconnect().await;
    }
    Ok(lookups)
}

async fn load(
    config: &Config,
    name: &str,
    l: &LookupConfig,
    pool: Option<&Pool>,
) -> Result<Table, LookupError> {
    Ok(match l.source() {
        LookupSource::Csv(path) => {
            let path = config.resolve(path);
            let text = std::fs::read_to_string(&path).map_err(|source| LookupError::Read {
                name: name.into(),
                path: path.clone(),
                source,
            })?;
            Table::Rows(
                parse_csv(&text, l.key.as_deref(), l.value.as_deref()).map_err(
                    |(line, message)| LookupError::Csv {
                        name: name.into(),
                        path,
                        line,
                        message,
                    },
                )?,
            )
        }
        LookupSource::Mmdb(path) => {
            let path = config
                .step_file(path)
                .map_err(|message| LookupError::Mmdb {
                    name: name.into(),
                    source: super::mmdb::MmdbError::Open {
                        path: path.display().to_string(),
                        message,
                    },
                })?;
            let select = l.select.clone().unwrap_or_default();
            // Reading 56 MB is not for the async threads.
            let table = tokio::task::spawn_blocking(move || MmdbTable::open(&path, &select))
                .await
                .map_err(|e| LookupError::Mmdb {
                    name: name.into(),
                    source: super::mmdb::MmdbError::Open {
                        path: String::new(),
                        message: e.to_string(),
                    },
                })?;
            Table::Mmdb(table.map_err(|source| LookupError::Mmdb {
                name: name.into(),
                source,
            })?)
        }
        LookupSource::Query(query) => {
            let pool = pool.ok_or_else(|| LookupError::NoDatabase { name: name.into() })?;
            let fail = |e: mysql_async::Error| LookupError::Query {
                name: name.into(),
                message: e.to_string(),
            };
            let mut conn = pool.get_conn().await.map_err(fail)?;
            let found: Vec<(Option<String>, Option<String>)> =
                conn.query(query).await.map_err(fail)?;
            let mut interned: HashMap<String, Arc<str>> = HashMap::new();
            let mut rows = Rows::with_capacity(found.len());
            for (key, value) in found {
                if let (Some(k), Some(v)) = (key, value) {
                    let v = interned
                        .entry(v)
                        .or_insert_with_key(|v| Arc::from(v.as_str()))
                        .clone();
                    rows.insert(k.into_boxed_str(), v);
                }
            }
            Table::Rows(rows)
        }
    })
}

/// Refreshes each table on its interval until the process ends. A failed
/// refresh is logged and the previous version kept.
pub fn spawn_refresh(config: &Config, lookups: &Lookups, pool: Pool) {
    for (name, l) in &config.lookups {
        let every = l.refresh();
        if every == 0 {
            continue;
        }
        let (Some(table), config, l, pool, name) = (
            lookups.get(name).cloned(),
            config.clone(),
            l.clone(),
            pool.clone(),
            name.clone(),
        ) else {
            continue;
        };
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(every));
            tick.tick().await;
            loop {
                tick.tick().await;
                match load(&config, &name, &l, Some(&pool)).await {
                    Ok(rows) => {
                        tracing::debug!(lookup = %name, rows = rows.len(), "lookup table refreshed");
                        table.replace(rows);
                    }
                    Err(e) => {
                        tracing::warn!(lookup = %name, "refresh failed, keeping the previous version: {e}")
                    }
                }
            }
        });
    }
}

/// The tables granted to a step, in the order of its `lookups`.
pub fn granted(all: &Lookups, names: &[String]) -> Lookups {
    names
        .iter()
        .filter_map(|n| all.get(n).map(|t| (n.clone(), t.clone())))
        .collect()
}

/// A CSV file with a header row: `key` and `value` name its columns (default:
/// the first and the second). Quoted fields may hold commas, quotes (doubled)
/// and line breaks. Errors carry the line.
pub fn parse_csv(
    text: &str,
    key: Option<&str>,
    value: Option<&str>,
) -> Result<Rows, (usize, String)> {
    let mut records = csv_records(text);
    let (header_line, header) = records
        .next()
        .ok_or((1, "the file is empty: a header row is expected".to_string()))??;
    let column = |wanted: Option<&str>, default: usize| -> Result<usize, (usize, String)> {
        match wanted {
            None if header.len() > default => Ok(default),
            None => Err((
                header_line,
                format!("expected at least {} columns", default + 1),
            )),
            Some(w) => header.iter().position(|h| h == w).ok_or((
                header_line,
                format!("no column `{w}` in the header ({})", header.join(", ")),
            )),
        }
    };
    let (k, v) = (column(key, 0)?, column(value, 1)?);
    let mut interned: HashMap<String, Arc<str>> = HashMap::new();
    let mut rows = Rows::new();
    for record in records {
        let (line, fields) = record?;
        if fields.len() == 1 && fields[0].is_empty() {
            continue;
        }
        if fields.len() != header.len() {
            return Err((
                line,
                format!("{} fields, the header has {}", fields.len(), header.len()),
            ));
        }
        let value = interned
            .entry(fields[v].clone())
            .or_insert_with_key(|s| Arc::from(s.as_str()))
            .clone();
        rows.insert(fields[k].clone().into_boxed_str(), value);
    }
    Ok(rows)
}

type Record = Result<(usize, Vec<String>), (usize, String)>;

fn csv_records(text: &str) -> impl Iterator<Item = Record> + '_ {
    let mut chars = text.chars().peekable();
    let mut line = 1;
    std::iter::from_fn(move || {
        chars.peek()?;
        let start = line;
        let mut fields = vec![String::new()];
        let mut quoted = false;
        while let Some(c) = chars.next() {
            let field = fields.last_mut().expect("one field");
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
                (false, '"') if field.is_empty() => quoted = true,
                (false, ',') => fields.push(String::new()),
                (false, '\r') => {}
                (false, '\n') => {
                    line += 1;
                    return Some(Ok((start, fields)));
                }
                (false, c) => field.push(c),
            }
        }
        if quoted {
            return Some(Err((start, "a quoted field is not closed".into())));
        }
        Some(Ok((start, fields)))
    })
}

/// The resolved path of a CSV table, for messages.
pub fn csv_path(config: &Config, l: &LookupConfig) -> Option<PathBuf> {
    match l.source() {
        LookupSource::Csv(p) => Some(config.resolve(p)),
        LookupSource::Query(_) | LookupSource::Mmdb(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_header_quotes_and_named_columns() {
        let text = "pin_id,category,note\n7919,\"Food, Drink\",x\n15838,\"He said \"\"hi\"\"\",\"two\nlines\"\n\n";
        let rows = parse_csv(text, None, None).unwrap();
        assert_eq!(&*rows["7919"], "Food, Drink");
        assert_eq!(&*rows["15838"], "He said \"hi\"");
        let rows = parse_csv(text, Some("category"), Some("pin_id")).unwrap();
        assert_eq!(&*rows["Food, Drink"], "7919");
    }

    #[test]
    fn csv_errors_name_the_line() {
        assert_eq!(
            parse_csv("a,b\n1,2\n3\n", None, None).unwrap_err(),
            (3, "1 fields, the header has 2".into())
        );
        assert_eq!(
            parse_csv("a,b\n", Some("c"), None).unwrap_err().1,
            "no column `c` in the header (a, b)"
        );
        assert_eq!(parse_csv("a,b\n\"1,2\n", None, None).unwrap_err().0, 2);
    }
}
