//! The fast path of [`crate::event::convert::Decoder`]: one strict pass over a JSON
//! object that finds the raw text of its top-level members.
//!
//! It accepts a subset of JSON: whatever it accepts, `serde_json` accepts too and
//! reads the same members from. Anything it is unsure of (a `\u` escape, an
//! escaped member name, deep nesting, any grammar error) makes it answer "not
//! sure", and the decoder lets `serde_json` decide, with its error messages.
//! Events as producers write them take the fast path; a test holds it to
//! `serde_json` on the generator's events and on mutations of them.

/// Deeper nesting than this is left to `serde_json` (whose own limit is 128).
const MAX_DEPTH: u32 = 64;

/// Scans the object `text`; `found(name, value)` for each top-level member, in
/// order. `None`: not sure (or not an object), ask `serde_json`.
pub fn object<'a>(text: &'a str, mut found: impl FnMut(&'a str, &'a str)) -> Option<()> {
    let b = text.as_bytes();
    let start = ws(b, 0);
    let mut plain_names = true;
    let end = members(text, start, 1, |name, escaped, value| {
        plain_names &= !escaped;
        found(name, value);
    })?;
    (plain_names && ws(b, end) == b.len()).then_some(())
}

/// The object starting at `text[i] == '{'`: `each(name, escaped, value)` per
/// member (the name without its quotes, as written); where the object ends.
fn members<'a>(
    text: &'a str,
    i: usize,
    depth: u32,
    mut each: impl FnMut(&'a str, bool, &'a str),
) -> Option<usize> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'{') || depth > MAX_DEPTH {
        return None;
    }
    let mut j = ws(b, i + 1);
    if b.get(j) == Some(&b'}') {
        return Some(j + 1);
    }
    loop {
        let (name_end, escaped) = string(b, j)?;
        let name = &text[j + 1..name_end - 1];
        j = ws(b, name_end);
        if b.get(j) != Some(&b':') {
            return None;
        }
        let value_start = ws(b, j + 1);
        let value_end = value(text, value_start, depth)?;
        each(name, escaped, &text[value_start..value_end]);
        j = ws(b, value_end);
        match b.get(j)? {
            b',' => j = ws(b, j + 1),
            b'}' => return Some(j + 1),
            _ => return None,
        }
    }
}

/// The contents of the JSON string `text` (quotes included) when it needs no
/// unescaping, else `None`.
pub fn plain_string(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    match string(b, 0) {
        Some((end, false)) if end == b.len() => Some(&text[1..end - 1]),
        _ => None,
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// The string starting at `b[i] == '"'`: where it ends (after the closing quote)
/// and whether it holds escapes. `None` for a bad or `\u` escape, a control
/// character or no closing quote. The text is valid UTF-8 already.
fn string(b: &[u8], i: usize) -> Option<(usize, bool)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        j += weir_sdk::scan::find_below_or(&b[j..], 0x20, [b'"', b'\\', b'"']);
        match *b.get(j)? {
            b'"' => return Some((j + 1, escaped)),
            b'\\' => {
                match b.get(j + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    _ => return None,
                }
                escaped = true;
                j += 2;
            }
            c if c < 0x20 => return None,
            _ => j += 1,
        }
    }
}

/// The end of the value starting at `text[i]`, inside `depth` containers.
fn value(text: &str, i: usize, depth: u32) -> Option<usize> {
    let b = text.as_bytes();
    match *b.get(i)? {
        b'"' => string(b, i).map(|(end, _)| end),
        b'{' => members(text, i, depth + 1, |_, _, _| ()),
        b'[' => {
            if depth >= MAX_DEPTH {
                return None;
            }
            let mut j = ws(b, i + 1);
            if b.get(j) == Some(&b']') {
                return Some(j + 1);
            }
            loop {
                j = ws(b, value(text, j, depth + 1)?);
                match b.get(j)? {
                    b',' => j = ws(b, j + 1),
                    b']' => return Some(j + 1),
                    _ => return None,
                }
            }
        }
        b't' => literal(b, i, b"true"),
        b'f' => literal(b, i, b"false"),
        b'n' => literal(b, i, b"null"),
        b'-' | b'0'..=b'9' => number(b, i),
        _ => None,
    }
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    (b.get(i..i + word.len())? == word).then_some(i + word.len())
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; what follows is the caller's.
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |mut j: usize| {
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    if b[i] == b'-' {
        i += 1;
    }
    i = match *b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(i + 1),
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(text: &str) -> Option<Vec<(&str, &str)>> {
        let mut out = Vec::new();
        object(text, |n, v| out.push((n, v)))?;
        Some(out)
    }

    #[test]
    fn finds_members_and_their_raw_values() {
        let text = r#" { "a" : 1 , "b":{"x":[1, 2.5e-3, "s\"q"]}, "c":"z\n", "d":null,"e":true } "#;
        assert_eq!(
            members(text),
            Some(vec![
                ("a", "1"),
                ("b", r#"{"x":[1, 2.5e-3, "s\"q"]}"#),
                ("c", r#""z\n""#),
                ("d", "null"),
                ("e", "true"),
            ])
        );
        assert_eq!(members("{}"), Some(vec![]));
    }

    #[test]
    fn leaves_doubtful_text_to_serde_json() {
        for text in [
            "",
            "[1]",
            r#"{"a":1"#,
            r#"{"a":1,}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":tru}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a\"":1}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":1} x"#,
            r#"{"a" 1}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":{"b"}}"#,
        ] {
            assert_eq!(members(text), None, "{text}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(70), "]".repeat(70));
        assert_eq!(members(&deep), None);
    }

    #[test]
    fn plain_strings_are_borrowed() {
        assert_eq!(plain_string(r#""abc é""#), Some("abc é"));
        assert_eq!(plain_string(r#""a\"b""#), None);
        assert_eq!(plain_string(r#""ab"#), None);
        assert_eq!(plain_string(r#""a"b""#), None);
        assert_eq!(plain_string("12"), None);
    }
}
