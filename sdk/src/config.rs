//! A step's `config` from the TOML, read into the plugin's own types.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The step's configuration: string keys and values, as the host passes them
/// (`config = { actions = "click,save" }`), plus `file.NAME` for each granted file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pairs: Vec<(String, String)>,
    used: Vec<bool>,
}

/// A configuration value that cannot be used, naming its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config `{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn new(pairs: Vec<(String, String)>) -> Config {
        let used = vec![false; pairs.len()];
        Config { pairs, used }
    }

    /// For tests: `Config::from_pairs(&[("actions", "click")])`.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Config {
        Config::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn take(&mut self, key: &str) -> Option<String> {
        let i = self.pairs.iter().rposition(|(k, _)| k == key)?;
        self.used[i] = true;
        Some(self.pairs[i].1.clone())
    }

    /// `key` parsed, or `None` when absent.
    pub fn get<T: FromValue>(&mut self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(text) => T::from_value(&text)
                .map(Some)
                .map_err(|message| ConfigError {
                    key: key.to_string(),
                    message: format!("{message} (got `{text}`)"),
                }),
        }
    }

    /// `key` parsed; an error when absent.
    pub fn required<T: FromValue>(&mut self, key: &str) -> Result<T, ConfigError> {
        self.get(key)?.ok_or_else(|| ConfigError {
            key: key.to_string(),
            message: "required but not set in the step's `config`".into(),
        })
    }

    /// `key` parsed, or `default` parsed when absent.
    pub fn get_or<T: FromValue>(&mut self, key: &str, default: &str) -> Result<T, ConfigError> {
        match self.get(key)? {
            Some(v) => Ok(v),
            None => T::from_value(default).map_err(|message| ConfigError {
                key: key.to_string(),
                message: format!("bad default: {message}"),
            }),
        }
    }

    /// Where granted file `name` can be read (`files = [".../NAME"]` in the step).
    pub fn file(&mut self, name: &str) -> Result<PathBuf, ConfigError> {
        let key = format!("file.{name}");
        self.take(&key).map(PathBuf::from).ok_or(ConfigError {
            key,
            message: format!("file `{name}` is not granted: add it to the step's `files`"),
        })
    }

    /// An error for the first key no one read (a misspelt key, say). Granted
    /// files (`file.NAME`) need not be read.
    pub fn finish(&self) -> Result<(), ConfigError> {
        let known: Vec<&str> = self
            .pairs
            .iter()
            .zip(&self.used)
            .filter(|(_, &u)| u)
            .map(|((k, _), _)| k.as_str())
            .collect();
        match self
            .pairs
            .iter()
            .zip(&self.used)
            .find(|((k, _), &u)| !u && !k.starts_with("file."))
        {
            None => Ok(()),
            Some(((k, _), _)) => Err(ConfigError {
                key: k.clone(),
                message: if known.is_empty() {
                    "unknown key: the plugin takes no configuration".into()
                } else {
                    format!("unknown key (known: {})", known.join(", "))
                },
            }),
        }
    }
}

/// A plugin's configuration type, built once per instance in `init`. Derive it
/// with `#[derive(weir_sdk::Config)]`, or implement it to do more (open a file).
pub trait FromConfig: Sized {
    fn from_config(config: &mut Config) -> Result<Self, ConfigError>;
}

impl FromConfig for () {
    fn from_config(_: &mut Config) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// A type one configuration value parses into.
pub trait FromValue: Sized {
    fn from_value(text: &str) -> Result<Self, String>;
}

macro_rules! from_str_value {
    ($($t:ty => $what:literal),* $(,)?) => {$(
        impl FromValue for $t {
            fn from_value(text: &str) -> Result<Self, String> {
                <$t>::from_str(text.trim()).map_err(|_| format!("expected {}", $what))
            }
        }
    )*};
}
from_str_value!(
    i32 => "an integer", i64 => "an integer", u32 => "a non-negative integer",
    u64 => "a non-negative integer", usize => "a non-negative integer", f64 => "a number",
    bool => "`true` or `false`",
);

impl FromValue for String {
    fn from_value(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
}

impl FromValue for PathBuf {
    fn from_value(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }
}

/// A comma-separated list: `"click, save"` is `["click", "save"]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct List<T>(pub Vec<T>);

impl<T: FromValue> FromValue for List<T> {
    fn from_value(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| T::from_value(s).map_err(|e| format!("item `{s}`: {e}")))
            .collect::<Result<_, _>>()
            .map(List)
    }
}

impl<T> std::ops::Deref for List<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_into_types_and_errors_name_the_key() {
        let mut c = Config::from_pairs(&[("n", "12"), ("list", "a, b,,c"), ("bad", "x")]);
        assert_eq!(c.required::<i64>("n"), Ok(12));
        let l: List<String> = c.required("list").unwrap();
        assert_eq!(l.0, ["a", "b", "c"]);
        let e = c.get::<u32>("bad").unwrap_err();
        assert_eq!(
            e.to_string(),
            "config `bad`: expected a non-negative integer (got `x`)"
        );
        let e = c.required::<String>("missing").unwrap_err();
        assert_eq!(e.key, "missing");
        assert_eq!(c.get_or::<bool>("flag", "true"), Ok(true));
    }

    #[test]
    fn unread_keys_are_reported() {
        let mut c = Config::from_pairs(&[
            ("actions", "x"),
            ("actoins", "y"),
            ("file.a", "/weir/files/a"),
        ]);
        let _: String = c.required("actions").unwrap();
        let e = c.finish().unwrap_err();
        assert_eq!(
            e.to_string(),
            "config `actoins`: unknown key (known: actions)"
        );
        let mut ok = Config::from_pairs(&[("file.a", "/weir/files/a")]);
        assert_eq!(ok.file("a").unwrap(), PathBuf::from("/weir/files/a"));
        assert!(ok.finish().is_ok());
    }
}
