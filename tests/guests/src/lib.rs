//! Helpers the test guests share: reading one event out of a columnar batch.

/// Bytes `i` of a back-to-back column with end offsets.
pub fn item<'a>(bytes: &'a [u8], ends: &[u32], i: usize) -> &'a [u8] {
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    &bytes[start..ends[i] as usize]
}

/// Whether event `i`'s payload contains `needle`.
pub fn payload_has(payloads: &[u8], ends: &[u32], i: usize, needle: &str) -> bool {
    let p = item(payloads, ends, i);
    p.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The same JSON object of additions for each of `n` events, in columns.
pub fn same_for_each(n: usize, object: &[u8]) -> (Vec<u8>, Vec<u32>) {
    let mut fields = Vec::with_capacity(n * object.len());
    let mut ends = Vec::with_capacity(n);
    for _ in 0..n {
        fields.extend_from_slice(object);
        ends.push(fields.len() as u32);
    }
    (fields, ends)
}

/// A whole enricher plugin `$name` at `$version` that adds the JSON object
/// `$object` (bytes) to every event and declares it writes `weir_test`. With
/// `init_error`, its `init` fails with that message instead.
#[macro_export]
macro_rules! tagger {
    ($name:expr, $version:expr, $object:expr) => {
        $crate::tagger!($name, $version, $object, init = Ok(()));
    };
    ($name:expr, $version:expr, $object:expr, init_error = $error:expr) => {
        $crate::tagger!($name, $version, $object, init = Err($error.into()));
    };
    ($name:expr, $version:expr, $object:expr, init = $init:expr) => {
        wit_bindgen::generate!({ path: "../../wit", world: "enricher-plugin" });

        use exports::weir::plugin::enricher::Guest;
        use weir::plugin::types::{Additions, Batch, Description, FieldSpec, FieldType, RetryLater};

        struct Plugin;

        impl Guest for Plugin {
            fn describe() -> Description {
                Description {
                    name: $name.into(),
                    version: $version.into(),
                    reads: vec![],
                    writes: vec![FieldSpec { name: "weir_test".into(), type_: FieldType::Text, nullable: true }],
                }
            }

            fn init(_config: Vec<(String, String)>) -> Result<(), String> {
                $init
            }

            fn enrich(events: Batch) -> Result<Additions, RetryLater> {
                let (fields, field_ends) = $crate::same_for_each(events.offsets.len(), $object);
                Ok(Additions { fields, field_ends, rejected: Vec::new() })
            }
        }

        export!(Plugin);
    };
}

/// A whole enricher plugin `$name` that declares it writes `$field` (with its
/// WIT `FieldType`) for each pair given, and adds to event `$i` of `$events`
/// the JSON object bytes `$additions` evaluates to (a `Vec<u8>`); the host
/// imports (`lookup_many`, `log`) are in scope.
#[macro_export]
macro_rules! each_event {
    ($name:expr, writes = [$($field:expr => $ty:ident),* $(,)?], |$events:ident, $i:ident| $additions:expr) => {
        wit_bindgen::generate!({ path: "../../wit", world: "enricher-plugin" });

        #[allow(unused_imports)]
        use weir::plugin::host::*;
        use exports::weir::plugin::enricher::Guest;
        use weir::plugin::types::{Additions, Batch, Description, FieldSpec, FieldType, RetryLater};

        struct Plugin;

        impl Guest for Plugin {
            fn describe() -> Description {
                Description {
                    name: $name.into(),
                    version: "1.0.0".into(),
                    reads: vec![],
                    writes: vec![$(FieldSpec { name: $field.into(), type_: FieldType::$ty, nullable: true }),*],
                }
            }

            fn init(_config: Vec<(String, String)>) -> Result<(), String> {
                Ok(())
            }

            fn enrich($events: Batch) -> Result<Additions, RetryLater> {
                let mut fields = Vec::new();
                let mut field_ends = Vec::new();
                for $i in 0..$events.offsets.len() {
                    let added: Vec<u8> = $additions;
                    fields.extend_from_slice(&added);
                    field_ends.push(fields.len() as u32);
                }
                Ok(Additions { fields, field_ends, rejected: Vec::new() })
            }
        }

        export!(Plugin);
    };
}
