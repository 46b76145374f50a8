//! An archive file's columns, the rows of one open file in column buffers,
//! and the two encodings: Parquet and gzip'd JSON lines.
//!
//! Every file starts with the record's own columns, `kafka_partition`,
//! `kafka_offset`, `kafka_timestamp` (Kafka's, UTC milliseconds) and
//! `kafka_key`. Then either the declared fields and the chain's writes, typed,
//! or, when the pipeline declares no fields, `payload`: the record's bytes as
//! they came, and any fields the chain writes.

use std::borrow::Cow;
use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::{Compression, LogicalType, Repetition, Type as Physical, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use serde_json::Value;

use crate::chain::fields::Fields;
use crate::config::{ArchiveCompression, FieldType};

/// The record's own columns; no field may take these names.
pub const RECORD_COLUMNS: &[&str] = &[
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "kafka_key",
    "payload",
];

/// A column's type in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int32,
    Int64,
    /// Milliseconds since the epoch, UTC.
    TimestampMs,
    Float64,
    Boolean,
    /// UTF-8 text.
    Text,
    /// JSON text, kept as it came (a string in the file).
    Json,
    /// Bytes as they came.
    Binary,
}

/// Where a column's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Partition,
    Offset,
    Timestamp,
    Key,
    Payload,
    /// A field: the decoder's slot (or the chain's addition of that name).
    Field(usize),
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    pub optional: bool,
    pub from: From,
}

/// The columns of an archive's files, and the fields its decoder finds.
#[derive(Debug, Clone)]
pub struct Layout {
    pub columns: Vec<Column>,
    /// The decoder's field names, by slot.
    pub names: Vec<String>,
    /// The slot of the event-time field, unless the time is Kafka's.
    pub time_slot: Option<usize>,
    /// Whether the payload must be a JSON object (fields or a time field are read).
    pub decodes: bool,
}

impl Layout {
    /// The layout for `fields` (what [`crate::chain::fields::chain_fields`]
    /// found: the declared fields, if any, and the steps' writes) and an
    /// event-time field (`@timestamp` for Kafka's).
    pub fn new(fields: &Fields, declared: bool, time_field: &str) -> Result<Layout, String> {
        let mut columns = vec![
            record_column("kafka_partition", Kind::Int32, false, From::Partition),
            record_column("kafka_offset", Kind::Int64, false, From::Offset),
            record_column("kafka_timestamp", Kind::TimestampMs, true, From::Timestamp),
            record_column("kafka_key", Kind::Binary, true, From::Key),
        ];
        if !declared {
            columns.push(record_column("payload", Kind::Binary, false, From::Payload));
        }
        let mut names = Vec::new();
        for (name, f) in fields {
            if RECORD_COLUMNS.contains(&name.as_str()) {
                return Err(format!(
                    "field `{name}` ({}) has the name of a column every archive file has; rename it in a step or leave it undeclared",
                    f.origin
                ));
            }
            columns.push(Column {
                name: name.clone(),
                kind: match f.ty {
                    FieldType::Text => Kind::Text,
                    FieldType::Int => Kind::Int64,
                    FieldType::Float => Kind::Float64,
                    FieldType::Boolean => Kind::Boolean,
                    FieldType::Json => Kind::Json,
                },
                optional: true,
                from: From::Field(names.len()),
            });
            names.push(name.clone());
        }
        let time_slot = if time_field == "@timestamp" {
            None
        } else if let Some(i) = names.iter().position(|n| n == time_field) {
            Some(i)
        } else {
            names.push(time_field.to_owned());
            Some(names.len() - 1)
        };
        Ok(Layout {
            columns,
            decodes: declared || time_slot.is_some(),
            names,
            time_slot,
        })
    }
}

fn record_column(name: &str, kind: Kind, optional: bool, from: From) -> Column {
    Column {
        name: name.into(),
        kind,
        optional,
        from,
    }
}

/// A value on its way into a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Null,
    I32(i32),
    I64(i64),
    F64(f64),
    Bool(bool),
    Bytes(Cow<'a, [u8]>),
}

/// A field's raw JSON text (or a step's value) as a value of `kind`; the error
/// says what was found instead.
pub fn from_json_text(text: &str, kind: Kind) -> Result<Val<'_>, String> {
    if text == "null" {
        return Ok(Val::Null);
    }
    let found = || {
        format!(
            "expected {}, found {}",
            kind_name(kind),
            crate::event::convert::JsonKind::of(text)
        )
    };
    match kind {
        Kind::Text => {
            if !text.starts_with('"') {
                return Err(found());
            }
            let inner = &text[1..text.len() - 1];
            if inner.contains('\\') {
                let s: String = serde_json::from_str(text).map_err(|e| e.to_string())?;
                Ok(Val::Bytes(Cow::Owned(s.into_bytes())))
            } else {
                Ok(Val::Bytes(Cow::Borrowed(inner.as_bytes())))
            }
        }
        Kind::Int64 | Kind::TimestampMs => match text.parse::<i64>() {
            Ok(v) => Ok(Val::I64(v)),
            Err(_) if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
                Err(format!("{text} is not an integer in the 64-bit range"))
            }
            Err(_) => Err(found()),
        },
        Kind::Float64 => {
            if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
                return Err(found());
            }
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Val::F64(v)),
                _ => Err(format!("{text} is out of the 64-bit float range")),
            }
        }
        Kind::Boolean => match text {
            "true" => Ok(Val::Bool(true)),
            "false" => Ok(Val::Bool(false)),
            _ => Err(found()),
        },
        Kind::Json => Ok(Val::Bytes(Cow::Borrowed(text.as_bytes()))),
        Kind::Int32 | Kind::Binary => Err(found()),
    }
}

/// A step's value as a value of `kind`.
pub fn from_value(v: &Value, kind: Kind) -> Result<Val<'static>, String> {
    match (v, kind) {
        (Value::Null, _) => Ok(Val::Null),
        (Value::String(s), Kind::Text) => Ok(Val::Bytes(Cow::Owned(s.clone().into_bytes()))),
        (v, Kind::Json) => Ok(Val::Bytes(Cow::Owned(v.to_string().into_bytes()))),
        (v, kind) => from_json_text(&v.to_string(), kind).map(|v| match v {
            Val::Bytes(b) => Val::Bytes(Cow::Owned(b.into_owned())),
            Val::Null => Val::Null,
            Val::I32(x) => Val::I32(x),
            Val::I64(x) => Val::I64(x),
            Val::F64(x) => Val::F64(x),
            Val::Bool(x) => Val::Bool(x),
        }),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Int32 | Kind::Int64 => "an integer",
        Kind::TimestampMs => "epoch milliseconds",
        Kind::Float64 => "a number",
        Kind::Boolean => "a boolean",
        Kind::Text => "text",
        Kind::Json => "JSON",
        Kind::Binary => "bytes",
    }
}

/// One column's values; nulls are only in `defs` (0), as Parquet keeps them.
#[derive(Debug, Default)]
struct Buf {
    defs: Vec<i16>,
    ints: Vec<i64>,
    floats: Vec<f64>,
    bools: Vec<bool>,
    data: Vec<u8>,
    ends: Vec<usize>,
}

/// How far each buffer of a column was filled, to undo a half-pushed row.
#[derive(Debug, Clone, Copy)]
struct Mark {
    defs: usize,
    ints: usize,
    floats: usize,
    bools: usize,
    data: usize,
    ends: usize,
}

impl Buf {
    fn mark(&self) -> Mark {
        Mark {
            defs: self.defs.len(),
            ints: self.ints.len(),
            floats: self.floats.len(),
            bools: self.bools.len(),
            data: self.data.len(),
            ends: self.ends.len(),
        }
    }

    fn undo(&mut self, m: Mark) {
        self.defs.truncate(m.defs);
        self.ints.truncate(m.ints);
        self.floats.truncate(m.floats);
        self.bools.truncate(m.bools);
        self.data.truncate(m.data);
        self.ends.truncate(m.ends);
    }

    fn push(&mut self, v: &Val<'_>) {
        match v {
            Val::Null => {
                self.defs.push(0);
                return;
            }
            Val::I32(x) => self.ints.push(i64::from(*x)),
            Val::I64(x) => self.ints.push(*x),
            Val::F64(x) => self.floats.push(*x),
            Val::Bool(x) => self.bools.push(*x),
            Val::Bytes(b) => {
                self.data.extend_from_slice(b);
                self.ends.push(self.data.len());
            }
        }
        self.defs.push(1);
    }

    fn bytes(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }
}

/// The rows of one open file.
#[derive(Debug)]
pub struct Rows {
    cols: Vec<Buf>,
    rows: usize,
    marks: Vec<Mark>,
}

impl Rows {
    pub fn new(layout: &Layout) -> Rows {
        Rows {
            cols: layout.columns.iter().map(|_| Buf::default()).collect(),
            rows: 0,
            marks: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Starts a row: [`Rows::push`] each column's value in order, then
    /// [`Rows::end_row`] or [`Rows::undo_row`].
    pub fn begin_row(&mut self) {
        self.marks.clear();
        self.marks.extend(self.cols.iter().map(Buf::mark));
    }

    pub fn push(&mut self, column: usize, v: &Val<'_>) {
        self.cols[column].push(v);
    }

    pub fn end_row(&mut self) {
        self.rows += 1;
    }

    pub fn undo_row(&mut self) {
        for (c, m) in self.cols.iter_mut().zip(&self.marks) {
            c.undo(*m);
        }
    }
}

/// `rows` as a Parquet file: one row group, the given page compression.
pub fn parquet(
    layout: &Layout,
    rows: Rows,
    compression: ArchiveCompression,
) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let fields = layout
        .columns
        .iter()
        .map(|c| {
            let (physical, logical) = match c.kind {
                Kind::Int32 => (Physical::INT32, None),
                Kind::Int64 => (Physical::INT64, None),
                Kind::TimestampMs => (
                    Physical::INT64,
                    Some(LogicalType::timestamp(
                        true,
                        parquet::basic::TimeUnit::MILLIS,
                    )),
                ),
                Kind::Float64 => (Physical::DOUBLE, None),
                Kind::Boolean => (Physical::BOOLEAN, None),
                Kind::Text | Kind::Json => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
                Kind::Binary => (Physical::BYTE_ARRAY, None),
            };
            Type::primitive_type_builder(&c.name, physical)
                .with_repetition(if c.optional {
                    Repetition::OPTIONAL
                } else {
                    Repetition::REQUIRED
                })
                .with_logical_type(logical)
                .build()
                .map(Arc::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let schema = Arc::new(
        Type::group_type_builder("weir_archive")
            .with_fields(fields)
            .build()?,
    );
    let props = WriterProperties::builder()
        .set_compression(match compression {
            ArchiveCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
            ArchiveCompression::Snappy => Compression::SNAPPY,
            ArchiveCompression::None => Compression::UNCOMPRESSED,
        })
        .set_created_by(format!("weir {}", env!("CARGO_PKG_VERSION")))
        .set_max_row_group_row_count(Some(rows.rows.max(1)))
        .build();
    let mut out = Vec::new();
    let mut w = SerializedFileWriter::new(&mut out, schema, Arc::new(props))?;
    let mut rg = w.next_row_group()?;
    for (buf, column) in rows.cols.into_iter().zip(&layout.columns) {
        let Some(mut cw) = rg.next_column()? else {
            break;
        };
        let defs = column.optional.then_some(&buf.defs[..]);
        match column.kind {
            Kind::Int32 => {
                let v: Vec<i32> = buf.ints.iter().map(|&x| x as i32).collect();
                cw.typed::<Int32Type>().write_batch(&v, defs, None)?;
            }
            Kind::Int64 | Kind::TimestampMs => {
                cw.typed::<Int64Type>().write_batch(&buf.ints, defs, None)?;
            }
            Kind::Float64 => {
                cw.typed::<DoubleType>()
                    .write_batch(&buf.floats, defs, None)?;
            }
            Kind::Boolean => {
                cw.typed::<BoolType>().write_batch(&buf.bools, defs, None)?;
            }
            Kind::Text | Kind::Json | Kind::Binary => {
                let ends = buf.ends;
                let data = Bytes::from(buf.data);
                let mut start = 0;
                let values: Vec<ByteArray> = ends
                    .iter()
                    .map(|&end| {
                        let v = ByteArray::from(data.slice(start..end));
                        start = end;
                        v
                    })
                    .collect();
                cw.typed::<ByteArrayType>()
                    .write_batch(&values, defs, None)?;
            }
        }
        cw.close()?;
    }
    rg.close()?;
    w.close()?;
    Ok(out)
}

/// `rows` as gzip'd JSON lines, one object per row with every column; bytes
/// columns (`kafka_key`, `payload`) as JSON strings, which the writer made
/// sure are UTF-8.
pub fn json_lines(layout: &Layout, rows: &Rows) -> std::io::Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Per column: the next value's index in its buffer.
    let mut next = vec![0usize; layout.columns.len()];
    let mut line = Vec::with_capacity(1024);
    for r in 0..rows.rows {
        line.clear();
        line.push(b'{');
        for (c, col) in layout.columns.iter().enumerate() {
            if c > 0 {
                line.push(b',');
            }
            serde_json::to_writer(&mut line, &col.name)?;
            line.push(b':');
            let buf = &rows.cols[c];
            if buf.defs[r] == 0 {
                line.extend_from_slice(b"null");
                continue;
            }
            let i = next[c];
            next[c] += 1;
            match col.kind {
                Kind::Int32 | Kind::Int64 | Kind::TimestampMs => {
                    line.extend_from_slice(itoa::Buffer::new().format(buf.ints[i]).as_bytes())
                }
                Kind::Float64 => serde_json::to_writer(&mut line, &buf.floats[i])?,
                Kind::Boolean => {
                    line.extend_from_slice(if buf.bools[i] { b"true" } else { b"false" })
                }
                Kind::Json => line.extend_from_slice(buf.bytes(i)),
                Kind::Text | Kind::Binary => {
                    let text = String::from_utf8_lossy(buf.bytes(i));
                    serde_json::to_writer(&mut line, &text)?;
                }
            }
        }
        line.extend_from_slice(b"}\n");
        gz.write_all(&line)?;
    }
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::fields::{FieldInfo, Origin};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;

    fn fields(list: &[(&str, FieldType)]) -> Fields {
        list.iter()
            .map(|(n, t)| {
                (
                    n.to_string(),
                    FieldInfo {
                        ty: *t,
                        nullable: true,
                        origin: Origin::Source,
                    },
                )
            })
            .collect()
    }

    fn row(rows: &mut Rows, vals: &[Val<'_>]) {
        rows.begin_row();
        for (c, v) in vals.iter().enumerate() {
            rows.push(c, v);
        }
        rows.end_row();
    }

    #[test]
    fn typed_rows_read_back_from_parquet_with_nulls_in_place() {
        let f = fields(&[("n", FieldType::Int), ("s", FieldType::Text)]);
        let layout = Layout::new(&f, true, "@timestamp").unwrap();
        let names: Vec<_> = layout.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "kafka_partition",
                "kafka_offset",
                "kafka_timestamp",
                "kafka_key",
                "n",
                "s"
            ]
        );
        let mut rows = Rows::new(&layout);
        let b = |s: &'static str| Val::Bytes(Cow::Borrowed(s.as_bytes()));
        row(
            &mut rows,
            &[
                Val::I32(3),
                Val::I64(10),
                Val::I64(1_700_000_000_000),
                Val::Null,
                Val::I64(-5),
                b("é\t\"x"),
            ],
        );
        // A row given up half way leaves nothing behind.
        rows.begin_row();
        rows.push(0, &Val::I32(3));
        rows.push(1, &Val::I64(11));
        rows.undo_row();
        row(
            &mut rows,
            &[
                Val::I32(3),
                Val::I64(12),
                Val::Null,
                b("k"),
                Val::Null,
                Val::Null,
            ],
        );
        assert_eq!(rows.len(), 2);
        let bytes = parquet(&layout, rows, ArchiveCompression::Zstd).unwrap();
        let reader = SerializedFileReader::new(Bytes::from(bytes)).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
        let got: Vec<_> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(got[0].get_long(1).unwrap(), 10);
        assert_eq!(got[0].get_long(4).unwrap(), -5);
        assert_eq!(got[0].get_string(5).unwrap(), "é\t\"x");
        assert_eq!(got[1].get_long(1).unwrap(), 12);
        assert!(got[1].get_long(4).is_err(), "null stays null: {:?}", got[1]);
        assert_eq!(got[1].get_bytes(3).unwrap().data(), b"k");
    }

    #[test]
    fn json_lines_hold_every_column_per_row() {
        let layout = Layout::new(&Fields::new(), false, "@timestamp").unwrap();
        let mut rows = Rows::new(&layout);
        let payload = br#"{"a":1}"#;
        row(
            &mut rows,
            &[
                Val::I32(0),
                Val::I64(7),
                Val::Null,
                Val::Null,
                Val::Bytes(Cow::Borrowed(payload)),
            ],
        );
        let gz = json_lines(&layout, &rows).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
            .unwrap();
        assert_eq!(
            text,
            "{\"kafka_partition\":0,\"kafka_offset\":7,\"kafka_timestamp\":null,\"kafka_key\":null,\"payload\":\"{\\\"a\\\":1}\"}\n"
        );
    }

    #[test]
    fn field_text_converts_strictly_and_says_what_it_found() {
        assert_eq!(from_json_text("12", Kind::Int64), Ok(Val::I64(12)));
        assert!(from_json_text("12.5", Kind::Int64)
            .unwrap_err()
            .contains("not an integer"));
        assert!(from_json_text("\"12\"", Kind::Int64)
            .unwrap_err()
            .contains("found string"));
        assert!(from_json_text("99999999999999999999", Kind::Int64).is_err());
        assert_eq!(
            from_json_text(r#""a\"b""#, Kind::Text),
            Ok(Val::Bytes(Cow::Owned(b"a\"b".to_vec())))
        );
        assert!(from_json_text("1e999", Kind::Float64).is_err());
        assert_eq!(from_json_text("null", Kind::Boolean), Ok(Val::Null));
        assert!(from_json_text("1", Kind::Boolean).is_err());
    }

    #[test]
    fn a_field_may_not_take_a_record_column_name() {
        let f = fields(&[("kafka_offset", FieldType::Int)]);
        assert!(Layout::new(&f, true, "@timestamp")
            .unwrap_err()
            .contains("kafka_offset"));
    }
}
