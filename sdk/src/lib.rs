//! Write a Weir plugin as one plain function.
//!
//! A filter keeps or drops events; an enricher adds fields. Each is a function
//! with an attribute that declares what it reads, writes and looks up; the
//! attribute generates the WIT glue, the batch loop, `describe`, `init`, and a
//! key for each declaration, through which alone the function reads and
//! writes:
//!
//! ```
//! use weir_sdk::{filter, Event, List};
//!
//! #[derive(weir_sdk::Config)]
//! pub struct Settings {
//!     /// Actions to keep, comma separated.
//!     #[config(default = "click,save")]
//!     actions: List<String>,
//! }
//!
//! #[filter(reads(action: text))]
//! fn keep(event: &Event, settings: &Settings) -> bool {
//!     event.get(reads::action).is_some_and(|a| settings.actions.iter().any(|k| *k == a))
//! }
//!
//! # fn main() {
//! // Native test through the same batch loop the host drives, no wasm:
//! use weir_sdk::testing::Outcome;
//! let out = weir_plugin::test(&[r#"{"action":"save"}"#, r#"{"action":"hide"}"#], &[]).unwrap();
//! assert_eq!(out, [Outcome::Kept, Outcome::Dropped]);
//! # }
//! ```
//!
//! Build for the host with `cargo build --target wasm32-wasip2 --release` and
//! copy `NAME.wasm` (the crate's name, with `-`) into the plugin folder.
//!
//! # Declarations are keys
//!
//! Beside the function the attribute generates three modules of constants,
//! each named as declared and typed with the field's type ([`types`]):
//!
//! - `reads(ip: text?)` makes `reads::ip`, a [`Read<Text>`](Read):
//!   `event.get(reads::ip)` is an `Option<Cow<str>>` (`int` gives `i64`,
//!   `float` `f64`, `boolean` `bool`, `json` a [`RawJson`]); `event.has(key)`
//!   tells whether the field is there and not null.
//! - `writes(city: text?)` makes `writes::city`, a [`Write<Option<Text>>`](Write):
//!   `out.set(writes::city, value)` takes a value of the field's type, and for
//!   a field declared with `?` an `Option` of one too (`out.null(writes::city)`).
//! - `lookups(categories = "pin_id")` makes `lookups::categories`, a
//!   [`KeyedTable`]: the whole batch is looked up by its `pin_id` in one host
//!   call before the function runs, and `event.lookup(lookups::categories)`
//!   reads an event's answer. `lookups(pins)` makes a [`Table`], looked up one
//!   key at a time with `lookups::pins.get(key)`.
//!
//! A field name that is not a Rust identifier is given one with `as`:
//! `reads("user-agent" as user_agent: text?)`. So a misspelt or undeclared
//! field, a value of the wrong type and an undeclared table are compile errors
//! where they are written (`sdk/tests/ui/fail/` has one of each):
//!
//! ```compile_fail,E0425
//! use weir_sdk::{enricher, Event, Fields};
//!
//! #[enricher(reads(ip: text?), writes(country: text?, latitude: float?))]
//! fn enrich(event: &Event, out: &mut Fields) {
//!     out.set(writes::country, event.get(reads::ipp)); // no read `ipp`
//! }
//! # fn main() {}
//! ```
//!
//! ```compile_fail,E0277
//! # use weir_sdk::{enricher, Event, Fields};
//! #[enricher(reads(ip: text?), writes(country: text?, latitude: float?))]
//! fn enrich(event: &Event, out: &mut Fields) {
//!     out.set(writes::latitude, event.get(reads::ip)); // text into a float
//! }
//! # fn main() {}
//! ```
//!
//! A configuration value may also name a declared read, checked at `init`:
//! a field of type [`Read<T>`](Read) (or `List<Read<T>>`) in the configuration
//! type parses into that field's key, and an undeclared name or another type
//! fails `init`, naming the key. [`types::Any`] takes a read of any type.
//!
//! # State
//!
//! The function's second argument, when it has one, is the plugin's state:
//! built once per instance by `init` from the step's configuration
//! ([`FromConfig`], or `#[derive(weir_sdk::Config)]`), owned by the generated
//! glue and lent to every call. Take it as `&State` to read it, or as
//! `&mut State` to change it from one event to the next (a cache, say): an
//! instance handles one batch at a time on one thread, so no `RefCell` or lock
//! is needed.
//!
//! ```
//! use std::collections::HashMap;
//! use weir_sdk::{enricher, ConfigError, Event, Fields, FromConfig};
//!
//! /// How many events each user sent, so far, to this instance.
//! #[derive(Default)]
//! pub struct Seen(HashMap<i64, i64>);
//!
//! impl FromConfig for Seen {
//!     fn from_config(_: &mut weir_sdk::Config) -> Result<Seen, ConfigError> {
//!         Ok(Seen::default())
//!     }
//! }
//!
//! #[enricher(reads(user_id: int), writes(nth: int?))]
//! fn enrich(event: &Event, seen: &mut Seen, out: &mut Fields) {
//!     let nth = event.get(reads::user_id).map(|user| {
//!         let n = seen.0.entry(user).or_default();
//!         *n += 1;
//!         *n
//!     });
//!     out.set(writes::nth, nth);
//! }
//!
//! # fn main() {
//! let out = weir_plugin::test(&[r#"{"user_id":1}"#, r#"{"user_id":1}"#, "{}"], &[]).unwrap();
//! assert_eq!(out[1].added().get(writes::nth), Some(2));
//! assert!(out[2].added().is_null(writes::nth));
//! # }
//! ```
//!
//! # Speed
//!
//! [`Event::get`] scans the payload for the member when called: no document
//! is built, nothing is allocated unless a string holds an escape. Fields set
//! by earlier steps win over the payload's. [`Fields::set`] writes the member's
//! name, JSON-escaped by the attribute, and the value straight into one buffer
//! for the whole batch.

mod config;
mod event;
mod fields;
mod host;
mod json;
mod key;
#[doc(hidden)]
pub mod rt;
// The host scans payloads with the same block searches.
#[doc(hidden)]
pub mod scan;
pub mod testing;
pub mod text;
pub mod types;

pub use config::{Config, ConfigError, FromConfig, FromValue, List};
pub use event::{Batch, Event};
pub use fields::{Fields, Value};
#[doc(hidden)]
pub use host::{install as __install_host, HostFns};
pub use host::{log, Level};
pub use key::{KeyedTable, Read, Table, Write};
pub use types::RawJson;

/// A JSON object handed to the plugin as text, such as a lookup table's value
/// (a MaxMind DB table answers one object per address). Members are found by
/// a scan when asked for; nothing is built or allocated unless a string holds
/// an escape. Anything but an object has no members.
///
/// ```
/// let place = weir_sdk::JsonObject::new(r#"{"country":"GB","latitude":51.5}"#);
/// assert_eq!(place.text("country").as_deref(), Some("GB"));
/// assert_eq!(place.float("latitude"), Some(51.5));
/// assert_eq!(place.text("city"), None);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct JsonObject<'a>(&'a [u8]);

impl<'a> JsonObject<'a> {
    pub fn new(text: &'a str) -> JsonObject<'a> {
        JsonObject(text.as_bytes())
    }

    /// The raw JSON of member `name`.
    pub fn raw(&self, name: &str) -> Option<&'a str> {
        json::find(self.0, name).and_then(|raw| std::str::from_utf8(raw).ok())
    }

    /// Member `name` if it is a string.
    pub fn text(&self, name: &str) -> Option<std::borrow::Cow<'a, str>> {
        json::find(self.0, name).and_then(json::as_str)
    }

    /// Member `name` if it is an integer.
    pub fn int(&self, name: &str) -> Option<i64> {
        json::find(self.0, name).and_then(json::as_int)
    }

    /// Member `name` if it is a number.
    pub fn float(&self, name: &str) -> Option<f64> {
        json::find(self.0, name).and_then(json::as_float)
    }

    /// Member `name` if it is a boolean.
    pub fn boolean(&self, name: &str) -> Option<bool> {
        json::find(self.0, name).and_then(json::as_bool)
    }
}
/// `#[enricher(reads(...), writes(...), lookups(...), name = "...", version = "...")]`
/// on `fn(&Event, [&State or &mut State,] &mut Fields) -> ()` or
/// `-> Result<(), E>` with `E: Into<Failure>`.
pub use weir_sdk_macros::enricher;
/// `#[filter(reads(...), lookups(...), name = "...", version = "...")]` on
/// `fn(&Event, [&State or &mut State]) -> R`, `R` one of `bool`, [`Verdict`]
/// or `Result<_, E>`.
pub use weir_sdk_macros::filter;
/// `#[derive(weir_sdk::Config)]`: a struct whose fields are read from the step's
/// `config`, by name, each parsed with [`FromValue`]. `Option<T>` fields are
/// optional, `#[config(default = "TEXT")]` gives a default, other fields are
/// required; a key the struct does not name is an `init` error.
pub use weir_sdk_macros::Config;

/// What a filter decides for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The event goes on.
    Keep,
    /// The event is dropped and counted as filtered.
    Drop,
    /// The event is refused: it becomes a dead letter with this reason.
    Reject(String),
}

/// An event refused by an enricher: it becomes a dead letter with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject(pub String);

/// The whole batch cannot be handled now; the host retries it later, with backoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryLater(pub String);

/// Why a plugin function did not finish an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Reject(String),
    RetryLater(String),
}

impl From<Reject> for Failure {
    fn from(r: Reject) -> Failure {
        Failure::Reject(r.0)
    }
}

impl From<RetryLater> for Failure {
    fn from(r: RetryLater) -> Failure {
        Failure::RetryLater(r.0)
    }
}

impl From<String> for Failure {
    fn from(reason: String) -> Failure {
        Failure::Reject(reason)
    }
}

impl From<&str> for Failure {
    fn from(reason: &str) -> Failure {
        Failure::Reject(reason.to_string())
    }
}

/// An event refused, by index in its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub index: u32,
    pub reason: String,
}

/// An enricher's answer for a batch: per event one JSON object, back to back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Additions {
    pub fields: Vec<u8>,
    pub field_ends: Vec<u32>,
    pub rejected: Vec<Rejection>,
}

/// The type of a field a plugin reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Int,
    Float,
    Boolean,
    Json,
}

/// One field a plugin reads or writes; `nullable` when declared with `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ty: FieldType,
    pub nullable: bool,
}

/// What `describe` answers: generated from the attribute and the crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub name: &'static str,
    pub version: &'static str,
    pub reads: Vec<FieldSpec>,
    pub writes: Vec<FieldSpec>,
}
