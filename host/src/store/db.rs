//! Connections to SingleStore (or its MySQL-protocol stand-in): the pool, the
//! session settings every connection gets, dialect detection, and how errors are
//! told apart (the database is away, a row is bad, or something else).

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};

use crate::store::sql::Dialect;

/// What a database error means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The connection or the server is gone, or the statement timed out on a lock:
    /// reconnect, find out whether the last commit landed, retry.
    Transient,
    /// A value was refused (type, range, length, key): the row is at fault.
    BadRow,
    /// Anything else (a missing table, a privilege): retried with backoff, loudly.
    Other,
}

/// Classifies a database error.
pub fn classify(e: &mysql_async::Error) -> ErrorClass {
    match e {
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => ErrorClass::Transient,
        mysql_async::Error::Server(s) => match s.code {
            // server gone / lost / shutting down / killed / lock wait / deadlock / read-only
            1040 | 1053 | 1077 | 1152 | 1158..=1161 | 1205 | 1213 | 1290 | 1927 | 2006 | 2013 => {
                ErrorClass::Transient
            }
            // null, duplicate, bad value, out of range, truncated, too long, bad string, check constraint
            1048 | 1062 | 1264 | 1265 | 1292 | 1366 | 1367 | 1406 | 1411 | 1918 | 3140 | 3819
            | 4025 => ErrorClass::BadRow,
            _ => ErrorClass::Other,
        },
        _ => ErrorClass::Other,
    }
}

/// The pool for a configuration: its URL (from the file, a file or the
/// environment) and its `[singlestore.tls]`.
pub fn pool_for(config: &crate::config::Config) -> anyhow::Result<Pool> {
    let url = config.database_url()?;
    let tls = config.singlestore.tls.as_ref().map(|t| {
        let mut ssl =
            mysql_async::SslOpts::default().with_danger_skip_domain_validation(!t.verify_hostname);
        if let Some(ca) = &t.ca {
            ssl = ssl.with_root_certs(vec![config.resolve(ca).into()]);
        }
        ssl
    });
    pool_with(&url, tls)
}

/// A pool for a configuration that uses no database (every pipeline
/// archives, with no table dead letters or query lookups): it is never
/// asked for a connection, and would be refused if it were.
pub fn unused_pool() -> Pool {
    Pool::new(
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(1)
            .pool_opts(
                PoolOpts::default().with_constraints(PoolConstraints::new(0, 1).expect("0 <= 1")),
            ),
    )
}

/// A pool whose connections run at READ COMMITTED in UTC.
pub fn pool(url: &str) -> anyhow::Result<Pool> {
    pool_with(url, None)
}

fn pool_with(url: &str, tls: Option<mysql_async::SslOpts>) -> anyhow::Result<Pool> {
    let opts = Opts::from_url(url).map_err(|e| anyhow::anyhow!("bad database URL: {e}"))?;
    let constraints = PoolConstraints::new(0, 64).expect("0 <= 64");
    let builder = OptsBuilder::from_opts(opts)
        .setup(vec![
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "SET time_zone = '+00:00'",
        ])
        .tcp_nodelay(true)
        .ssl_opts(tls)
        .stmt_cache_size(0)
        .pool_opts(
            PoolOpts::default()
                .with_reset_connection(false)
                .with_constraints(constraints),
        );
    Ok(Pool::new(builder))
}

/// Gets a connection, failing after `timeout`.
pub async fn connect(pool: &Pool, timeout: Duration) -> Result<Conn, mysql_async::Error> {
    match tokio::time::timeout(timeout, pool.get_conn()).await {
        Ok(r) => r,
        Err(_) => Err(mysql_async::Error::Io(mysql_async::IoError::Io(
            std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting timed out"),
        ))),
    }
}

/// SingleStore answers `@@memsql_version`; MariaDB and MySQL refuse it.
pub async fn detect_dialect(conn: &mut Conn) -> Result<Dialect, mysql_async::Error> {
    match conn
        .query_first::<String, _>("SELECT @@memsql_version")
        .await
    {
        Ok(_) => Ok(Dialect::SingleStore),
        Err(mysql_async::Error::Server(_)) => Ok(Dialect::MariaDb),
        Err(e) => Err(e),
    }
}

/// Creates `weir_offsets` and `weir_dead_letters` if they are missing.
pub async fn ensure_own_tables(conn: &mut Conn) -> Result<Dialect, mysql_async::Error> {
    let dialect = detect_dialect(conn).await?;
    for ddl in crate::store::sql::own_tables_ddl(dialect) {
        conn.query_drop(ddl).await?;
    }
    for (table, column, definition) in crate::store::sql::OWN_COLUMNS_ADDED {
        let found: Option<String> = conn
            .exec_first(
                "SELECT column_name FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?",
                (table, column),
            )
            .await?;
        if found.is_none() {
            conn.query_drop(format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))
            .await?;
        }
    }
    Ok(dialect)
}

/// A short, credential-free description of the URL for messages.
pub fn describe_url(url: &str) -> String {
    match Opts::from_url(url) {
        Ok(o) => format!(
            "{}:{}/{}",
            o.ip_or_hostname(),
            o.tcp_port(),
            o.db_name().unwrap_or("")
        ),
        Err(_) => "<invalid URL>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_described_without_credentials() {
        let d = describe_url("mysql://user:secret@db.example:3307/analytics");
        assert_eq!(d, "db.example:3307/analytics");
        assert!(!d.contains("secret"));
    }

    #[test]
    fn errors_are_classified() {
        let server = |code| {
            mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message: String::new(),
                state: String::new(),
            })
        };
        assert_eq!(classify(&server(1213)), ErrorClass::Transient);
        assert_eq!(classify(&server(1264)), ErrorClass::BadRow);
        assert_eq!(classify(&server(1146)), ErrorClass::Other);
    }
}
