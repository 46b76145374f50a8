//! Helpers the test guests share: reading one event out of a columnar batch.

/// Bytes `i` of a back-to-back column with end offsets.
pub fn item<'a>(bytes: &'a [u8], ends: &[u32], i: usize) -> &'a [u8] {
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    &bytes[start..ends[i] as usize]
}

/// Whether event `i`'s payload contains `needle`.
pub fn payload_has(payloads: &[u8], ends: &[u32], i: usize, needle: &str) -> bool {
    let p = item(payloads, ends, i);
    p.windows(needle.len()).any(|w| w == needle.as_bytes())
}
