//! What an enricher writes: fields appended as JSON straight into the batch's
//! output buffer, so that nothing is allocated per event.

use std::borrow::Cow;

use crate::json;

/// The fields an enricher adds to one event. Only the fields declared in the
/// attribute's `writes(...)` may be set; setting another rejects the event.
#[derive(Debug)]
pub struct Fields<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    declared: &'a [&'a str],
    error: Option<String>,
}

impl<'a> Fields<'a> {
    /// Fields written into `out`; `declared` lists the names that may be set.
    pub fn new(out: &'a mut Vec<u8>, declared: &'a [&'a str]) -> Fields<'a> {
        let start = out.len();
        Fields {
            out,
            start,
            declared,
            error: None,
        }
    }

    /// Sets field `name` to `value` (`None` writes `null`).
    pub fn set(&mut self, name: &str, value: impl IntoField) {
        if !self.declared.contains(&name) {
            self.error.get_or_insert_with(|| {
                format!(
                    "the plugin set `{name}`, which is not among its declared writes ({})",
                    self.declared.join(", ")
                )
            });
            return;
        }
        self.out.push(if self.out.len() == self.start {
            b'{'
        } else {
            b','
        });
        json::write_str(self.out, name);
        self.out.push(b':');
        value.write_json(self.out);
    }

    /// Sets field `name` to `null`.
    pub fn null(&mut self, name: &str) {
        self.set(name, None::<i64>);
    }

    /// Closes the object; the error if an undeclared field was set.
    pub fn finish(self) -> Option<String> {
        if self.error.is_some() {
            self.out.truncate(self.start);
        } else if self.out.len() > self.start {
            self.out.push(b'}');
        }
        self.error
    }
}

/// A value an enricher can write.
pub trait IntoField {
    fn write_json(self, out: &mut Vec<u8>);
}

impl IntoField for &str {
    fn write_json(self, out: &mut Vec<u8>) {
        json::write_str(out, self);
    }
}

impl IntoField for String {
    fn write_json(self, out: &mut Vec<u8>) {
        json::write_str(out, &self);
    }
}

impl IntoField for &String {
    fn write_json(self, out: &mut Vec<u8>) {
        json::write_str(out, self);
    }
}

impl IntoField for Cow<'_, str> {
    fn write_json(self, out: &mut Vec<u8>) {
        json::write_str(out, &self);
    }
}

impl IntoField for bool {
    fn write_json(self, out: &mut Vec<u8>) {
        out.extend_from_slice(if self { b"true" } else { b"false" });
    }
}

macro_rules! int_field {
    ($($t:ty),*) => {$(
        impl IntoField for $t {
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

impl IntoField for f64 {
    fn write_json(self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        if !self.is_finite() {
            out.extend_from_slice(b"null");
        } else if !write_decimal(out, self) {
            let _ = write!(out, "{self}");
        }
    }
}

impl IntoField for f32 {
    fn write_json(self, out: &mut Vec<u8>) {
        f64::from(self).write_json(out);
    }
}

impl<T: IntoField> IntoField for Option<T> {
    fn write_json(self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.write_json(out),
            None => out.extend_from_slice(b"null"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Object;

    #[test]
    fn writes_one_object_per_event() {
        let mut out = Vec::new();
        let mut f = Fields::new(&mut out, &["country", "lat", "bot"]);
        f.set("country", "US");
        f.set("lat", 37.751);
        f.set("bot", Some(false));
        assert_eq!(f.finish(), None);
        let obj = Object(&out);
        assert_eq!(obj.str("country").as_deref(), Some("US"));
        assert_eq!(obj.float("lat"), Some(37.751));
        assert_eq!(obj.bool("bot"), Some(false));
        let mut none = Vec::new();
        assert_eq!(Fields::new(&mut none, &[]).finish(), None);
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

    #[test]
    fn an_undeclared_field_is_an_error_and_writes_nothing() {
        let mut out = b"{\"x\":1}".to_vec();
        let mut f = Fields::new(&mut out, &["country"]);
        f.set("country", "US");
        f.set("city", "Paris");
        let err = f.finish().unwrap();
        assert!(err.contains("`city`"), "{err}");
        assert_eq!(out, b"{\"x\":1}");
    }
}
