//! The row encoder's escaping, against a model of how MySQL and SingleStore
//! read it back: any bytes in a `LOAD DATA` field (TERMINATED BY '\t' ESCAPED
//! BY '\\', LINES TERMINATED BY '\n'), and any string in a quoted literal, come
//! back byte for byte, and never end a field, a row or a literal early. The
//! same round trip runs against the real database in the end-to-end tests
//! (`sink_escaping_round_trips_through_the_database`).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Splits a LOAD DATA row into fields and unescapes them as the server does.
fn load_data_fields(row: &[u8]) -> Vec<Vec<u8>> {
    let mut fields = vec![Vec::new()];
    let mut bytes = row.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => {
                let next = *bytes.next().expect("an escape at the end of a row");
                fields.last_mut().unwrap().push(match next {
                    b'0' => 0,
                    b'b' => 8,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'Z' => 0x1a,
                    b'N' => panic!("\\N would read as NULL"),
                    other => other,
                });
            }
            b'\t' => fields.push(Vec::new()),
            b'\n' => panic!("a raw newline ends the row early"),
            other => fields.last_mut().unwrap().push(other),
        }
    }
    fields
}

/// Reads a single-quoted literal with backslash escapes, as the server does.
fn literal(text: &str) -> String {
    let inner = text
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .expect("quoted");
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(match chars.next().expect("an escape at the end") {
                '0' => '\0',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'b' => '\x08',
                'Z' => '\x1a',
                other => other,
            }),
            '\'' => panic!("an unescaped quote ends the literal early"),
            c => out.push(c),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let (a, b) = data.split_at(data.len() / 2);
    let mut row = Vec::new();
    weir::store::sql::push_tsv_escaped(&mut row, a);
    row.push(b'\t');
    weir::store::sql::push_tsv_escaped(&mut row, b);
    assert_eq!(load_data_fields(&row), [a.to_vec(), b.to_vec()]);
    let text = String::from_utf8_lossy(data);
    assert_eq!(literal(&weir::store::sql::str_literal(&text)), text);
});
