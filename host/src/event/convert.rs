//! From JSON payloads to table cells, by explicit rules, checked before anything
//! is written.
//!
//! The rules, by column type:
//! - integer columns take JSON integers in the column's range, and booleans as 0/1;
//! - `FLOAT`/`DOUBLE` take any finite JSON number; `DECIMAL(p,s)` takes numbers whose
//!   digits fit `p` and `s`;
//! - text and binary columns take strings (length checked in characters or bytes),
//!   numbers and booleans as their JSON text, objects and arrays as compact JSON text;
//! - `DATETIME`/`TIMESTAMP` take integers as milliseconds since the Unix epoch and
//!   strings as `YYYY-MM-DD HH:MM:SS[.ffffff]` or RFC 3339, stored in UTC; `DATE`
//!   likewise, keeping the date;
//! - a missing field or JSON `null` becomes `NULL` where the column allows it.
//!
//! Anything else is a [`CellError`], and its event a dead letter naming the column.
//!
//! Payloads are not parsed into documents: [`Decoder`] scans each object once and
//! keeps only the raw text of the fields the columns need.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The type of a target column, as read from `information_schema.columns`.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlType {
    /// An integer type with its range.
    Int { min: i128, max: i128 },
    /// `FLOAT`, `DOUBLE`, `REAL`.
    Float,
    /// `DECIMAL(precision, scale)`.
    Decimal { precision: u32, scale: u32 },
    /// Character types, with their length limit in characters.
    Text { max_chars: Option<u64> },
    /// Binary types, with their length limit in bytes.
    Binary { max_bytes: Option<u64> },
    /// `JSON` (text underneath in both dialects).
    Json,
    /// `DATETIME` or `TIMESTAMP` with fractional digits.
    DateTime { fraction: u32, timestamp: bool },
    /// `DATE`.
    Date,
    /// Anything Weir has no rule for.
    Unsupported(String),
}

impl SqlType {
    /// Maps `information_schema.columns` facts to a type.
    pub fn from_schema(
        data_type: &str,
        column_type: &str,
        char_len: Option<u64>,
        precision: Option<u64>,
        scale: Option<u64>,
        datetime_precision: Option<u64>,
    ) -> SqlType {
        let unsigned = column_type.to_ascii_lowercase().contains("unsigned");
        let int = |bits: u32| {
            if unsigned {
                SqlType::Int {
                    min: 0,
                    max: (1i128 << bits) - 1,
                }
            } else {
                SqlType::Int {
                    min: -(1i128 << (bits - 1)),
                    max: (1i128 << (bits - 1)) - 1,
                }
            }
        };
        match data_type.to_ascii_lowercase().as_str() {
            "tinyint" | "bool" | "boolean" => int(8),
            "smallint" => int(16),
            "mediumint" => int(24),
            "int" | "integer" => int(32),
            "bigint" => int(64),
            "float" | "double" | "real" => SqlType::Float,
            "decimal" | "numeric" => SqlType::Decimal {
                precision: precision.unwrap_or(10) as u32,
                scale: scale.unwrap_or(0) as u32,
            },
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => SqlType::Text {
                max_chars: char_len,
            },
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                SqlType::Binary {
                    max_bytes: char_len,
                }
            }
            "json" => SqlType::Json,
            "datetime" | "timestamp" => SqlType::DateTime {
                fraction: datetime_precision.unwrap_or(0) as u32,
                timestamp: data_type.eq_ignore_ascii_case("timestamp"),
            },
            "date" => SqlType::Date,
            other => SqlType::Unsupported(other.to_owned()),
        }
    }
}

/// A converted value, ready to be written as TSV or as an SQL literal.
#[derive(Debug, PartialEq)]
pub enum Cell<'a> {
    Null,
    Int(i128),
    Float(f64),
    /// Text written as is (numbers' own text, JSON text, strings).
    Text(Cow<'a, str>),
    /// `YYYY-MM-DD HH:MM:SS` with `fraction` digits (0, 3 or 6), in UTC.
    DateTime {
        at: NaiveDateTime,
        fraction: u8,
    },
    /// `YYYY-MM-DD`.
    Date(NaiveDate),
}

/// Appends `v` in decimal, without the formatting machinery (it runs per
/// value of every row).
pub fn push_int_bytes(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends `v` in decimal.
pub fn push_int(out: &mut String, v: i64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Appends `n` as exactly `width` decimal digits.
fn push_digits(out: &mut Vec<u8>, mut n: u32, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

fn push_date(out: &mut Vec<u8>, d: NaiveDate) {
    push_digits(out, d.year().max(0) as u32, 4);
    out.push(b'-');
    push_digits(out, d.month(), 2);
    out.push(b'-');
    push_digits(out, d.day(), 2);
}

fn push_datetime(out: &mut Vec<u8>, at: NaiveDateTime, fraction: u8) {
    push_date(out, at.date());
    out.push(b' ');
    push_digits(out, at.hour(), 2);
    out.push(b':');
    push_digits(out, at.minute(), 2);
    out.push(b':');
    push_digits(out, at.second(), 2);
    let nanos = at.nanosecond() % 1_000_000_000;
    match fraction {
        0 => {}
        3 => {
            out.push(b'.');
            push_digits(out, nanos / 1_000_000, 3);
        }
        _ => {
            out.push(b'.');
            push_digits(out, nanos / 1_000, 6);
        }
    }
}

impl Cell<'_> {
    /// Appends this cell as a `LOAD DATA` field (`\N` for NULL).
    pub fn push_tsv(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        match self {
            Cell::Null => out.extend_from_slice(b"\\N"),
            Cell::Int(i) => match i64::try_from(*i) {
                Ok(small) => push_int_bytes(out, small),
                Err(_) => {
                    let _ = write!(out, "{i}");
                }
            },
            Cell::Float(f) => {
                let _ = write!(out, "{f:?}");
            }
            Cell::Text(s) => crate::store::sql::push_tsv_escaped(out, s.as_bytes()),
            Cell::DateTime { at, fraction } => push_datetime(out, *at, *fraction),
            Cell::Date(d) => push_date(out, *d),
        }
    }

    /// Appends this cell as an SQL literal.
    pub fn push_sql(&self, out: &mut String) {
        use std::fmt::Write as _;
        match self {
            Cell::Null => out.push_str("NULL"),
            Cell::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Cell::Float(f) => {
                let _ = write!(out, "{f:?}");
            }
            Cell::Text(s) => crate::store::sql::push_str_literal(out, s),
            Cell::DateTime { .. } | Cell::Date(_) => {
                let mut text = Vec::with_capacity(32);
                self.push_tsv(&mut text);
                out.push('\'');
                out.push_str(std::str::from_utf8(&text).unwrap_or_default());
                out.push('\'');
            }
        }
    }
}

/// Why a value does not fit its column.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CellError {
    #[error("is NOT NULL but the value is missing or null")]
    Null,
    #[error("expected {expected}, found {found}")]
    Type {
        expected: &'static str,
        found: String,
    },
    #[error("{value} is out of range [{min}, {max}]")]
    Range { value: String, min: i128, max: i128 },
    #[error("{len} characters exceed the limit of {max}")]
    TooLong { len: u64, max: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error("has type `{0}`, which weir cannot write")]
    Unsupported(String),
}

/// Converts one JSON value (its raw text, which must be valid JSON, or `None`
/// when absent) for a column.
pub fn convert<'a>(
    raw: Option<&'a str>,
    ty: &SqlType,
    nullable: bool,
) -> Result<Cell<'a>, CellError> {
    let text = raw.unwrap_or("null");
    let kind = JsonKind::of(text);
    if kind == JsonKind::Null {
        return if nullable {
            Ok(Cell::Null)
        } else {
            Err(CellError::Null)
        };
    }
    match ty {
        SqlType::Int { min, max } => {
            let v: i128 = match kind {
                JsonKind::Bool => i128::from(text == "true"),
                JsonKind::Number => match text.parse::<i128>() {
                    Ok(v) => v,
                    Err(_) => return Err(type_err("an integer", text, kind)),
                },
                _ => return Err(type_err("an integer", text, kind)),
            };
            if v < *min || v > *max {
                return Err(CellError::Range {
                    value: text.to_owned(),
                    min: *min,
                    max: *max,
                });
            }
            Ok(Cell::Int(v))
        }
        SqlType::Float => match kind {
            JsonKind::Number => match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Cell::Float(f)),
                _ => Err(CellError::Invalid(format!("{text} is not a finite number"))),
            },
            _ => Err(type_err("a number", text, kind)),
        },
        SqlType::Decimal { precision, scale } => match kind {
            JsonKind::Number => check_decimal(text, *precision, *scale).map(Cell::Text),
            _ => Err(type_err("a number", text, kind)),
        },
        SqlType::Text { max_chars } => {
            let s = as_text(text, kind)?;
            // A string has at most as many characters as bytes: count only when needed.
            if let Some(max) = max_chars.filter(|max| s.len() as u64 > *max) {
                let len = s.chars().count() as u64;
                if len > max {
                    return Err(CellError::TooLong { len, max });
                }
            }
            Ok(Cell::Text(s))
        }
        SqlType::Binary { max_bytes } => {
            let s = as_text(text, kind)?;
            if let Some(max) = max_bytes {
                let len = s.len() as u64;
                if len > *max {
                    return Err(CellError::TooLong { len, max: *max });
                }
            }
            Ok(Cell::Text(s))
        }
        SqlType::Json => Ok(Cell::Text(compact_json(text, kind)?)),
        SqlType::DateTime {
            fraction,
            timestamp,
        } => {
            let dt = parse_datetime(text, kind)?;
            let year = dt.and_utc().timestamp();
            let (lo, hi) = if *timestamp {
                (1, 2_147_483_647)
            } else {
                (-30_610_224_000, 253_402_300_799) // 1000-01-01 .. 9999-12-31
            };
            if year < lo || year > hi {
                return Err(CellError::Invalid(format!(
                    "{dt} is outside the column's range"
                )));
            }
            let fraction = match fraction {
                0 => 0,
                1..=3 => 3,
                _ => 6,
            };
            Ok(Cell::DateTime { at: dt, fraction })
        }
        SqlType::Date => Ok(Cell::Date(parse_datetime(text, kind)?.date())),
        SqlType::Unsupported(t) => Err(CellError::Unsupported(t.clone())),
    }
}

/// The kind of a JSON value, from its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl JsonKind {
    /// The kind of raw JSON text (which must be valid).
    pub fn of(text: &str) -> JsonKind {
        match text.trim_start().as_bytes().first() {
            Some(b'n') | None => JsonKind::Null,
            Some(b't' | b'f') => JsonKind::Bool,
            Some(b'"') => JsonKind::String,
            Some(b'[') => JsonKind::Array,
            Some(b'{') => JsonKind::Object,
            _ => JsonKind::Number,
        }
    }

    /// The word used in messages.
    pub fn name(self) -> &'static str {
        match self {
            JsonKind::Null => "null",
            JsonKind::Bool => "boolean",
            JsonKind::Number => "number",
            JsonKind::String => "string",
            JsonKind::Array => "array",
            JsonKind::Object => "object",
        }
    }
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn type_err(expected: &'static str, text: &str, kind: JsonKind) -> CellError {
    let mut shown: String = text.chars().take(40).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    CellError::Type {
        expected,
        found: format!("{kind} {shown}"),
    }
}

fn as_text(text: &str, kind: JsonKind) -> Result<Cow<'_, str>, CellError> {
    match kind {
        JsonKind::String => match crate::event::scan::plain_string(text) {
            Some(plain) => Ok(Cow::Borrowed(plain)),
            None => serde_json::from_str::<Cow<'_, str>>(text)
                .map_err(|e| CellError::Invalid(format!("bad string: {e}"))),
        },
        JsonKind::Array | JsonKind::Object => compact_json(text, kind),
        _ => Ok(Cow::Borrowed(text.trim())),
    }
}

/// Objects and arrays without the whitespace between tokens, otherwise as
/// written: key order, duplicate keys and number spellings are kept (the text
/// is valid JSON already). Not through `serde_json::Value`, which would sort
/// keys and read serde_json's own token names (`$serde_json::private::…`) as
/// other values.
fn compact_json(text: &str, kind: JsonKind) -> Result<Cow<'_, str>, CellError> {
    if !matches!(kind, JsonKind::Array | JsonKind::Object)
        || !text.contains(['\n', ' ', '\t', '\r'])
    {
        return Ok(Cow::Borrowed(text.trim()));
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\t' | '\r') {
            out.push(c);
        }
    }
    Ok(Cow::Owned(out))
}

fn check_decimal(text: &str, precision: u32, scale: u32) -> Result<Cow<'_, str>, CellError> {
    let t = text.trim();
    if t.contains(['e', 'E']) {
        return Err(CellError::Invalid(format!(
            "{t} uses an exponent; DECIMAL({precision},{scale}) needs plain digits"
        )));
    }
    let digits = t.trim_start_matches('-');
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    if int.len() as u32 > precision.saturating_sub(scale) || frac.len() as u32 > scale {
        return Err(CellError::Invalid(format!(
            "{t} does not fit DECIMAL({precision},{scale})"
        )));
    }
    Ok(Cow::Borrowed(t))
}

fn parse_datetime(text: &str, kind: JsonKind) -> Result<NaiveDateTime, CellError> {
    match kind {
        JsonKind::Number => {
            let ms: i64 = text.parse().map_err(|_| {
                CellError::Invalid(format!("{text} is not whole milliseconds since the epoch"))
            })?;
            DateTime::from_timestamp_millis(ms)
                .map(|d| d.naive_utc())
                .ok_or_else(|| CellError::Invalid(format!("{ms} ms is out of range")))
        }
        JsonKind::String => {
            let s: Cow<'_, str> = serde_json::from_str(text)
                .map_err(|e| CellError::Invalid(format!("bad string: {e}")))?;
            if let Ok(d) = DateTime::parse_from_rfc3339(&s) {
                return Ok(d.naive_utc());
            }
            for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
                if let Ok(d) = NaiveDateTime::parse_from_str(&s, f) {
                    return Ok(d);
                }
            }
            if let Ok(d) = NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
                return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default());
            }
            Err(CellError::Invalid(format!(
                "{text} is not a date and time (YYYY-MM-DD HH:MM:SS or RFC 3339)"
            )))
        }
        _ => Err(type_err("a date and time", text, kind)),
    }
}

/// Why a payload could not be read as an event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("payload is not a JSON object: found {0}")]
    NotAnObject(JsonKind),
}

/// Finds the raw values of a fixed set of fields in JSON objects, without building
/// a document. One per writer; its buffers are reused across events.
#[derive(Debug)]
pub struct Decoder {
    names: Vec<String>,
}

impl Decoder {
    /// A decoder for these top-level field names.
    pub fn new(names: Vec<String>) -> Decoder {
        Decoder { names }
    }

    /// The field names, in slot order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Scans `payload`; `slots[i]` receives the raw JSON text of field
    /// `names[i]`, or `None`.
    pub fn decode<'a>(
        &self,
        payload: &'a [u8],
        slots: &mut Vec<Option<&'a str>>,
    ) -> Result<(), DecodeError> {
        // The fast path takes what it is sure of; serde_json decides the rest.
        match self.decode_fast(payload, slots) {
            Some(()) => Ok(()),
            None => self.decode_serde(payload, slots),
        }
    }

    /// The fast path alone: `None` when it is not sure.
    fn decode_fast<'a>(&self, payload: &'a [u8], slots: &mut Vec<Option<&'a str>>) -> Option<()> {
        let text = std::str::from_utf8(payload).ok()?;
        slots.clear();
        slots.resize(self.names.len(), None);
        let names = &self.names;
        crate::event::scan::object(text, |name, value| {
            if let Some(i) = names.iter().position(|n| n == name) {
                slots[i] = Some(value);
            }
        })
    }

    /// The slow path alone: serde_json decides, with its error messages
    /// ([`Decoder::decode`] must agree with it; the decoder fuzz target checks).
    #[doc(hidden)]
    pub fn decode_serde<'a>(
        &self,
        payload: &'a [u8],
        slots: &mut Vec<Option<&'a str>>,
    ) -> Result<(), DecodeError> {
        slots.clear();
        slots.resize(self.names.len(), None);
        let first = payload.iter().find(|b| !b.is_ascii_whitespace()).copied();
        if first != Some(b'{') {
            return match serde_json::from_slice::<IgnoredAny>(payload) {
                Ok(_) => {
                    let text = std::str::from_utf8(payload).unwrap_or("0");
                    Err(DecodeError::NotAnObject(JsonKind::of(text)))
                }
                Err(e) => Err(DecodeError::Malformed(e.to_string())),
            };
        }
        let mut de = serde_json::Deserializer::from_slice(payload);
        SlotSeed {
            names: &self.names,
            slots,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| DecodeError::Malformed(e.to_string()))
    }
}

struct SlotSeed<'s, 'a> {
    names: &'s [String],
    slots: &'s mut Vec<Option<&'a str>>,
}

impl<'de, 's> DeserializeSeed<'de> for SlotSeed<'s, 'de> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 's> Visitor<'de> for SlotSeed<'s, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match self.names.iter().position(|n| *n == key) {
                Some(i) => self.slots[i] = Some(map.next_value::<&'de RawValue>()?.get()),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_written_as_display_writes_them() {
        for v in [0, 5, -5, 10, -10, 1_764_000_000_000, i64::MAX, i64::MIN] {
            let mut text = String::new();
            push_int(&mut text, v);
            assert_eq!(text, v.to_string());
            let mut bytes = Vec::new();
            push_int_bytes(&mut bytes, v);
            assert_eq!(bytes, v.to_string().as_bytes());
        }
    }

    fn raw(s: &str) -> &str {
        serde_json::from_str::<&RawValue>(s).unwrap().get()
    }

    const BIGINT: SqlType = SqlType::Int {
        min: i64::MIN as i128,
        max: i64::MAX as i128,
    };

    #[test]
    fn integers_are_range_checked() {
        let tiny_unsigned =
            SqlType::from_schema("tinyint", "tinyint(3) unsigned", None, None, None, None);
        assert_eq!(
            convert(Some(raw("255")), &tiny_unsigned, false),
            Ok(Cell::Int(255))
        );
        assert!(matches!(
            convert(Some(raw("256")), &tiny_unsigned, false),
            Err(CellError::Range { .. })
        ));
        assert_eq!(convert(Some(raw("true")), &BIGINT, false), Ok(Cell::Int(1)));
        let e = convert(Some(raw("\"12\"")), &BIGINT, false).unwrap_err();
        assert_eq!(e.to_string(), "expected an integer, found string \"12\"");
        assert!(convert(Some(raw("1.5")), &BIGINT, false).is_err());
    }

    #[test]
    fn nulls_follow_nullability() {
        assert_eq!(convert(None, &BIGINT, true), Ok(Cell::Null));
        assert_eq!(
            convert(Some(raw("null")), &BIGINT, false),
            Err(CellError::Null)
        );
    }

    #[test]
    fn text_is_length_checked_in_characters() {
        let t = SqlType::Text { max_chars: Some(3) };
        assert_eq!(
            convert(Some(raw("\"ééé\"")), &t, false),
            Ok(Cell::Text("ééé".into()))
        );
        assert!(matches!(
            convert(Some(raw("\"abcd\"")), &t, false),
            Err(CellError::TooLong { len: 4, max: 3 })
        ));
        assert_eq!(
            convert(
                Some(raw("{\"a\": [1, 2]}")),
                &SqlType::Text { max_chars: None },
                false
            ),
            Ok(Cell::Text("{\"a\":[1,2]}".into()))
        );
    }

    #[test]
    fn datetimes_from_millis_and_strings() {
        let t = SqlType::DateTime {
            fraction: 3,
            timestamp: false,
        };
        let tsv = |c: Cell<'_>| {
            let mut out = Vec::new();
            c.push_tsv(&mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            tsv(convert(Some(raw("1700000000123")), &t, false).unwrap()),
            "2023-11-14 22:13:20.123"
        );
        assert_eq!(
            tsv(convert(Some(raw("\"2023-11-14T23:13:20.5+01:00\"")), &t, false).unwrap()),
            "2023-11-14 22:13:20.500"
        );
        let micro = SqlType::DateTime {
            fraction: 6,
            timestamp: true,
        };
        let mut sql = String::new();
        convert(Some(raw("\"2023-01-02 03:04:05.000007\"")), &micro, false)
            .unwrap()
            .push_sql(&mut sql);
        assert_eq!(sql, "'2023-01-02 03:04:05.000007'");
        assert_eq!(
            tsv(convert(Some(raw("86400000")), &SqlType::Date, false).unwrap()),
            "1970-01-02"
        );
        assert!(convert(Some(raw("\"yesterday\"")), &t, false).is_err());
    }

    #[test]
    fn decimals_must_fit() {
        let d = SqlType::Decimal {
            precision: 5,
            scale: 2,
        };
        assert!(convert(Some(raw("123.45")), &d, false).is_ok());
        assert!(convert(Some(raw("1234.5")), &d, false).is_err());
        assert!(convert(Some(raw("1.234")), &d, false).is_err());
    }

    #[test]
    fn decoder_finds_fields_and_classifies_bad_payloads() {
        let dec = Decoder::new(vec!["a".into(), "c".into()]);
        let mut slots = Vec::new();
        dec.decode(br#"{"a": 1, "b": {"x": [1]}, "c": "z"}"#, &mut slots)
            .unwrap();
        assert_eq!(slots[0], Some("1"));
        assert_eq!(slots[1], Some("\"z\""));
        assert_eq!(
            dec.decode(b"[1,2]", &mut slots),
            Err(DecodeError::NotAnObject(JsonKind::Array))
        );
        let e = dec.decode(br#"{"a": 1"#, &mut slots).unwrap_err();
        assert!(e.to_string().starts_with("malformed JSON: EOF"), "{e}");
        assert!(matches!(
            dec.decode(b"nope", &mut slots),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            dec.decode(br#"{"a":1} x"#, &mut slots),
            Err(DecodeError::Malformed(_))
        ));
    }

    /// The fast path may leave an event to serde_json, but whatever it accepts,
    /// serde_json accepts with the same fields: checked on the generator's events
    /// (good and bad) and on truncations, byte swaps and insertions of them.
    #[test]
    fn fast_path_agrees_with_serde_json() {
        use clap::Parser as _;
        use rand::{Rng as _, SeedableRng as _};
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: crate::tools::gen::GenArgs,
        }
        let cli = Cli::parse_from([
            "gen",
            "--malformed",
            "0.1",
            "--non-object",
            "0.05",
            "--ill-typed",
            "0.1",
            "--oversized",
            "0.01",
            "--oversized-bytes",
            "3000",
        ]);
        let mut generator =
            crate::tools::gen::Generator::new(&cli.args, vec![(0x5102_4500, 24)]).unwrap();
        let names = [
            "event_id",
            "ts",
            "user_id",
            "pin_id",
            "action",
            "app",
            "ip",
            "user_agent",
            "absent",
        ];
        let dec = Decoder::new(names.iter().map(|n| n.to_string()).collect());
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        const BYTES: &[u8] = b"\"\\{}[],: \t0-.eEu1x\n\x01\xff\xc3";
        let (mut checked, mut fast) = (0, 0);
        let mut buf = String::new();
        for _ in 0..20_000 {
            let (_, kind) = generator.next_event(1_764_000_000_000, &mut buf);
            let event = buf.as_bytes().to_vec();
            let mut variants = vec![event.clone()];
            for _ in 0..6 {
                let mut v = event.clone();
                let at = rng.random_range(0..v.len());
                match rng.random_range(0..3) {
                    0 => v.truncate(at),
                    1 => v[at] = BYTES[rng.random_range(0..BYTES.len())],
                    _ => v.insert(at, BYTES[rng.random_range(0..BYTES.len())]),
                }
                variants.push(v);
            }
            for (n, v) in variants.iter().enumerate() {
                let (mut fast_slots, mut serde_slots) = (Vec::new(), Vec::new());
                let slow = dec.decode_serde(v, &mut serde_slots);
                let result = dec.decode(v, &mut fast_slots);
                checked += 1;
                let took_fast = std::str::from_utf8(v)
                    .ok()
                    .and_then(|t| crate::event::scan::object(t, |_, _| ()))
                    .is_some();
                if took_fast {
                    fast += 1;
                    let text = String::from_utf8_lossy(v);
                    assert_eq!(
                        slow,
                        Ok(()),
                        "fast path accepted what serde_json refuses: {text}"
                    );
                    assert_eq!(fast_slots, serde_slots, "{text}");
                } else {
                    assert_eq!(result, slow);
                }
                if n == 0
                    && matches!(
                        kind,
                        crate::tools::gen::Kind::Good | crate::tools::gen::Kind::Bot
                    )
                {
                    assert!(took_fast, "a well-formed event missed the fast path: {buf}");
                }
            }
        }
        assert!(fast > checked / 3, "{fast} of {checked} took the fast path");
    }

    #[test]
    fn json_is_compacted_as_written() {
        let raw =
            r#" { "b" : [1, 2.50] , "a" : "x y\" z", "$serde_json::private::RawValue" : "[1]" } "#;
        let Cell::Text(t) = convert(Some(raw), &SqlType::Json, true).unwrap() else {
            panic!("text")
        };
        assert_eq!(
            t,
            r#"{"b":[1,2.50],"a":"x y\" z","$serde_json::private::RawValue":"[1]"}"#
        );
    }

    #[test]
    fn cells_render_as_tsv_and_sql() {
        let mut tsv = Vec::new();
        Cell::Text("a\tb".into()).push_tsv(&mut tsv);
        tsv.push(b'|');
        Cell::Null.push_tsv(&mut tsv);
        assert_eq!(tsv, b"a\\tb|\\N");
        let mut sql = String::new();
        Cell::Text("it's".into()).push_sql(&mut sql);
        assert_eq!(sql, "'it\\'s'");
    }
}
