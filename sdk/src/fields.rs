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
                use std::io::Write as _;
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
int_field!(i8, i16, i32, i64, u8, u16, u32, u64);

impl IntoField for f64 {
    fn write_json(self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        if self.is_finite() {
            let _ = write!(out, "{self}");
        } else {
            out.extend_from_slice(b"null");
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
