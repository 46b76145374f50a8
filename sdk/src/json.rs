//! A lazy scanner over one JSON object: finds a top-level member's raw value
//! without building a document, and reads scalars out of raw values.
//!
//! The host has already checked that every payload handed to a plugin is a
//! well-formed JSON object, so the scanner is strict only where it must be to
//! stay in bounds: on anything unexpected it answers "not found".

use std::borrow::Cow;

use crate::scan;

/// The raw bytes of member `key` of the object `obj`, or `None`. The last of
/// duplicate members wins, as in the host's decoder.
pub fn find<'a>(obj: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let mut found = None;
    let mut at = skip_ws(obj, 0);
    if obj.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    loop {
        at = skip_ws(obj, at);
        match obj.get(at)? {
            b'}' => return found,
            b'"' => {}
            _ => return found,
        }
        let (name, escaped, end) = string_span(obj, at)?;
        at = skip_ws(obj, end);
        if obj.get(at) != Some(&b':') {
            return found;
        }
        at = skip_ws(obj, at + 1);
        let value_end = value_end(obj, at)?;
        let matches = if escaped {
            unescape(name).is_some_and(|n| n == key)
        } else {
            name == key.as_bytes()
        };
        if matches {
            found = Some(&obj[at..value_end]);
        }
        at = skip_ws(obj, value_end);
        match obj.get(at)? {
            b',' => at += 1,
            _ => return found,
        }
    }
}

/// Where one top-level member of an object is, with its name's first eight
/// bytes and length, so that a lookup compares integers and rarely bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Member {
    pub prefix: u64,
    pub name: (u32, u32),
    pub value: (u32, u32),
}

/// Fills `members` with the top-level members of `obj`, in order; how many.
/// `None` when `obj` is not a plain object of unescaped member names or has
/// more members than `members` holds (the caller then falls back to [`find`]).
pub fn index(obj: &[u8], members: &[std::cell::Cell<Member>]) -> Option<usize> {
    let mut at = skip_ws(obj, 0);
    if obj.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_ws(obj, at + 1);
    if obj.get(at) == Some(&b'}') {
        return Some(0);
    }
    let mut n = 0;
    loop {
        if obj.get(at) != Some(&b'"') {
            return None;
        }
        let (name, escaped, end) = string_span(obj, at)?;
        if escaped {
            return None;
        }
        let name_start = at + 1;
        at = skip_ws(obj, end);
        if obj.get(at) != Some(&b':') {
            return None;
        }
        at = skip_ws(obj, at + 1);
        let value_end = value_end(obj, at)?;
        members.get(n)?.set(Member {
            prefix: prefix_at(obj, name_start, name_start + name.len()),
            name: (name_start as u32, (name_start + name.len()) as u32),
            value: (at as u32, value_end as u32),
        });
        n += 1;
        at = skip_ws(obj, value_end);
        match obj.get(at) {
            Some(b',') => at = skip_ws(obj, at + 1),
            Some(b'}') => return Some(n),
            _ => return None,
        }
    }
}

/// The first eight bytes of `name` (zeros after its end), little-endian,
/// read without a loop: two overlapping loads for a short name.
#[inline]
pub fn prefix(name: &[u8]) -> u64 {
    let n = name.len();
    if let Some(eight) = name.get(..8) {
        u64::from_le_bytes(eight.try_into().expect("eight bytes"))
    } else if n >= 4 {
        let lo = u32::from_le_bytes(name[..4].try_into().expect("four bytes"));
        let hi = u32::from_le_bytes(name[n - 4..].try_into().expect("four bytes"));
        u64::from(lo) | (u64::from(hi) << (8 * (n - 4)))
    } else if n >= 2 {
        let lo = u16::from_le_bytes(name[..2].try_into().expect("two bytes"));
        let hi = u16::from_le_bytes(name[n - 2..].try_into().expect("two bytes"));
        u64::from(lo) | (u64::from(hi) << (8 * (n - 2)))
    } else {
        name.first().map_or(0, |&c| u64::from(c))
    }
}

/// [`prefix`] of the name at `obj[start..end]`, reading eight bytes at once
/// when the object extends that far (it nearly always does: the value follows).
#[inline(always)]
fn prefix_at(obj: &[u8], start: usize, end: usize) -> u64 {
    let len = end - start;
    match obj.get(start..start + 8) {
        Some(eight) if len < 8 => {
            let word = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
            word & ((1u64 << (8 * len)) - 1)
        }
        _ => prefix(&obj[start..end]),
    }
}

/// The index of the first byte from `at` on that is not whitespace. Members
/// are rarely separated by any, so the usual answer takes no loop.
#[inline(always)]
fn skip_ws(b: &[u8], at: usize) -> usize {
    match b.get(at) {
        Some(b' ' | b'\t' | b'\n' | b'\r') => skip_ws_loop(b, at + 1),
        _ => at,
    }
}

#[inline(never)]
fn skip_ws_loop(b: &[u8], mut at: usize) -> usize {
    while let Some(c) = b.get(at) {
        if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            break;
        }
        at += 1;
    }
    at
}

/// The index of the first `"` or `\\` in `b`: a string's content is most of
/// an event, so it is searched a block at a time.
#[inline(always)]
fn quote_or_backslash(b: &[u8]) -> Option<usize> {
    scan::find_either(b, b'"', b'\\')
}

/// The string starting at `b[at] == '"'`: its content, whether it holds an
/// escape, and the index after its closing quote. A string without escapes
/// (nearly all) takes one search.
#[inline(always)]
fn string_span(b: &[u8], at: usize) -> Option<(&[u8], bool, usize)> {
    let i = at + 1 + quote_or_backslash(b.get(at + 1..)?)?;
    if b[i] == b'"' {
        return Some((&b[at + 1..i], false, i + 1));
    }
    escaped_span(b, at, i)
}

/// [`string_span`] from the first backslash, at `i`, on.
#[inline(never)]
fn escaped_span(b: &[u8], at: usize, mut i: usize) -> Option<(&[u8], bool, usize)> {
    loop {
        // Past the backslash and the byte it escapes.
        i += 2;
        i += quote_or_backslash(b.get(i..)?)?;
        if b[i] == b'"' {
            return Some((&b[at + 1..i], true, i + 1));
        }
    }
}

/// The index just after the value starting at `at`.
#[inline(always)]
fn value_end(b: &[u8], at: usize) -> Option<usize> {
    match *b.get(at)? {
        b'"' => string_span(b, at).map(|(_, _, end)| end),
        b'{' | b'[' => container_end(b, at),
        _ => {
            // A scalar ends at a delimiter or whitespace (or a control byte,
            // which a valid number never holds).
            let i = at + scan::find_below_or(&b[at..], 0x21, [b',', b'}', b']']);
            (i > at).then_some(i)
        }
    }
}

/// The index just after the object or array starting at `at`.
#[inline(never)]
fn container_end(b: &[u8], at: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = at;
    loop {
        match *b.get(i)? {
            b'"' => {
                i = string_span(b, i)?.2;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// A raw value as text: the content of a JSON string, unescaped only if it
/// holds an escape. `None` for anything but a string.
#[inline]
pub fn as_str(raw: &[u8]) -> Option<Cow<'_, str>> {
    let (content, escaped, end) = match raw.first() {
        Some(b'"') => string_span(raw, 0)?,
        _ => return None,
    };
    if end != raw.len() {
        return None;
    }
    if escaped {
        unescape(content).map(|s| Cow::Owned(s.into_owned()))
    } else {
        crate::text::utf8(content).map(Cow::Borrowed)
    }
}

/// A raw value as an integer (a JSON number without fraction or exponent).
pub fn as_int(raw: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(raw).ok()?;
    text.parse().ok()
}

/// A raw value as a float (any JSON number).
pub fn as_float(raw: &[u8]) -> Option<f64> {
    match raw.first()? {
        b'-' | b'0'..=b'9' => std::str::from_utf8(raw).ok()?.parse().ok(),
        _ => None,
    }
}

/// A raw value as a boolean.
pub fn as_bool(raw: &[u8]) -> Option<bool> {
    match raw {
        b"true" => Some(true),
        b"false" => Some(false),
        _ => None,
    }
}

/// The content of a JSON string with its escapes resolved.
fn unescape(content: &[u8]) -> Option<Cow<'_, str>> {
    if !content.contains(&b'\\') {
        return std::str::from_utf8(content).ok().map(Cow::Borrowed);
    }
    let mut out = String::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        let start = i;
        while i < content.len() && content[i] != b'\\' {
            i += 1;
        }
        out.push_str(std::str::from_utf8(&content[start..i]).ok()?);
        if i == content.len() {
            break;
        }
        let c = *content.get(i + 1)?;
        i += 2;
        match c {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let hi = hex4(content.get(i..i + 4)?)?;
                i += 4;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    if content.get(i..i + 2)? != b"\\u" {
                        return None;
                    }
                    let lo = hex4(content.get(i + 2..i + 6)?)?;
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo.checked_sub(0xDC00)? & 0x3FF)
                } else {
                    hi
                };
                out.push(char::from_u32(code)?);
            }
            _ => return None,
        }
    }
    Some(Cow::Owned(out))
}

fn hex4(b: &[u8]) -> Option<u32> {
    u32::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok()
}

/// Appends `s` to `out` as a JSON string, quotes included.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        // The next byte that needs an escape, a block at a time.
        let i = start + scan::find_below_or(&bytes[start..], 0x20, [b'"', b'\\', b'"']);
        out.extend_from_slice(&bytes[start..i]);
        let Some(&c) = bytes.get(i) else {
            break;
        };
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 0xf)]);
            }
        }
        start = i + 1;
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &[u8] = br#" { "a" : 1, "s":"x\"y", "n":null, "o":{"a":[1,{"b":"}"}]}, "f":-2.5e1, "b":true, "u":"\u00e9\ud83d\ude00", "a":2 } "#;

    #[test]
    fn finds_members_lazily_and_the_last_duplicate_wins() {
        assert_eq!(find(EVENT, "a"), Some(&b"2"[..]));
        assert_eq!(find(EVENT, "n"), Some(&b"null"[..]));
        assert_eq!(find(EVENT, "o"), Some(&br#"{"a":[1,{"b":"}"}]}"#[..]));
        assert_eq!(find(EVENT, "missing"), None);
        assert_eq!(find(b"[1,2]", "a"), None);
        assert_eq!(find(b"{\"a\":", "a"), None);
    }

    #[test]
    fn reads_scalars_by_their_json_type() {
        assert_eq!(as_str(find(EVENT, "s").unwrap()).unwrap(), "x\"y");
        assert_eq!(as_str(find(EVENT, "u").unwrap()).unwrap(), "é😀");
        assert_eq!(as_float(find(EVENT, "f").unwrap()), Some(-25.0));
        assert_eq!(as_int(find(EVENT, "f").unwrap()), None);
        assert_eq!(as_int(find(EVENT, "a").unwrap()), Some(2));
        assert_eq!(as_bool(find(EVENT, "b").unwrap()), Some(true));
        assert_eq!(as_str(b"12"), None);
        assert_eq!(as_float(b"\"1\""), None);
    }

    #[test]
    fn indexes_every_member_or_declines() {
        let obj = br#"{"a":1, "b" : {"c":[1,"]"]}, "d":"x"}"#;
        let members: [std::cell::Cell<Member>; 4] = Default::default();
        assert_eq!(index(obj, &members), Some(3));
        let seen: Vec<(String, String)> = members[..3]
            .iter()
            .map(|m| {
                let m = m.get();
                let text = |(s, e): (u32, u32)| {
                    String::from_utf8_lossy(&obj[s as usize..e as usize]).into_owned()
                };
                assert_eq!(m.prefix, prefix(text(m.name).as_bytes()));
                (text(m.name), text(m.value))
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("a".into(), "1".into()),
                ("b".into(), r#"{"c":[1,"]"]}"#.into()),
                ("d".into(), "\"x\"".into())
            ]
        );
        assert_eq!(index(b" { } ", &members), Some(0));
        assert_eq!(index(br#"{"\u0061":1}"#, &members), None);
        assert_eq!(index(b"[1]", &members), None);
        assert_eq!(index(br#"{"a":1,"b":2}"#, &members[..1]), None);
    }

    #[test]
    fn finds_the_first_quote_or_backslash_at_any_position() {
        for len in 0..40 {
            for at in 0..=len {
                for c in [b'"', b'\\'] {
                    let mut b = vec![b'a'; len];
                    // Bytes that differ from the targets by one bit, and high bytes.
                    for (i, x) in b.iter_mut().enumerate() {
                        *x = [b'#', b'!', b']', 0xa2, 0xdc, b'a'][i % 6];
                    }
                    let want = (at < len).then_some(at);
                    if at < len {
                        b[at] = c;
                        // A later target must not be taken for the first.
                        if at + 1 < len {
                            b[at + 1] = b'"';
                        }
                    }
                    assert_eq!(quote_or_backslash(&b), want, "len {len} at {at}");
                }
            }
        }
    }

    #[test]
    fn writes_strings_that_read_back() {
        let mut out = Vec::new();
        write_str(&mut out, "tab\there \"quoted\" \\ \u{1} é");
        assert_eq!(as_str(&out).unwrap(), "tab\there \"quoted\" \\ \u{1} é");
    }
}
