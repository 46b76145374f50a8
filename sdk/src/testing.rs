//! Native tests of a plugin, with no wasm: batches built from JSON lines, lookup
//! tables set in memory, and outcomes to assert on. An enricher's output is
//! read through its own keys, or compared as the JSON text the host receives:
//!
//! ```
//! use weir_sdk::testing::{Added, Outcome};
//! use weir_sdk::{enricher, Event, Fields};
//!
//! #[enricher(reads(ts: int?), writes(hour: int?))]
//! fn enrich(event: &Event, out: &mut Fields) {
//!     out.set(writes::hour, event.get(reads::ts).map(|ms| ms / 3_600_000 % 24));
//! }
//!
//! # fn main() {
//! let out = weir_plugin::test(&[r#"{"ts":34200000}"#, "{}"], &[]).unwrap();
//! assert_eq!(out[0].added().get(writes::hour), Some(9));
//! assert!(out[1].added().is_null(writes::hour));
//! assert_eq!(out[1], Outcome::Enriched(Added(r#"{"hour":null}"#.into())));
//! # }
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use crate::event::{Batch, Object};
use crate::key::Write;
use crate::types::{Type, WriteType};
use crate::{Additions, Rejection};

/// The columns of a batch, built from JSON payloads (partition 0, offsets from 0).
#[derive(Debug, Clone, Default)]
pub struct TestBatch {
    pub topic: String,
    pub payloads: Vec<u8>,
    pub payload_ends: Vec<u32>,
    pub keys: Vec<u8>,
    pub key_ends: Vec<u32>,
    pub fields: Vec<Vec<u8>>,
    field_bytes: Vec<u8>,
    field_ends: Vec<u32>,
    pub timestamps_ms: Vec<i64>,
    pub partitions: Vec<i32>,
    pub offsets: Vec<i64>,
}

impl TestBatch {
    pub fn new<S: AsRef<[u8]>>(payloads: &[S]) -> TestBatch {
        let mut b = TestBatch {
            topic: "test".into(),
            ..TestBatch::default()
        };
        for (i, p) in payloads.iter().enumerate() {
            b.payloads.extend_from_slice(p.as_ref());
            b.payload_ends.push(b.payloads.len() as u32);
            b.key_ends.push(0);
            b.fields.push(Vec::new());
            b.timestamps_ms.push(-1);
            b.partitions.push(0);
            b.offsets.push(i as i64);
        }
        b.pack_fields();
        b
    }

    /// Sets the fields earlier steps gave event `i` (a JSON object).
    pub fn with_fields(mut self, i: usize, json: &str) -> TestBatch {
        self.fields[i] = json.as_bytes().to_vec();
        self.pack_fields();
        self
    }

    fn pack_fields(&mut self) {
        self.field_bytes.clear();
        self.field_ends.clear();
        for f in &self.fields {
            self.field_bytes.extend_from_slice(f);
            self.field_ends.push(self.field_bytes.len() as u32);
        }
    }

    /// The batch as a plugin receives it.
    pub fn view(&self) -> Batch<'_> {
        Batch {
            topic: &self.topic,
            payloads: &self.payloads,
            payload_ends: &self.payload_ends,
            keys: &self.keys,
            key_ends: &self.key_ends,
            fields: &self.field_bytes,
            field_ends: &self.field_ends,
            timestamps_ms: &self.timestamps_ms,
            partitions: &self.partitions,
            offsets: &self.offsets,
        }
    }
}

/// What became of one event in a native test.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A filter kept it.
    Kept,
    /// A filter dropped it (counted, not a dead letter).
    Dropped,
    /// The plugin rejected it: a dead letter with this reason.
    Rejected(String),
    /// An enricher added these fields (a JSON object, or empty for none).
    Enriched(Added),
}

/// The fields an enricher added to one event: the JSON object the host
/// receives (empty when none was set).
#[derive(Debug, Clone, PartialEq)]
pub struct Added(pub String);

impl Added {
    /// Field `key` as its declared type, as [`crate::Event::get`] would read it.
    pub fn get<T: WriteType>(&self, key: Write<T>) -> Option<<T::Base as Type>::Value<'_>> {
        Object(self.0.as_bytes())
            .raw(key.name())
            .and_then(T::Base::decode)
    }

    /// Whether field `key` was set to `null`.
    pub fn is_null<T>(&self, key: Write<T>) -> bool {
        Object(self.0.as_bytes()).raw(key.name()) == Some(b"null")
    }
}

impl Outcome {
    /// The added fields; panics if the event was not enriched.
    pub fn added(&self) -> &Added {
        match self {
            Outcome::Enriched(a) => a,
            other => panic!("expected an enriched event, got {other:?}"),
        }
    }
}

#[doc(hidden)]
pub fn filter_outcomes(keep: &[bool], rejected: &[Rejection]) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = keep
        .iter()
        .map(|&k| if k { Outcome::Kept } else { Outcome::Dropped })
        .collect();
    for r in rejected {
        out[r.index as usize] = Outcome::Rejected(r.reason.clone());
    }
    out
}

#[doc(hidden)]
pub fn enricher_outcomes(a: &Additions) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = (0..a.field_ends.len())
        .map(|i| {
            let start = if i == 0 {
                0
            } else {
                a.field_ends[i - 1] as usize
            };
            let bytes = &a.fields[start..a.field_ends[i] as usize];
            Outcome::Enriched(Added(String::from_utf8_lossy(bytes).into_owned()))
        })
        .collect();
    for r in &a.rejected {
        out[r.index as usize] = Outcome::Rejected(r.reason.clone());
    }
    out
}

type Tables = HashMap<String, HashMap<String, String>>;
static TABLES: Mutex<Option<Tables>> = Mutex::new(None);

/// Sets lookup table `name` for native runs (replacing it if set before).
pub fn lookup_table(name: &str, rows: &[(&str, &str)]) {
    let mut t = TABLES.lock().unwrap_or_else(|e| e.into_inner());
    t.get_or_insert_with(HashMap::new).insert(
        name.to_string(),
        rows.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
}

pub(crate) fn native_lookup(table: &str, key: &str) -> Option<String> {
    let t = TABLES.lock().unwrap_or_else(|e| e.into_inner());
    t.as_ref()?.get(table)?.get(key).cloned()
}

pub(crate) fn native_lookup_many(table: &str, keys: &[u8], ends: &[u32]) -> crate::host::Found {
    let t = TABLES.lock().unwrap_or_else(|e| e.into_inner());
    let rows = t.as_ref().and_then(|t| t.get(table));
    let mut values = Vec::new();
    let mut value_ends = Vec::with_capacity(ends.len());
    let mut found = Vec::with_capacity(ends.len());
    let mut start = 0;
    for &end in ends {
        let key = std::str::from_utf8(&keys[start..end as usize]).unwrap_or_default();
        start = end as usize;
        match rows.and_then(|r| r.get(key)) {
            Some(v) => {
                values.extend_from_slice(v.as_bytes());
                found.push(true);
            }
            None => found.push(false),
        }
        value_ends.push(values.len() as u32);
    }
    (values, value_ends, found)
}
