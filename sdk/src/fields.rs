//! What an enricher writes: fields appended as JSON straight into the batch's
//! output buffer, so that nothing is allocated per event.

use std::borrow::Cow;

use crate::json;
use crate::key::Write;
use crate::types::{Boolean, Float, Int, Json, RawJson, Text, Type};

/// The fields an enricher adds to one event, set through the keys the
/// attribute generates from `writes(...)`: `out.set(writes::city, "Paris")`.
/// A field that is not declared has no key, and a value of another type than
/// the field's does not compile.
#[derive(Debug)]
pub struct Fields<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> Fields<'a> {
    /// Fields written into `out`, after what it holds.
    #[doc(hidden)]
    pub fn new(out: &'a mut Vec<u8>) -> Fields<'a> {
        let start = out.len();
        Fields { out, start }
    }

    /// Sets field `key` to `value`, a value of the field's type (for a field
    /// declared with `?`, also an `Option` of one: `None` writes `null`).
    #[inline]
    pub fn set<T, V: Value<T>>(&mut self, key: Write<T>, value: V) {
        self.member(key.member());
        value.write_json(self.out);
    }

    /// Sets field `key`, declared with `?`, to `null`.
    #[inline]
    pub fn null<T: Type>(&mut self, key: Write<Option<T>>) {
        self.member(key.member());
        self.out.extend_from_slice(b"null");
    }

    /// Opens the object or adds a comma, then writes `"NAME":`.
    #[inline(always)]
    fn member(&mut self, member: &[u8]) {
        self.out.push(if self.out.len() == self.start {
            b'{'
        } else {
            b','
        });
        self.out.extend_from_slice(member);
    }

    /// Closes the object (nothing at all was written if no field was set).
    #[doc(hidden)]
    pub fn finish(self) {
        if self.out.len() > self.start {
            self.out.push(b'}');
        }
    }
}

mod sealed {
    /// How a value is written as JSON.
    pub trait Encode {
        fn write_json(self, out: &mut Vec<u8>);
    }
}
use sealed::Encode;

/// A value a field of type `T` can be set to (see [`crate::types`]).
#[diagnostic::on_unimplemented(
    message = "a field of type `{T}` cannot be set to `{Self}`",
    label = "not a value of the field's type",
    note = "text takes &str, String or Cow<str>; int an integer; float f64 or f32; boolean bool; \
            json any of these or a RawJson; a field declared with `?` is an `Option<_>` and \
            also takes an Option of them"
)]
pub trait Value<T>: Encode {}

impl Encode for &str {
    fn write_json(self, out: &mut Vec<u8>) {
        json::write_str(out, self);
    }
}

impl Encode for String {
    fn write_json(self, out: &mut Vec<u8>) {
        json::write_str(out, &self);
    }
}

impl Encode for &String {
    fn write_json(self, out: &mut Vec<u8>) {
        json::write_str(out, self);
    }
}

impl Encode for Cow<'_, str> {
    fn write_json(self, out: &mut Vec<u8>) {
        json::write_str(out, &self);
    }
}

impl Encode for bool {
    fn write_json(self, out: &mut Vec<u8>) {
        out.extend_from_slice(if self { b"true" } else { b"false" });
    }
}

impl Encode for RawJson<'_> {
    fn write_json(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn write_json(self, out: &mut Vec<u8>) {
                out.extend_from_slice(itoa::Buffer::new().format(self).as_bytes());
            }
        }
    )*};
}
int_field!(i8, i16, i32, i64, u8, u16, u32, u64);

/// Powers of ten that `f64` holds exactly, for up to six decimals.
const POW10: [f64; 7] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6];

/// Appends `x` with the fewest decimals, at most six, that read back as
/// exactly `x`, which is what `Display` writes for it; false (and nothing
/// written) when `x` needs more. Coordinates, prices and rates nearly always
/// fit, and skip the general shortest-digits search and the formatting
/// machinery.
fn write_decimal(out: &mut Vec<u8>, x: f64) -> bool {
    let a = x.abs();
    if a >= 1e9 {
        return false;
    }
    for (k, &scale) in POW10.iter().enumerate() {
        // Rounded half up by truncation (`a * scale + 0.5` < 2^52 is exact),
        // which a guest does inline where `round` is a library call.
        let m = ((a * scale + 0.5) as u64) as f64;
        // `m / scale` is the correctly rounded value of the decimal
        // m·10^-k, so equality means that decimal parses back to `a`; with
        // a < 1e9 and k <= 6, no other decimal of k places does.
        if m / scale == a {
            if x.is_sign_negative() {
                out.push(b'-');
            }
            let (m, scale) = (m as u64, scale as u64);
            let mut digits = itoa::Buffer::new();
            out.extend_from_slice(digits.format(m / scale).as_bytes());
            if k > 0 {
                // The fraction as exactly k digits, leading zeros included.
                let fraction = digits.format(m % scale);
                out.push(b'.');
                out.extend(std::iter::repeat_n(b'0', k - fraction.len()));
                out.extend_from_slice(fraction.as_bytes());
            }
            return true;
        }
    }
    false
}

impl Encode for f64 {
    fn write_json(self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        if !self.is_finite() {
            out.extend_from_slice(b"null");
        } else if !write_decimal(out, self) {
            let _ = write!(out, "{self}");
        }
    }
}

impl Encode for f32 {
    fn write_json(self, out: &mut Vec<u8>) {
        f64::from(self).write_json(out);
    }
}

impl<T: Encode> Encode for Option<T> {
    fn write_json(self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.write_json(out),
            None => out.extend_from_slice(b"null"),
        }
    }
}

/// For each value type listed: `Value<$ty>`, and for a nullable field
/// `Value<Option<$ty>>` of it and of an `Option` of it. (One impl per type
/// rather than a blanket one over `Option<V>`, so that an error names the
/// field types an `Option` of the wrong value would fit.)
macro_rules! values {
    ($ty:ty: $($v:ty),*) => {$(
        impl Value<$ty> for $v {}
        impl Value<Option<$ty>> for $v {}
        impl Value<Option<$ty>> for Option<$v> {}
    )*};
}
values!(Text: &str, String, &String, Cow<'_, str>);
values!(Int: i8, i16, i32, i64, u8, u16, u32, u64);
values!(Float: f64, f32);
values!(Boolean: bool);
values!(Json: RawJson<'_>, &str, String, &String, Cow<'_, str>, bool, f64, f32);
values!(Json: i8, i16, i32, i64, u8, u16, u32, u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_object_per_event_after_the_previous_ones() {
        const COUNTRY: Write<Option<Text>> = Write::__declared("country", "\"country\":");
        const LAT: Write<Float> = Write::__declared("lat", "\"lat\":");
        const BOT: Write<Option<Boolean>> = Write::__declared("bot", "\"bot\":");
        const EXTRA: Write<Json> = Write::__declared("a \"b\"", "\"a \\\"b\\\"\":");
        let mut out = b"{\"x\":1}".to_vec();
        let mut f = Fields::new(&mut out);
        f.set(COUNTRY, "US");
        f.set(LAT, 37.751);
        f.set(BOT, Some(false));
        f.null(COUNTRY);
        f.set(EXTRA, RawJson(b"[1,{}]"));
        f.finish();
        let mut f = Fields::new(&mut out);
        f.set(COUNTRY, None::<&str>);
        f.finish();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"x":1}{"country":"US","lat":37.751,"bot":false,"country":null,"a \"b\"":[1,{}]}{"country":null}"#
        );
        let mut none = Vec::new();
        Fields::new(&mut none).finish();
        assert!(none.is_empty());
    }

    /// Numbers read as `Display` writes them, over coordinates of every
    /// precision, integers, tiny and huge values and random bit patterns.
    #[test]
    fn numbers_are_written_as_display_writes_them() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut floats = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            0.1,
            0.000001,
            0.0000001,
            1e-300,
            123456789.5,
            999999999.999999,
            1e9,
            1e21,
            37.751,
            -97.822,
            51.5142,
            -0.1275,
            f64::MAX,
            f64::MIN_POSITIVE,
        ];
        for _ in 0..100_000 {
            let r = next();
            let places = (r % 8) as i32;
            let whole = (r >> 8) % 400_000_000;
            floats.push((whole as f64 / 10f64.powi(places)) - 180.0);
            floats.push(f64::from_bits(next()));
        }
        for f in floats.into_iter().filter(|f| f.is_finite()) {
            let mut out = Vec::new();
            f.write_json(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), format!("{f}"), "{f:e}");
        }
        for i in [0, 7, -7, 10, 100, -100, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            i.write_json(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), i.to_string());
        }
        for u in [0u64, 9, 10, u64::MAX] {
            let mut out = Vec::new();
            u.write_json(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), u.to_string());
        }
        let mut out = Vec::new();
        f64::NAN.write_json(&mut out);
        assert_eq!(out, b"null");
    }
}
