//! `weir plugin new`: a plugin crate that builds and passes its own test as
//! generated.
//!
//! The crate depends on `weir-sdk` by path. The SDK is found, in order: the
//! `--sdk` argument, the `WEIR_SDK` environment variable, or the `sdk/` folder
//! of the checkout this `weir` was built from. The crate is its own workspace,
//! so it builds the same inside a Weir checkout or anywhere else.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// What kind of plugin to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PluginKind {
    Filter,
    Enricher,
}

impl PluginKind {
    fn as_str(self) -> &'static str {
        match self {
            PluginKind::Filter => "filter",
            PluginKind::Enricher => "enricher",
        }
    }
}

/// The language a plugin is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl Lang {
    /// The SDK's folder for this language, below the Rust SDK's (`sdk/`).
    fn sdk_dir(self, sdk: &Path) -> PathBuf {
        match self {
            Lang::Rust => sdk.to_owned(),
            Lang::Python => sdk.join("python"),
            Lang::Js => sdk.join("js"),
        }
    }

    /// What to run next in the new plugin's folder `dir`.
    pub fn next_steps(self, name: &str, dir: &Path, sdk: &Path) -> String {
        let build = |lang: &str| {
            format!(
                "{}/build {} PLUGIN_DIR/{name}.wasm",
                sdk.join(lang).display(),
                dir.display()
            )
        };
        match self {
            Lang::Rust => format!(
                "next: cd {} && cargo test && cargo build --target wasm32-wasip2 --release\n\
                 then: cp target/wasm32-wasip2/release/{}.wasm PLUGIN_DIR/{name}.wasm",
                dir.display(),
                name.replace('-', "_")
            ),
            Lang::Python => format!(
                "next: cd {} && PYTHONPATH={} python3 -m pytest -q\nthen: {}",
                dir.display(),
                sdk.join("python").display(),
                build("python")
            ),
            Lang::Js => format!(
                "next: cd {} && node --test\nthen: {}",
                dir.display(),
                build("js")
            ),
        }
    }
}

/// Finds the SDK: `explicit`, else `$WEIR_SDK`, else this checkout's `sdk/`.
pub fn find_sdk(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let from_env = std::env::var_os("WEIR_SDK").map(PathBuf::from);
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    let candidates: Vec<(PathBuf, &str)> = explicit
        .map(|p| (p.to_owned(), "--sdk"))
        .into_iter()
        .chain(from_env.map(|p| (p, "WEIR_SDK")))
        .chain(std::iter::once((
            built_from,
            "the checkout weir was built from",
        )))
        .collect();
    for (path, how) in &candidates {
        if path.join("Cargo.toml").is_file() {
            return path
                .canonicalize()
                .with_context(|| format!("resolving the SDK at {} ({how})", path.display()));
        }
        if *how != "the checkout weir was built from" {
            bail!(
                "{} (from {how}) is not the weir-sdk crate: it has no Cargo.toml",
                path.display()
            );
        }
    }
    bail!("cannot find weir-sdk: pass --sdk PATH or set WEIR_SDK to the sdk/ folder of a Weir checkout")
}

/// Writes plugin `name` in `lang` into `dir` (which must not exist or be
/// empty): a Rust crate, or a Python or JavaScript project copied from the
/// language SDK's `template/KIND/` with `{{name}}` replaced.
pub fn new_plugin(
    name: &str,
    kind: PluginKind,
    lang: Lang,
    dir: &Path,
    sdk: &Path,
) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!("`{name}` is not a plugin name: lower-case letters, digits and `-`, starting with a letter");
    }
    if dir.exists()
        && dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} already exists and is not empty", dir.display());
    }
    if lang != Lang::Rust {
        return from_template(name, kind, &lang.sdk_dir(sdk), dir);
    }
    let src = dir.join("src");
    std::fs::create_dir_all(&src).with_context(|| format!("creating {}", src.display()))?;
    let sdk = sdk.display().to_string().replace('\\', "/");
    let write = |path: PathBuf, text: String| {
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write(
        dir.join("Cargo.toml"),
        CARGO_TOML.replace("{name}", name).replace("{sdk}", &sdk),
    )?;
    let lib = match kind {
        PluginKind::Filter => FILTER_RS,
        PluginKind::Enricher => ENRICHER_RS,
    };
    write(src.join("lib.rs"), lib.replace("{name}", name))?;
    write(
        dir.join("README.md"),
        README
            .replace("{name}", name)
            .replace("{file}", &name.replace('-', "_")),
    )?;
    write(dir.join(".gitignore"), "/target\n/Cargo.lock\n".into())?;
    // The same build flags as this repository's plugins: 128-bit SIMD, which
    // the SDK's scans use (without it they fall back to 64-bit words).
    std::fs::create_dir_all(dir.join(".cargo"))
        .with_context(|| format!("creating {}", dir.join(".cargo").display()))?;
    write(dir.join(".cargo/config.toml"), CARGO_CONFIG.into())?;
    Ok(())
}

/// Copies `SDK/template/KIND/` into `dir`, replacing `{{name}}` in each file.
fn from_template(name: &str, kind: PluginKind, sdk: &Path, dir: &Path) -> anyhow::Result<()> {
    let template = sdk.join("template").join(kind.as_str());
    let entries = std::fs::read_dir(&template)
        .with_context(|| format!("reading the template {}", template.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let to = dir.join(path.file_name().unwrap_or_default());
        std::fs::write(&to, text.replace("{{name}}", name))
            .with_context(|| format!("writing {}", to.display()))?;
    }
    // A JavaScript plugin imports "weir": node finds the SDK through
    // node_modules/ (ignored by the template's .gitignore), the build by itself.
    if sdk.join("package.json").is_file() {
        let modules = dir.join("node_modules");
        std::fs::create_dir_all(&modules)
            .with_context(|| format!("creating {}", modules.display()))?;
        std::os::unix::fs::symlink(sdk, modules.join("weir"))
            .with_context(|| format!("linking {} to the SDK", modules.join("weir").display()))?;
    }
    Ok(())
}

const CARGO_CONFIG: &str = include_str!("../../../.cargo/config.toml");

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

# cdylib: the wasm component; rlib: the same code for native `cargo test`.
[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
weir-sdk = { path = "{sdk}" }

# Its own workspace: builds the same inside a Weir checkout or anywhere else.
[workspace]

[profile.release]
lto = true
codegen-units = 1
strip = true
opt-level = 3
"#;

const FILTER_RS: &str = r##"//! {name}: a Weir filter. It keeps events whose `action` is one of the
//! configured actions (step config: `actions = "save,closeup"`).

use weir_sdk::{filter, Event, List};

#[derive(weir_sdk::Config)]
pub struct Settings {
    /// Actions to keep, comma separated.
    #[config(default = "save")]
    actions: List<String>,
}

#[filter(reads(action: text))]
fn keep(event: &Event, settings: &Settings) -> bool {
    event
        .get(reads::action)
        .is_some_and(|action| settings.actions.iter().any(|a| *a == action))
}

#[cfg(test)]
mod tests {
    use weir_sdk::testing::Outcome::{Dropped, Kept};

    #[test]
    fn keeps_the_configured_actions() {
        let events = [r#"{"action":"save"}"#, r#"{"action":"click"}"#, r#"{}"#];
        assert_eq!(super::weir_plugin::test(&events, &[]).unwrap(), [Kept, Dropped, Dropped]);
        let clicks = super::weir_plugin::test(&events, &[("actions", "click")]).unwrap();
        assert_eq!(clicks, [Dropped, Kept, Dropped]);
    }
}
"##;

const ENRICHER_RS: &str = r##"//! {name}: a Weir enricher. It adds `hour`, the hour of the day (UTC) of
//! the event's `ts` (milliseconds since the Unix epoch), or null without one.

use weir_sdk::{enricher, Event, Fields};

#[enricher(reads(ts: int?), writes(hour: int?))]
fn enrich(event: &Event, out: &mut Fields) {
    let hour = event.get(reads::ts).map(|ms| ms.div_euclid(3_600_000).rem_euclid(24));
    out.set(writes::hour, hour);
}

#[cfg(test)]
mod tests {
    use super::{weir_plugin, writes};

    #[test]
    fn adds_the_hour_of_the_day() {
        // 2026-11-26T09:30:00Z
        let out = weir_plugin::test(&[r#"{"ts":1795685400000}"#, r#"{}"#], &[]).unwrap();
        assert_eq!(out[0].added().get(writes::hour), Some(9));
        assert!(out[1].added().is_null(writes::hour));
    }
}
"##;

const README: &str = r#"# {name}

A Weir plugin.

    cargo test                                             # native, no wasm
    cargo build --target wasm32-wasip2 --release           # the component
    cp target/wasm32-wasip2/release/{file}.wasm PLUGIN_DIR/{name}.wasm

Then name it in a step of the pipeline's TOML and try it on captured events:

    [[pipeline.step]]
    plugin = "{name}"

    weir check -c weir.toml
    weir test -c weir.toml --input events.jsonl
"#;
