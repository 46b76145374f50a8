//! The archive's conversion of untrusted records into typed columns: records
//! (the input split at 0xFF bytes) decoded for five fields of each type; what
//! converts is written to a Parquet file, which must read back with the same
//! values, text exactly as serde_json unescapes it; what does not convert is
//! refused with a reason and leaves nothing behind. Event times from any text
//! never panic and stay within what they claim.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use weir::archive::files::{from_json_text, parquet, Kind, Layout, Rows, Val};
use weir::chain::fields::{FieldInfo, Origin};
use weir::config::{ArchiveCompression, FieldType};
use weir::event::convert::Decoder;

fuzz_target!(|data: &[u8]| {
    let fields: BTreeMap<String, FieldInfo> = [
        ("b", FieldType::Boolean),
        ("f", FieldType::Float),
        ("i", FieldType::Int),
        ("j", FieldType::Json),
        ("t", FieldType::Text),
    ]
    .into_iter()
    .map(|(n, ty)| {
        let info = FieldInfo { ty, nullable: true, origin: Origin::Source };
        (n.to_owned(), info)
    })
    .collect();
    let layout = Layout::new(&fields, true, "@timestamp").expect("layout");
    let decoder = Decoder::new(layout.names.clone());
    let mut rows = Rows::new(&layout);
    let mut expected: Vec<Vec<Field>> = Vec::new();
    let mut slots = Vec::new();
    for (n, record) in data.split(|b| *b == 0xFF).enumerate() {
        if let Ok(text) = std::str::from_utf8(record) {
            let _ = weir::archive::writer::event_time(text);
        }
        if decoder.decode(record, &mut slots).is_err() {
            continue;
        }
        rows.begin_row();
        rows.push(0, &Val::I32(0));
        rows.push(1, &Val::I64(n as i64));
        rows.push(2, &Val::Null);
        rows.push(3, &Val::Null);
        let mut want = vec![Field::Int(0), Field::Long(n as i64), Field::Null, Field::Null];
        let mut ok = true;
        for (c, col) in layout.columns.iter().enumerate().skip(4) {
            let weir::archive::files::From::Field(slot) = col.from else { unreachable!() };
            let v = match slots[slot] {
                Some(text) => from_json_text(text, col.kind),
                None => Ok(Val::Null),
            };
            match v {
                Ok(v) => {
                    want.push(expect(&v, col.kind, slots[slot]));
                    rows.push(c, &v);
                }
                Err(reason) => {
                    assert!(!reason.is_empty());
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            rows.end_row();
            expected.push(want);
        } else {
            rows.undo_row();
        }
    }
    assert_eq!(rows.len(), expected.len());
    let bytes = parquet(&layout, rows, ArchiveCompression::Zstd).expect("encodes");
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).expect("reads");
    let got: Vec<Vec<Field>> = reader
        .get_row_iter(None)
        .expect("rows")
        .map(|r| r.expect("row").into_columns().into_iter().map(|(_, f)| f).collect())
        .collect();
    assert_eq!(got, expected);
});

/// What Parquet gives back for a value written to a column of `kind`.
fn expect(v: &Val<'_>, kind: Kind, text: Option<&str>) -> Field {
    match (v, kind) {
        (Val::Null, _) => Field::Null,
        (Val::I64(x), _) => Field::Long(*x),
        (Val::F64(x), _) => Field::Double(*x),
        (Val::Bool(x), _) => Field::Bool(*x),
        (Val::Bytes(b), Kind::Text) => {
            let s: String = serde_json::from_str(text.expect("a value")).expect("a JSON string");
            assert_eq!(s.as_bytes(), &b[..], "text as serde_json unescapes it");
            Field::Str(s)
        }
        (Val::Bytes(b), _) => Field::Str(String::from_utf8(b.to_vec()).expect("JSON text")),
        (Val::I32(x), _) => Field::Int(*x),
    }
}
