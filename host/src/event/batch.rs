//! A batch of one partition's records, laid out in columns.
//!
//! Payloads and keys sit back to back in one buffer each, with end offsets, so a
//! batch costs a handful of allocations however many events it holds, and spent
//! batches go back to the source to be filled again.

use sha2::{Digest, Sha256};

/// What the source knows of a record too large to carry.
#[derive(Debug, Clone)]
pub struct Oversized {
    /// The record's index in the batch.
    pub index: usize,
    /// Its full size in bytes.
    pub size: usize,
    /// SHA-256 of the full payload, hex.
    pub sha256: String,
}

/// Records of one partition, in offset order.
#[derive(Debug, Default)]
pub struct Batch {
    /// The partition.
    pub partition: i32,
    /// The claim generation the records were read under; a batch from an older
    /// generation is dropped by its writer.
    pub generation: u64,
    /// Payloads back to back (oversized ones cut to the dead-letter cap).
    pub payloads: Vec<u8>,
    /// End of payload i in `payloads`.
    pub payload_ends: Vec<u32>,
    /// Keys back to back.
    pub keys: Vec<u8>,
    /// End of key i in `keys`.
    pub key_ends: Vec<u32>,
    /// Whether record i had a key (an empty key and no key differ in Kafka).
    pub has_key: Vec<bool>,
    /// Kafka offset of record i.
    pub offsets: Vec<i64>,
    /// Kafka timestamp of record i, in ms (or -1).
    pub timestamps: Vec<i64>,
    /// Records over the size limit.
    pub oversized: Vec<Oversized>,
}

impl Batch {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// True when the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The offset after the last record: the partition's next offset once committed.
    pub fn end_offset(&self) -> Option<i64> {
        self.offsets.last().map(|o| o + 1)
    }

    /// Bytes of payload held.
    pub fn payload_bytes(&self) -> usize {
        self.payloads.len()
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.payloads.clear();
        self.payload_ends.clear();
        self.keys.clear();
        self.key_ends.clear();
        self.has_key.clear();
        self.offsets.clear();
        self.timestamps.clear();
        self.oversized.clear();
    }

    /// Appends a record. A payload over `max_record` bytes is kept only up to
    /// `keep_cap` bytes and noted as oversized, with its size and hash.
    pub fn push(
        &mut self,
        offset: i64,
        timestamp: i64,
        key: Option<&[u8]>,
        payload: &[u8],
        max_record: usize,
        keep_cap: usize,
    ) {
        let index = self.offsets.len();
        if payload.len() > max_record {
            self.oversized.push(Oversized {
                index,
                size: payload.len(),
                sha256: sha256_hex(payload),
            });
            self.payloads
                .extend_from_slice(&payload[..payload.len().min(keep_cap)]);
        } else {
            self.payloads.extend_from_slice(payload);
        }
        self.payload_ends.push(self.payloads.len() as u32);
        self.keys.extend_from_slice(key.unwrap_or_default());
        self.key_ends.push(self.keys.len() as u32);
        self.has_key.push(key.is_some());
        self.offsets.push(offset);
        self.timestamps.push(timestamp);
    }

    /// Payload of record i.
    pub fn payload(&self, i: usize) -> &[u8] {
        let start = if i == 0 {
            0
        } else {
            self.payload_ends[i - 1] as usize
        };
        &self.payloads[start..self.payload_ends[i] as usize]
    }

    /// Key of record i, if it had one.
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        if !self.has_key[i] {
            return None;
        }
        let start = if i == 0 {
            0
        } else {
            self.key_ends[i - 1] as usize
        };
        Some(&self.keys[start..self.key_ends[i] as usize])
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_columns() {
        let mut b = Batch::default();
        b.push(10, 1, Some(b"k1"), b"{\"a\":1}", 100, 10);
        b.push(12, 2, None, b"{}", 100, 10);
        b.push(13, 3, Some(b""), &[b'x'; 200], 100, 10);
        assert_eq!(b.len(), 3);
        assert_eq!(b.payload(0), b"{\"a\":1}");
        assert_eq!(b.payload(1), b"{}");
        assert_eq!(b.payload(2).len(), 10);
        assert_eq!(b.key(0), Some(&b"k1"[..]));
        assert_eq!(b.key(1), None);
        assert_eq!(b.key(2), Some(&b""[..]));
        assert_eq!(b.end_offset(), Some(14));
        assert_eq!(b.oversized.len(), 1);
        assert_eq!(b.oversized[0].size, 200);
        b.clear();
        assert!(b.is_empty());
    }
}
