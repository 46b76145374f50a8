//! Text helpers for plugin code, made for a guest: each reads a 16-byte block
//! per loop turn where the standard library's would read a byte or a word.

use crate::config::FromValue;
use crate::scan::{self, Lanes, Pred};

/// `bytes` as text, or `None` when they are not UTF-8. ASCII, which most text
/// in events is, is recognised a block at a time; anything else gets the full
/// check.
///
/// ```
/// assert_eq!(weir_sdk::text::utf8(b"London"), Some("London"));
/// assert_eq!(weir_sdk::text::utf8("Zürich".as_bytes()), Some("Zürich"));
/// assert_eq!(weir_sdk::text::utf8(b"\xff"), None);
/// ```
#[inline]
pub fn utf8(bytes: &[u8]) -> Option<&str> {
    if scan::is_ascii(bytes) {
        // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8.
        #[allow(unsafe_code)]
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// Substrings searched for together, ignoring ASCII case. As a config value:
/// a comma-separated list (`"bot,crawler,spider"`).
///
/// ```
/// let bots = weir_sdk::text::Markers::new(["bot", "Crawler"]);
/// assert!(bots.found_in(b"Mozilla/5.0 (compatible; Googlebot/2.1)"));
/// assert!(bots.found_in(b"a CRAWLER"));
/// assert!(!bots.found_in(b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1)"));
/// ```
///
/// The text is read a 16-byte block per loop turn for bytes that could start
/// a marker; such a byte and the next must also begin some marker before the
/// markers are compared.
#[derive(Debug, Clone)]
pub struct Markers {
    /// In lower case, none empty.
    markers: Vec<Vec<u8>>,
    /// The distinct first bytes, with `0x20` set (lower case for letters),
    /// repeated to fill eight slots; `None` when there are more than eight.
    firsts: Option<[u8; 8]>,
    /// Bytes that start some marker, in either case.
    starts: [bool; 256],
    /// Pairs of bytes (each with `0x20` set) that start some marker, as bits
    /// of a 65,536-bit set; a one-byte marker sets every pair it starts.
    pairs: Box<[u64; 1024]>,
}

impl Markers {
    pub fn new<S: AsRef<str>>(markers: impl IntoIterator<Item = S>) -> Markers {
        let markers: Vec<Vec<u8>> = markers
            .into_iter()
            .filter(|m| !m.as_ref().is_empty())
            .map(|m| m.as_ref().to_ascii_lowercase().into_bytes())
            .collect();
        let mut starts = [false; 256];
        let mut pairs = Box::new([0u64; 1024]);
        let mut set_pair = |a: u8, b: u8| {
            let i = usize::from(a | 0x20) << 8 | usize::from(b | 0x20);
            pairs[i / 64] |= 1 << (i % 64);
        };
        let mut distinct: Vec<u8> = Vec::new();
        for m in &markers {
            starts[usize::from(m[0])] = true;
            starts[usize::from(m[0].to_ascii_uppercase())] = true;
            match m.get(1) {
                Some(&second) => set_pair(m[0], second),
                None => (0..=255).for_each(|b| set_pair(m[0], b)),
            }
            if !distinct.contains(&(m[0] | 0x20)) {
                distinct.push(m[0] | 0x20);
            }
        }
        let firsts = (!distinct.is_empty() && distinct.len() <= 8)
            .then(|| std::array::from_fn(|i| distinct[i % distinct.len()]));
        Markers {
            markers,
            firsts,
            starts,
            pairs,
        }
    }

    /// Whether `text` contains any marker.
    pub fn found_in(&self, text: &[u8]) -> bool {
        let Some(f) = self.firsts else {
            return !self.markers.is_empty() && (0..text.len()).any(|i| self.at(text, i));
        };
        scan::flagged(text, Firsts(f), |i| self.at(text, i))
    }

    /// Whether a marker starts at `text[i]`.
    #[inline]
    fn at(&self, text: &[u8], i: usize) -> bool {
        if !self.starts[usize::from(text[i])] {
            return false;
        }
        if let Some(&next) = text.get(i + 1) {
            let pair = usize::from(text[i] | 0x20) << 8 | usize::from(next | 0x20);
            if self.pairs[pair / 64] & (1 << (pair % 64)) == 0 {
                return false;
            }
        }
        self.markers.iter().any(|m| {
            text.get(i..i + m.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(m))
        })
    }
}

/// Bytes that may start a marker: any of eight, with `0x20` set.
#[derive(Clone, Copy)]
struct Firsts([u8; 8]);

impl Pred for Firsts {
    #[inline(always)]
    fn flags<L: Lanes>(self, v: L) -> L {
        let [a, b, c, d, e, f, g, h] = self.0;
        let v = v.folded();
        v.eq(a)
            .or(v.eq(b))
            .or(v.eq(c))
            .or(v.eq(d))
            .or(v.eq(e))
            .or(v.eq(f))
            .or(v.eq(g))
            .or(v.eq(h))
    }
}

impl FromValue for Markers {
    fn from_value(text: &str) -> Result<Self, String> {
        Ok(Markers::new(text.split(',').map(str::trim)))
    }
}

#[cfg(test)]
mod tests {
    use super::Markers;

    /// Every marker at every position of plain texts of every length up to
    /// three blocks, in both cases; cut short, none is found.
    #[test]
    fn markers_are_found_at_any_position_in_any_case() {
        let m = Markers::new(["bot", "Crawler", "#", "curl/"]);
        let plain = "Mozilla/5.0 (Linux; Android 14) Chrome/1 like Gecko, Safari".repeat(2);
        for len in 0..50 {
            let plain = &plain[..len];
            assert!(!m.found_in(plain.as_bytes()), "{plain:?}");
            for at in 0..=len {
                for marker in ["bot", "BoT", "crawler", "CRAWLER", "#", "curl/"] {
                    let text = format!("{}{marker}{}", &plain[..at], &plain[at..]);
                    assert!(m.found_in(text.as_bytes()), "{text:?}");
                    if marker.len() > 1 {
                        let cut = format!("{}{}", &plain[..at], &marker[..marker.len() - 1]);
                        assert!(!m.found_in(cut.as_bytes()), "{cut:?}");
                    }
                }
            }
        }
    }

    /// More than eight first letters take the byte-by-byte path, with the same
    /// answers; no marker at all finds nothing.
    #[test]
    fn many_or_no_markers() {
        let many = Markers::new("abc,bcd,cde,def,efg,fgh,ghi,hij,ijk".split(','));
        assert!(many.firsts.is_none());
        assert!(many.found_in(b"xxxxxxxxxxxxxxxxxxxxIJKxx"));
        assert!(!many.found_in(b"xxxxxxxxxxxxxxxxxxxxIJxx"));
        let none = Markers::new(Vec::<String>::new());
        assert!(!none.found_in(b"anything at all, long enough for a block"));
    }
}
