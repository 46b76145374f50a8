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

/// The same JSON object of additions for each of `n` events, in columns.
pub fn same_for_each(n: usize, object: &[u8]) -> (Vec<u8>, Vec<u32>) {
    let mut fields = Vec::with_capacity(n * object.len());
    let mut ends = Vec::with_capacity(n);
    for _ in 0..n {
        fields.extend_from_slice(object);
        ends.push(fields.len() as u32);
    }
    (fields, ends)
}
