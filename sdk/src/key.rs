//! Keys: what the attribute's declarations become. Each field declared in
//! `reads(...)` is a [`Read`] constant in a generated module `reads`, each one
//! in `writes(...)` a [`Write`] in `writes`, each table in `lookups(...)` a
//! [`KeyedTable`] or a [`Table`] in `lookups`. A plugin reads, writes and looks
//! up through them only, so a misspelt or undeclared name does not compile.
//! Their constructors are for the generated code.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use crate::config::FromValue;
use crate::types::{Any, Type};
use crate::{FieldSpec, FieldType};

/// A field the plugin declared it reads, of type `T` ([`crate::types`]):
/// `reads::NAME`, for [`Event::get`](crate::Event::get) and
/// [`Event::has`](crate::Event::has).
///
/// A configuration value may name a declared read: as a `Read<T>` it parses
/// into the key of that field, which must be of type `T`; as a `Read<Any>`,
/// of any type. Any other name fails `init`.
pub struct Read<T> {
    name: &'static str,
    ty: PhantomData<fn() -> T>,
}

impl<T> Read<T> {
    #[doc(hidden)]
    pub const fn __declared(name: &'static str) -> Read<T> {
        Read {
            name,
            ty: PhantomData,
        }
    }

    /// The field's name, as the payload and `describe` spell it.
    pub fn name(self) -> &'static str {
        self.name
    }
}

/// A field the plugin declared it writes: `writes::NAME`, for
/// [`Fields::set`](crate::Fields::set). `T` is the field's type
/// ([`crate::types`]), or `Option` of it when declared with `?`.
pub struct Write<T> {
    name: &'static str,
    /// The name as a JSON string and a colon, written as it is before each value.
    member: &'static str,
    ty: PhantomData<fn() -> T>,
}

impl<T> Write<T> {
    /// `member` is `name` as a JSON string followed by `:`.
    #[doc(hidden)]
    pub const fn __declared(name: &'static str, member: &'static str) -> Write<T> {
        Write {
            name,
            member,
            ty: PhantomData,
        }
    }

    /// The field's name, as the additions and `describe` spell it.
    pub fn name(self) -> &'static str {
        self.name
    }

    pub(crate) fn member(self) -> &'static [u8] {
        self.member.as_bytes()
    }
}

// By hand: derives would require `T: Clone` and `T: Debug`.
impl<T> Clone for Read<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Read<T> {}
impl<T> Clone for Write<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Write<T> {}

impl<T> fmt::Debug for Read<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reads::{}", self.name)
    }
}

impl<T> fmt::Debug for Write<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "writes::{}", self.name)
    }
}

/// A lookup table declared without a key field, `lookups(NAME)`: looked up
/// one key at a time, each [`Table::get`] one call to the host.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    name: &'static str,
}

impl Table {
    #[doc(hidden)]
    pub const fn __declared(name: &'static str) -> Table {
        Table { name }
    }

    /// The value for `key`, or `None` when the table has no such key.
    pub fn get(self, key: &str) -> Option<String> {
        crate::host::lookup(self.name, key)
    }

    #[inline]
    pub fn name(self) -> &'static str {
        self.name
    }
}

/// A lookup table declared with a key field, `lookups(NAME = "FIELD")`: the
/// whole batch is looked up in one call before the plugin function runs, and
/// [`Event::lookup`](crate::Event::lookup) reads an event's answer.
#[derive(Debug, Clone, Copy)]
pub struct KeyedTable {
    table: Table,
    /// Its place among the plugin's keyed tables, which is where the batch
    /// loop keeps its answers.
    index: usize,
}

impl KeyedTable {
    #[doc(hidden)]
    pub const fn __declared(name: &'static str, index: usize) -> KeyedTable {
        KeyedTable {
            table: Table { name },
            index,
        }
    }

    /// The value for any `key`, one call to the host, as [`Table::get`].
    pub fn get(self, key: &str) -> Option<String> {
        self.table.get(key)
    }

    #[inline]
    pub fn name(self) -> &'static str {
        self.table.name
    }

    #[inline]
    pub(crate) fn index(self) -> usize {
        self.index
    }
}

thread_local! {
    /// The plugin's declared reads while its configuration is parsed, so that
    /// a value naming a field parses into its key.
    static DECLARED: Cell<Option<&'static [FieldSpec]>> = const { Cell::new(None) };
}

/// Runs `f` (the parsing of the configuration) with `reads` as the fields a
/// configuration value may name.
pub(crate) fn with_declared<R>(reads: &'static [FieldSpec], f: impl FnOnce() -> R) -> R {
    struct Reset(Option<&'static [FieldSpec]>);
    impl Drop for Reset {
        fn drop(&mut self) {
            DECLARED.set(self.0);
        }
    }
    let _reset = Reset(DECLARED.replace(Some(reads)));
    f()
}

/// The declared read `text` names, if its type is `want` (any when `None`).
fn declared(text: &str, want: Option<FieldType>) -> Result<&'static str, String> {
    let Some(reads) = DECLARED.get() else {
        return Err("a field is named in the configuration only in `init`".into());
    };
    let name = text.trim();
    match reads.iter().find(|f| f.name == name) {
        Some(f) if want.is_none_or(|t| t == f.ty) => Ok(f.name),
        Some(f) => Err(format!(
            "`{name}` is {}, not {}",
            type_name(f.ty),
            type_name(want.unwrap_or(f.ty))
        )),
        None => Err(format!(
            "`{name}` is not among the fields the plugin reads ({})",
            reads.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::Text => "text",
        FieldType::Int => "int",
        FieldType::Float => "float",
        FieldType::Boolean => "boolean",
        FieldType::Json => "json",
    }
}

impl<T: Type> FromValue for Read<T> {
    fn from_value(text: &str) -> Result<Self, String> {
        declared(text, Some(T::TYPE)).map(Read::__declared)
    }
}

impl FromValue for Read<Any> {
    fn from_value(text: &str) -> Result<Self, String> {
        declared(text, None).map(Read::__declared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Boolean, Int};

    const READS: &[FieldSpec] = &[
        FieldSpec {
            name: "ts",
            ty: FieldType::Int,
            nullable: false,
        },
        FieldSpec {
            name: "is_bot",
            ty: FieldType::Boolean,
            nullable: true,
        },
    ];

    #[test]
    fn a_configured_field_name_becomes_the_key_of_a_declared_read() {
        with_declared(READS, || {
            assert_eq!(
                Read::<Boolean>::from_value(" is_bot").unwrap().name(),
                "is_bot"
            );
            assert_eq!(Read::<Any>::from_value("ts").unwrap().name(), "ts");
            assert_eq!(
                Read::<Boolean>::from_value("ts").unwrap_err(),
                "`ts` is int, not boolean"
            );
            assert_eq!(
                Read::<Int>::from_value("bot").unwrap_err(),
                "`bot` is not among the fields the plugin reads (ts, is_bot)"
            );
        });
        // Outside `init` no declaration is known.
        assert!(Read::<Any>::from_value("ts").is_err());
    }
}
