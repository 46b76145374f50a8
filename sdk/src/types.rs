//! The field types of the contract as Rust types. A key carries its field's
//! type, so that [`Event::get`](crate::Event::get) returns a value of that
//! type and [`Fields::set`](crate::Fields::set) accepts only values of it:
//! `reads(ts: int)` makes `reads::ts` a `Read<Int>`, `writes(city: text?)`
//! makes `writes::city` a `Write<Option<Text>>`.

use std::borrow::Cow;

use crate::{json, FieldType};

/// `text`: read as `Cow<str>`; set from `&str`, `String` or `Cow<str>`.
#[derive(Debug)]
pub enum Text {}

/// `int`: read as `i64`; set from any integer up to 64 bits.
#[derive(Debug)]
pub enum Int {}

/// `float`: read as `f64` (an integer in the payload reads too); set from
/// `f64` or `f32` (a value that is not finite is written as `null`).
#[derive(Debug)]
pub enum Float {}

/// `boolean`: read and set as `bool`.
#[derive(Debug)]
pub enum Boolean {}

/// `json`: any JSON value, read as [`RawJson`]; set from a [`RawJson`] or
/// from a value of any other type.
#[derive(Debug)]
pub enum Json {}

/// No type in particular: `Read<Any>` is a declared field named in the
/// configuration and only tested for presence ([`Event::has`](crate::Event::has)).
#[derive(Debug)]
pub enum Any {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Text {}
    impl Sealed for super::Int {}
    impl Sealed for super::Float {}
    impl Sealed for super::Boolean {}
    impl Sealed for super::Json {}
    impl<T: Sealed> Sealed for Option<T> {}
}

/// One of the contract's field types: [`Text`], [`Int`], [`Float`],
/// [`Boolean`] or [`Json`].
pub trait Type: sealed::Sealed + 'static {
    /// The type as `describe` names it.
    const TYPE: FieldType;
    /// What a read of a field of this type gives.
    type Value<'a>;
    /// A raw JSON value as this type; `None` for `null` or a value of another type.
    #[doc(hidden)]
    fn decode(raw: &[u8]) -> Option<Self::Value<'_>>;
}

impl Type for Text {
    const TYPE: FieldType = FieldType::Text;
    type Value<'a> = Cow<'a, str>;
    #[inline(always)]
    fn decode(raw: &[u8]) -> Option<Cow<'_, str>> {
        json::as_str(raw)
    }
}

impl Type for Int {
    const TYPE: FieldType = FieldType::Int;
    type Value<'a> = i64;
    #[inline(always)]
    fn decode(raw: &[u8]) -> Option<i64> {
        json::as_int(raw)
    }
}

impl Type for Float {
    const TYPE: FieldType = FieldType::Float;
    type Value<'a> = f64;
    #[inline(always)]
    fn decode(raw: &[u8]) -> Option<f64> {
        json::as_float(raw)
    }
}

impl Type for Boolean {
    const TYPE: FieldType = FieldType::Boolean;
    type Value<'a> = bool;
    #[inline(always)]
    fn decode(raw: &[u8]) -> Option<bool> {
        json::as_bool(raw)
    }
}

impl Type for Json {
    const TYPE: FieldType = FieldType::Json;
    type Value<'a> = RawJson<'a>;
    #[inline(always)]
    fn decode(raw: &[u8]) -> Option<RawJson<'_>> {
        (raw != b"null").then_some(RawJson(raw))
    }
}

/// The type parameter of a [`Write`](crate::Write) key: the field's type, or
/// `Option` of it for a field declared with `?` (which may be set to `null`).
pub trait WriteType: sealed::Sealed + 'static {
    /// The field's type, nullable or not.
    type Base: Type;
}

impl<T: Type> WriteType for T {
    type Base = T;
}

impl<T: Type> WriteType for Option<T> {
    type Base = T;
}

/// One JSON value as it stands in an event, read from a `json` field: an
/// enricher may write it on as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawJson<'a>(pub(crate) &'a [u8]);

impl<'a> RawJson<'a> {
    /// The value's JSON text.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}
