//! SQL text the sink sends: literals, identifiers, TSV for `LOAD DATA`, and the
//! DDL of Weir's own tables per dialect.
//!
//! Everything goes through the text protocol (no prepared statements: they fail
//! on SingleStore when audit logging is on), so every value is escaped here.
//! DML stays inside the subset SingleStore and MariaDB share; only DDL differs.

/// The database flavour, detected at connect time. Only DDL depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SingleStore (formerly MemSQL).
    SingleStore,
    /// MariaDB or MySQL, the local stand-in.
    MariaDb,
}

/// Appends `'text'` with MySQL string escaping.
pub fn push_str_literal(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x1a' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// `'text'` as a new string.
pub fn str_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_str_literal(&mut out, s);
    out
}

/// Appends bytes as a hex literal `X'..'` (an empty string for no bytes).
pub fn push_bytes_literal(out: &mut String, b: &[u8]) {
    if b.is_empty() {
        out.push_str("''");
        return;
    }
    out.push_str("X'");
    out.push_str(&hex::encode(b));
    out.push('\'');
}

/// `` `name` `` (names are validated to plain identifiers by the config).
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Appends a field for `LOAD DATA ... FIELDS TERMINATED BY '\t' ESCAPED BY '\\'`.
pub fn push_tsv_escaped(out: &mut Vec<u8>, b: &[u8]) {
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\\' => b"\\\\",
            0 => b"\\0",
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
}

/// The `LOAD DATA` statement for `columns` of `table`, reading the in-memory "file" `name`.
pub fn load_data(table: &str, columns: &[String], name: &str) -> String {
    let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    format!(
        "LOAD DATA LOCAL INFILE {} INTO TABLE {} FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' \
         LINES TERMINATED BY '\\n' ({})",
        str_literal(name),
        ident(table),
        cols.join(", ")
    )
}

/// `CREATE TABLE IF NOT EXISTS` for Weir's own tables.
pub fn own_tables_ddl(dialect: Dialect) -> [String; 2] {
    // SingleStore: small, point-updated rowstore tables sharded on their key.
    let (create, offsets_tail, dl_tail) = match dialect {
        Dialect::SingleStore => (
            "CREATE ROWSTORE TABLE IF NOT EXISTS",
            ", SHARD KEY (consumer_group, topic, kafka_partition))",
            ", SHARD KEY (consumer_group, topic, kafka_partition))",
        ),
        Dialect::MariaDb => (
            "CREATE TABLE IF NOT EXISTS",
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ),
    };
    [
        format!(
            "{create} weir_offsets (
  consumer_group VARCHAR(255) NOT NULL,
  topic VARCHAR(255) NOT NULL,
  kafka_partition INT NOT NULL,
  next_offset BIGINT NOT NULL,
  rows_total BIGINT NOT NULL DEFAULT 0,
  filtered_total BIGINT NOT NULL DEFAULT 0,
  dead_letters_total BIGINT NOT NULL DEFAULT 0,
  updated_at DATETIME(6) NOT NULL,
  PRIMARY KEY (consumer_group, topic, kafka_partition){offsets_tail}"
        ),
        format!(
            "{create} weir_dead_letters (
  consumer_group VARCHAR(255) NOT NULL,
  topic VARCHAR(255) NOT NULL,
  kafka_partition INT NOT NULL,
  kafka_offset BIGINT NOT NULL,
  pipeline VARCHAR(255) NOT NULL,
  stage VARCHAR(255) NOT NULL,
  reason TEXT NOT NULL,
  kafka_key VARBINARY(1024) NULL,
  kafka_timestamp_ms BIGINT NULL,
  payload LONGBLOB NOT NULL,
  payload_size BIGINT NOT NULL,
  payload_sha256 CHAR(64) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  chain VARCHAR(2048) NULL,
  replayed_at DATETIME(6) NULL,
  replay_result VARCHAR(16) NULL,
  replay_attempts INT NOT NULL DEFAULT 0,
  PRIMARY KEY (consumer_group, topic, kafka_partition, kafka_offset){dl_tail}"
        ),
    ]
}

/// Columns added to Weir's own tables after their first release: a table
/// created by an older version gets them on start (`table`, `column`, definition).
pub const OWN_COLUMNS_ADDED: &[(&str, &str, &str)] = &[
    ("weir_dead_letters", "chain", "VARCHAR(2048) NULL"),
    ("weir_dead_letters", "replayed_at", "DATETIME(6) NULL"),
    ("weir_dead_letters", "replay_result", "VARCHAR(16) NULL"),
    (
        "weir_dead_letters",
        "replay_attempts",
        "INT NOT NULL DEFAULT 0",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_escape_what_mysql_needs() {
        assert_eq!(str_literal("a'b\\c\nd\0"), "'a\\'b\\\\c\\nd\\0'");
    }

    #[test]
    fn tsv_escapes_separators() {
        let mut out = Vec::new();
        push_tsv_escaped(&mut out, b"a\tb\nc\\d\re\0");
        assert_eq!(out, b"a\\tb\\nc\\\\d\\re\\0");
    }

    #[test]
    fn bytes_become_hex() {
        let mut s = String::new();
        push_bytes_literal(&mut s, &[0, 255, 16]);
        assert_eq!(s, "X'00ff10'");
    }

    #[test]
    fn load_data_statement_shape() {
        let sql = load_data("t", &["a".into(), "b".into()], "weir-1");
        assert_eq!(
            sql,
            "LOAD DATA LOCAL INFILE 'weir-1' INTO TABLE `t` FIELDS TERMINATED BY '\\t' \
             ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (`a`, `b`)"
        );
    }
}
