//! The configuration parser: any text gives a configuration or an error, never
//! a panic, and an error about the file's content names a line of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::config::{Config, ConfigError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, std::path::Path::new("fuzz.toml")) {
        Ok(_) => {}
        Err(ConfigError::Invalid(at)) => {
            let lines = text.lines().count().max(1);
            assert!(at.line >= 1 && at.line <= lines + 1, "line {} of {lines}", at.line);
            let shown = ConfigError::Invalid(at).to_string();
            assert!(shown.starts_with("fuzz.toml:"), "{shown}");
        }
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.toml"), "{e}");
        }
    }
});
