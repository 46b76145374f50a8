//! The sink's escaping against the real database: arbitrary strings (every
//! ASCII byte, the escape characters, multi-byte UTF-8) through `LOAD DATA`
//! and through `INSERT` literals, and arbitrary bytes through hex literals,
//! come back byte for byte. The `encoder` fuzz target checks the same escaping
//! against a model of the server for any input; this checks the model.

use futures_util::StreamExt as _;
use mysql_async::prelude::Queryable;
use rand::{Rng as _, SeedableRng as _};

use crate::support::{rt, serial, Scenario, Settings};

/// Strings that stress the escaping, then random ones.
fn strings() -> Vec<String> {
    let mut out: Vec<String> = [
        "",
        "\\",
        "\\N",
        "N",
        "\t",
        "\n",
        "\r",
        "\0",
        "'",
        "\"",
        "\\'",
        "\x1a",
        "\\\\t",
        "a\tb\nc\rd\0e'f\\g",
        "é€😀",
        "\u{2028}\u{2029}",
        "NULL",
        "\\0\\n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    out.push((0u8..128).map(char::from).collect());
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let pool: Vec<char> = (0u8..128)
        .map(char::from)
        .chain(['é', '€', '😀', '\u{ffff}', '\u{10ffff}', 'ß'])
        .collect();
    for _ in 0..2000 {
        let len = rng.random_range(0..48);
        out.push(
            (0..len)
                .map(|_| pool[rng.random_range(0..pool.len())])
                .collect(),
        );
    }
    out
}

#[test]
#[ignore = "needs Kafka and MariaDB: run scripts/test"]
fn sink_escaping_round_trips_through_the_database() {
    let _g = serial();
    let s = Scenario::new("escaping", Settings::default());
    s.exec(
        "CREATE TABLE rt (id INT PRIMARY KEY, t LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
         b LONGBLOB NULL)",
    );
    let values = strings();
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let blobs: Vec<Vec<u8>> = (0..values.len())
        .map(|_| (0..rng.random_range(0..64)).map(|_| rng.random()).collect())
        .collect();
    let read_back = |s: &Scenario| -> Vec<(i64, String, Option<Vec<u8>>)> {
        s.query("SELECT id, t, b FROM rt ORDER BY id")
    };
    rt().block_on(async {
        let pool = mysql_async::Pool::new(s.url().as_str());
        let mut conn = pool.get_conn().await.expect("connect");
        // LOAD DATA, as the sink streams rows.
        let mut rows = Vec::new();
        for (i, v) in values.iter().enumerate() {
            rows.extend_from_slice(i.to_string().as_bytes());
            rows.push(b'\t');
            weir::store::sql::push_tsv_escaped(&mut rows, v.as_bytes());
            rows.push(b'\n');
        }
        conn.set_infile_handler(async move {
            Ok(futures_util::stream::iter(vec![Ok(bytes::Bytes::from(rows))]).boxed())
        });
        conn.query_drop(weir::store::sql::load_data(
            "rt",
            &["id".into(), "t".into()],
            "rows",
        ))
        .await
        .expect("LOAD DATA");
        assert_eq!(conn.get_warnings(), 0, "LOAD DATA warned");
        drop(conn);
        pool.disconnect().await.expect("disconnect");
    });
    let loaded = read_back(&s);
    assert_eq!(loaded.len(), values.len());
    for ((id, t, _), want) in loaded.iter().zip(&values) {
        assert_eq!(t, want, "LOAD DATA changed value {id}");
    }
    s.exec("DELETE FROM rt");
    rt().block_on(async {
        let pool = mysql_async::Pool::new(s.url().as_str());
        let mut conn = pool.get_conn().await.expect("connect");
        for chunk in (0..values.len()).collect::<Vec<_>>().chunks(200) {
            let mut sql = String::from("INSERT INTO rt (id, t, b) VALUES ");
            for (n, &i) in chunk.iter().enumerate() {
                if n > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("({i}, "));
                weir::store::sql::push_str_literal(&mut sql, &values[i]);
                sql.push_str(", ");
                weir::store::sql::push_bytes_literal(&mut sql, &blobs[i]);
                sql.push(')');
            }
            conn.query_drop(sql).await.expect("INSERT");
            assert_eq!(conn.get_warnings(), 0, "INSERT warned");
        }
        drop(conn);
        pool.disconnect().await.expect("disconnect");
    });
    let inserted = read_back(&s);
    assert_eq!(inserted.len(), values.len());
    for ((id, t, b), (want, blob)) in inserted.iter().zip(values.iter().zip(&blobs)) {
        assert_eq!(t, want, "INSERT changed value {id}");
        assert_eq!(
            b.as_deref().unwrap_or_default(),
            &blob[..],
            "INSERT changed bytes {id}"
        );
    }
}
