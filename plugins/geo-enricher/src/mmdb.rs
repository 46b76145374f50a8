//! A reader of MaxMind DB files (GeoLite2 City) that decodes only what the
//! enricher writes: country ISO code, first subdivision's and city's English
//! names, latitude and longitude. Many networks share one record, so decoded
//! records are kept by their offset in the data section; the strings stay in
//! the file's bytes and are never copied.
//!
//! Format: <https://maxmind.github.io/MaxMind-DB/>.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";
/// Records decoded and kept, at most; the cache starts afresh beyond.
const CACHE_LIMIT: usize = 1 << 18;

/// A byte range of the file (a string).
type Span = (u32, u32);

/// What the database says of one address, as ranges into its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Place {
    pub country: Option<Span>,
    pub region: Option<Span>,
    pub city: Option<Span>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// An open database.
#[derive(Debug)]
pub struct Reader {
    bytes: Vec<u8>,
    node_count: u32,
    record_size: u16,
    /// Where the data section starts.
    data: usize,
    /// The node IPv4 addresses start from (after 96 zero bits in an IPv6 tree).
    ipv4_start: u32,
    ip_version: u16,
    /// The node reached by the first 16 bits of each IPv4 address (or the
    /// answer, when the tree ends sooner; `NONE` where a record lies beyond
    /// the file): half of every IPv4 walk is one load.
    ipv4_top: Vec<u32>,
    cache: HashMap<u32, Place, BuildHasherDefault<OffsetHasher>>,
}

/// Hashes the cache's keys, offsets into the data section, with one
/// multiplication: the file is the operator's, so the keys need no defence
/// against chosen collisions (SipHash's purpose), and this is per event.
#[derive(Default)]
struct OffsetHasher(u64);

impl Hasher for OffsetHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u32(u32::from(b) ^ (self.0 as u32));
        }
    }

    fn write_u32(&mut self, n: u32) {
        let h = (self.0 ^ u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // The table picks buckets by the low bits: fold the well-mixed high
        // half into them.
        self.0 = h ^ (h >> 32);
    }
}

/// An `ipv4_top` entry for a walk that left the file.
const NONE: u32 = u32::MAX;

impl Reader {
    /// Checks the file's metadata and tree; an error says what is wrong.
    pub fn new(bytes: Vec<u8>) -> Result<Reader, String> {
        let at = bytes
            .windows(METADATA_MARKER.len())
            .rposition(|w| w == METADATA_MARKER)
            .ok_or("not a MaxMind DB file (no metadata marker)")?;
        let meta = at + METADATA_MARKER.len();
        let d = Decoder {
            bytes: &bytes,
            base: meta,
        };
        let (mut node_count, mut record_size, mut ip_version) = (None, None, None);
        d.map_entries(meta, |d, key, value| {
            match key {
                b"node_count" => node_count = d.uint(value),
                b"record_size" => record_size = d.uint(value),
                b"ip_version" => ip_version = d.uint(value),
                _ => {}
            }
            Some(())
        })
        .ok_or("unreadable metadata")?;
        let node_count = node_count.ok_or("metadata without node_count")? as u32;
        let record_size = record_size.ok_or("metadata without record_size")? as u16;
        let ip_version = ip_version.ok_or("metadata without ip_version")? as u16;
        if ![24, 28, 32].contains(&record_size) {
            return Err(format!("unsupported record size {record_size}"));
        }
        let tree = node_count as usize * record_size as usize / 4;
        if tree + 16 > at {
            return Err("the search tree runs past the data".into());
        }
        let mut r = Reader {
            bytes,
            node_count,
            record_size,
            data: tree + 16,
            ipv4_start: 0,
            ip_version,
            ipv4_top: Vec::new(),
            cache: HashMap::default(),
        };
        if ip_version == 6 {
            // IPv4 addresses sit under the first 96 zero bits (::/96).
            r.ipv4_start = r
                .walk(0, &[0; 12])
                .ok_or("the search tree points beyond the file")?;
        }
        let mut top = vec![NONE; 1 << 16];
        r.fill_top(&mut top, r.ipv4_start, 0, 0);
        r.ipv4_top = top;
        Ok(r)
    }

    /// Fills the entries of `top` under the `depth`-bit prefix `prefix`,
    /// whose node is `node`: one visit per node of the tree's first 16 levels.
    fn fill_top(&self, top: &mut [u32], node: u32, depth: u32, prefix: usize) {
        if depth == 16 || node >= self.node_count {
            let span = 1 << (16 - depth);
            top[prefix * span..(prefix + 1) * span].fill(node);
            return;
        }
        for bit in 0..2 {
            let at = prefix * 2 + bit;
            match self.record(node, bit) {
                Some(child) => self.fill_top(top, child, depth + 1, at),
                None => {
                    let span = 1 << (16 - depth - 1);
                    top[at * span..(at + 1) * span].fill(NONE);
                }
            }
        }
    }

    /// Record `bit` (0: left, 1: right) of node `n`.
    fn record(&self, n: u32, bit: usize) -> Option<u32> {
        let (b, n) = (&self.bytes[..], n as usize);
        match self.record_size {
            24 => record24(b, n, bit),
            28 => record28(b, n, bit),
            _ => record32(b, n, bit),
        }
    }

    /// Follows the bits of `addr` (big-endian bytes) down the search tree from
    /// `node`, to a data pointer or the "no record" node. The record size is
    /// matched once per address, not once per bit, and the eight bits of a
    /// byte make a loop LLVM unrolls: a guest pays its loop overhead (and its
    /// epoch check) once per byte. `None`: a record beyond the file.
    fn walk(&self, node: u32, addr: &[u8]) -> Option<u32> {
        let b = &self.bytes[..];
        match self.record_size {
            24 => self.descend(node, addr, |n, bit| record24(b, n, bit)),
            28 => self.descend(node, addr, |n, bit| record28(b, n, bit)),
            _ => self.descend(node, addr, |n, bit| record32(b, n, bit)),
        }
    }

    #[inline(always)]
    fn descend(
        &self,
        mut node: u32,
        addr: &[u8],
        record: impl Fn(usize, usize) -> Option<u32>,
    ) -> Option<u32> {
        for &byte in addr {
            for shift in (0..8).rev() {
                if node >= self.node_count {
                    return Some(node);
                }
                node = record(node as usize, usize::from((byte >> shift) & 1))?;
            }
        }
        Some(node)
    }

    /// The place of `ip`, or `None` when the database has no record for it.
    pub fn locate(&mut self, ip: IpAddr) -> Option<Place> {
        let node = match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                let top = self.ipv4_top[usize::from(u16::from_be_bytes([a, b]))];
                if top == NONE {
                    return None;
                }
                self.walk(top, &[c, d])?
            }
            IpAddr::V6(_) if self.ip_version == 4 => return None,
            IpAddr::V6(v6) => self.walk(0, &v6.octets())?,
        };
        if node <= self.node_count {
            return None;
        }
        let offset = node - self.node_count - 16;
        if let Some(p) = self.cache.get(&offset) {
            return Some(*p);
        }
        let d = Decoder {
            bytes: &self.bytes,
            base: self.data,
        };
        let place = d.place(self.data + offset as usize)?;
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(offset, place);
        Some(place)
    }

    /// The text of a span of a [`Place`].
    pub fn text(&self, span: Option<Span>) -> Option<&str> {
        let (s, e) = span?;
        weir_sdk::text::utf8(self.bytes.get(s as usize..e as usize)?)
    }
}

/// Record `bit` of node `n` in a tree of 24-bit records.
#[inline(always)]
fn record24(b: &[u8], n: usize, bit: usize) -> Option<u32> {
    let r = b.get(n * 6 + bit * 3..n * 6 + bit * 3 + 3)?;
    Some(u32::from_be_bytes([0, r[0], r[1], r[2]]))
}

/// Record `bit` of node `n` in a tree of 28-bit records (the middle byte
/// holds the high nibbles of both).
#[inline(always)]
fn record28(b: &[u8], n: usize, bit: usize) -> Option<u32> {
    let r = b.get(n * 7..n * 7 + 7)?;
    Some(if bit == 0 {
        (u32::from(r[3] & 0xF0) << 20) | u32::from_be_bytes([0, r[0], r[1], r[2]])
    } else {
        (u32::from(r[3] & 0x0F) << 24) | u32::from_be_bytes([0, r[4], r[5], r[6]])
    })
}

/// Record `bit` of node `n` in a tree of 32-bit records.
#[inline(always)]
fn record32(b: &[u8], n: usize, bit: usize) -> Option<u32> {
    let r = b.get(n * 8 + bit * 4..n * 8 + bit * 4 + 4)?;
    Some(u32::from_be_bytes([r[0], r[1], r[2], r[3]]))
}

/// Reads the data section (or the metadata, with its own base for pointers).
struct Decoder<'a> {
    bytes: &'a [u8],
    base: usize,
}

/// A decoded control byte: type, size, and where the payload starts.
#[derive(Clone, Copy)]
struct Field {
    ty: u8,
    size: usize,
    at: usize,
}

impl Decoder<'_> {
    /// The field at `at`, following a pointer if there is one.
    fn field(&self, at: usize) -> Option<Field> {
        let f = self.control(at)?;
        if f.ty == 1 {
            let target = self.pointer(at)?;
            return self.control(target);
        }
        Some(f)
    }

    fn control(&self, at: usize) -> Option<Field> {
        let b = self.bytes;
        let ctrl = *b.get(at)?;
        let mut ty = ctrl >> 5;
        let mut at = at + 1;
        if ty == 1 {
            return Some(Field { ty, size: 0, at });
        }
        if ty == 0 {
            ty = 7 + *b.get(at)?;
            at += 1;
        }
        let mut size = usize::from(ctrl & 0x1f);
        if size >= 29 {
            let n = size - 28;
            let extra = b.get(at..at + n)?;
            at += n;
            let v = extra
                .iter()
                .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
            size = match n {
                1 => 29 + v,
                2 => 285 + v,
                _ => 65_821 + v,
            };
        }
        Some(Field { ty, size, at })
    }

    /// Where the pointer at `at` points (absolute).
    fn pointer(&self, at: usize) -> Option<usize> {
        let b = self.bytes;
        let ctrl = *b.get(at)?;
        let ss = (ctrl >> 3) & 0x3;
        let vvv = usize::from(ctrl & 0x7);
        let p = b.get(at + 1..at + 2 + usize::from(ss))?;
        let v = p.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        let rel = match ss {
            0 => (vvv << 8) | v,
            1 => ((vvv << 16) | v) + 2048,
            2 => ((vvv << 24) | v) + 526_336,
            _ => v,
        };
        Some(self.base + rel)
    }

    /// The index just after the value at `at` (a pointer counts as itself).
    fn skip(&self, at: usize) -> Option<usize> {
        let f = self.control(at)?;
        Some(match f.ty {
            1 => at + 2 + usize::from((self.bytes[at] >> 3) & 0x3),
            7 => {
                let mut next = f.at;
                for _ in 0..f.size * 2 {
                    next = self.skip(next)?;
                }
                next
            }
            11 => {
                let mut next = f.at;
                for _ in 0..f.size {
                    next = self.skip(next)?;
                }
                next
            }
            14 => f.at,
            3 => f.at + 8,
            15 => f.at + 4,
            _ => f.at + f.size,
        })
    }

    /// Calls `each(key, value position)` for every entry of the map at `at`.
    fn map_entries(
        &self,
        at: usize,
        mut each: impl FnMut(&Self, &[u8], usize) -> Option<()>,
    ) -> Option<()> {
        let map = self.field(at)?;
        if map.ty != 7 {
            return None;
        }
        let mut next = map.at;
        for _ in 0..map.size {
            let key = self.field(next)?;
            if key.ty != 2 {
                return None;
            }
            let name = self.bytes.get(key.at..key.at + key.size)?;
            let value = self.skip(next)?;
            next = self.skip(value)?;
            each(self, name, value)?;
        }
        Some(())
    }

    fn uint(&self, at: usize) -> Option<u64> {
        let f = self.field(at)?;
        if !matches!(f.ty, 5 | 6 | 9) || f.size > 8 {
            return None;
        }
        let b = self.bytes.get(f.at..f.at + f.size)?;
        Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    fn double(&self, at: usize) -> Option<f64> {
        let f = self.field(at)?;
        match f.ty {
            3 => Some(f64::from_be_bytes(
                self.bytes.get(f.at..f.at + 8)?.try_into().ok()?,
            )),
            15 => Some(f64::from(f32::from_be_bytes(
                self.bytes.get(f.at..f.at + 4)?.try_into().ok()?,
            ))),
            _ => None,
        }
    }

    fn string(&self, at: usize) -> Option<Span> {
        let f = self.field(at)?;
        (f.ty == 2).then_some((f.at as u32, (f.at + f.size) as u32))
    }

    /// `names.en` of the map at `at`.
    fn english(&self, at: usize) -> Option<Span> {
        let mut found = None;
        self.map_entries(at, |d, key, value| {
            if key == b"names" {
                d.map_entries(value, |d, key, value| {
                    if key == b"en" {
                        found = d.string(value);
                    }
                    Some(())
                })?;
            }
            Some(())
        })?;
        found
    }

    fn place(&self, at: usize) -> Option<Place> {
        let mut p = Place::default();
        self.map_entries(at, |d, key, value| {
            match key {
                b"country" => {
                    d.map_entries(value, |d, key, value| {
                        if key == b"iso_code" {
                            p.country = d.string(value);
                        }
                        Some(())
                    })?;
                }
                b"city" => p.city = d.english(value),
                b"subdivisions" => {
                    let list = d.field(value)?;
                    if list.ty == 11 && list.size > 0 {
                        p.region = d.english(list.at);
                    }
                }
                b"location" => {
                    d.map_entries(value, |d, key, value| {
                        match key {
                            b"latitude" => p.latitude = d.double(value),
                            b"longitude" => p.longitude = d.double(value),
                            _ => {}
                        }
                        Some(())
                    })?;
                }
                _ => {}
            }
            Some(())
        })?;
        Some(p)
    }
}
