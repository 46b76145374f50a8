//! Byte searches sixteen bytes per loop turn.
//!
//! A guest pays for every loop turn beyond the comparison itself: the loop's
//! bookkeeping and an epoch check (the host's guard against a guest that never
//! returns). Scanning JSON strings, numbers and user agents a byte per turn made
//! those checks a large share of a plugin's time; here each turn looks at a
//! 16-byte block.
//!
//! Three implementations of one small set of block operations:
//! - wasm32 with `simd128` (the plugins of this repository are built with it,
//!   see `.cargo/config.toml`): one `v128` per block;
//! - x86-64 (native tests and the native baseline of the benchmarks): SSE2,
//!   which every x86-64 processor has;
//! - anything else (a guest built without `simd128`, say): two 64-bit words
//!   per block, compared a byte per lane with carries (SWAR).
//!
//! A block operation's answer is a set of flagged lanes. SIMD flags are exact;
//! SWAR flags may also mark a lane above a truly flagged one, so callers only
//! rely on the lowest flag and on "any flag": both are exact everywhere.

pub(crate) use imp::Block;

/// How many bytes a block holds.
pub(crate) const WIDTH: usize = 16;

/// The blocks of `b`, with the offset of each, and the tail (under 16 bytes).
#[inline(always)]
pub(crate) fn blocks(b: &[u8]) -> (impl Iterator<Item = (usize, &[u8; WIDTH])>, &[u8]) {
    let chunks = b.chunks_exact(WIDTH);
    let tail = chunks.remainder();
    let blocks = chunks.enumerate().map(|(i, c)| {
        (
            i * WIDTH,
            <&[u8; WIDTH]>::try_from(c).expect("sixteen bytes"),
        )
    });
    (blocks, tail)
}

/// The index of the first byte of `b` that is `x` or `y`.
#[inline]
pub(crate) fn find_either(b: &[u8], x: u8, y: u8) -> Option<usize> {
    let (blocks, tail) = blocks(b);
    for (at, block) in blocks {
        let v = Block::load(block);
        if let Some(i) = v.eq(x).or(v.eq(y)).first() {
            return Some(at + i);
        }
    }
    let at = b.len() - tail.len();
    tail.iter().position(|&c| c == x || c == y).map(|p| at + p)
}

/// The index of the first byte of `b` below `n` or equal to one of `stops`,
/// or `b.len()` when there is none. `n` must be at most 128.
#[inline]
pub(crate) fn find_below_or(b: &[u8], n: u8, stops: [u8; 3]) -> usize {
    let (blocks, tail) = blocks(b);
    for (at, block) in blocks {
        let v = Block::load(block);
        let flags = v
            .below(n)
            .or(v.eq(stops[0]))
            .or(v.eq(stops[1]))
            .or(v.eq(stops[2]));
        if let Some(i) = flags.first() {
            return at + i;
        }
    }
    let at = b.len() - tail.len();
    tail.iter()
        .position(|&c| c < n || stops.contains(&c))
        .map_or(b.len(), |p| at + p)
}

/// Whether every byte of `b` is ASCII.
#[inline]
pub(crate) fn is_ascii(b: &[u8]) -> bool {
    let (mut blocks, tail) = blocks(b);
    blocks.all(|(_, block)| !Block::load(block).high().any()) && tail.is_ascii()
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use core::arch::wasm32::*;

    /// One block, or one block's flags (all-ones lanes).
    #[derive(Clone, Copy)]
    pub(crate) struct Block(v128);

    impl Block {
        #[inline(always)]
        pub(crate) fn load(b: &[u8; 16]) -> Block {
            // SAFETY: `b` is 16 readable bytes and `v128_load` has no
            // alignment requirement.
            #[allow(unsafe_code)]
            Block(unsafe { v128_load(b.as_ptr().cast::<v128>()) })
        }

        #[inline(always)]
        pub(crate) fn eq(self, c: u8) -> Block {
            Block(u8x16_eq(self.0, u8x16_splat(c)))
        }

        /// Lanes below `n`.
        #[inline(always)]
        pub(crate) fn below(self, n: u8) -> Block {
            Block(u8x16_lt(self.0, u8x16_splat(n)))
        }

        /// Lanes with their high bit set.
        #[inline(always)]
        pub(crate) fn high(self) -> Block {
            Block(i8x16_lt(self.0, i8x16_splat(0)))
        }

        /// Every lane with `0x20` set (ASCII letters in lower case).
        #[inline(always)]
        pub(crate) fn folded(self) -> Block {
            Block(v128_or(self.0, u8x16_splat(0x20)))
        }

        #[inline(always)]
        pub(crate) fn or(self, other: Block) -> Block {
            Block(v128_or(self.0, other.0))
        }

        #[inline(always)]
        pub(crate) fn any(self) -> bool {
            v128_any_true(self.0)
        }

        #[inline(always)]
        pub(crate) fn first(self) -> Option<usize> {
            let m = u8x16_bitmask(self.0);
            (m != 0).then(|| m.trailing_zeros() as usize)
        }

        /// The flagged lanes as bits, lane 0 lowest.
        #[inline(always)]
        pub(crate) fn lanes(self) -> u32 {
            u32::from(u8x16_bitmask(self.0))
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use core::arch::x86_64::*;

    /// One block, or one block's flags (all-ones lanes).
    #[derive(Clone, Copy)]
    pub(crate) struct Block(__m128i);

    // SAFETY (every `unsafe` below): SSE2 is part of the x86-64 baseline, so
    // its intrinsics are always available; `load` reads exactly the 16 bytes
    // it is given, unaligned.
    #[allow(unsafe_code)]
    impl Block {
        #[inline(always)]
        pub(crate) fn load(b: &[u8; 16]) -> Block {
            Block(unsafe { _mm_loadu_si128(b.as_ptr().cast::<__m128i>()) })
        }

        #[inline(always)]
        pub(crate) fn eq(self, c: u8) -> Block {
            Block(unsafe { _mm_cmpeq_epi8(self.0, _mm_set1_epi8(c as i8)) })
        }

        /// Lanes below `n` (`n >= 1`): those equal to their minimum with `n - 1`.
        #[inline(always)]
        pub(crate) fn below(self, n: u8) -> Block {
            unsafe {
                let m = _mm_min_epu8(self.0, _mm_set1_epi8((n - 1) as i8));
                Block(_mm_cmpeq_epi8(m, self.0))
            }
        }

        /// Lanes with their high bit set.
        #[inline(always)]
        pub(crate) fn high(self) -> Block {
            self
        }

        /// Every lane with `0x20` set (ASCII letters in lower case).
        #[inline(always)]
        pub(crate) fn folded(self) -> Block {
            Block(unsafe { _mm_or_si128(self.0, _mm_set1_epi8(0x20)) })
        }

        #[inline(always)]
        pub(crate) fn or(self, other: Block) -> Block {
            Block(unsafe { _mm_or_si128(self.0, other.0) })
        }

        /// Whether any lane has its high bit set (flags are all-ones lanes).
        #[inline(always)]
        pub(crate) fn any(self) -> bool {
            unsafe { _mm_movemask_epi8(self.0) != 0 }
        }

        #[inline(always)]
        pub(crate) fn first(self) -> Option<usize> {
            let m = unsafe { _mm_movemask_epi8(self.0) };
            (m != 0).then(|| m.trailing_zeros() as usize)
        }

        /// The flagged lanes as bits, lane 0 lowest.
        #[inline(always)]
        pub(crate) fn lanes(self) -> u32 {
            unsafe { _mm_movemask_epi8(self.0) as u32 }
        }
    }
}

#[cfg(not(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
)))]
use swar as imp;

/// Compiled everywhere, so that its tests run on every machine.
#[cfg_attr(
    any(
        all(target_arch = "wasm32", target_feature = "simd128"),
        target_arch = "x86_64"
    ),
    allow(dead_code)
)]
mod swar {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// One block as two little-endian words, or its flags (`0x80` lanes).
    #[derive(Clone, Copy)]
    pub(crate) struct Block([u64; 2]);

    /// High bit of each lane of `w` that is zero; a lane above a zero one may
    /// also be flagged (the borrow), never one below.
    #[inline(always)]
    fn zeros(w: u64) -> u64 {
        w.wrapping_sub(ONES) & !w & HIGHS
    }

    impl Block {
        #[inline(always)]
        pub(crate) fn load(b: &[u8; 16]) -> Block {
            let (lo, hi) = b.split_at(8);
            Block([
                u64::from_le_bytes(lo.try_into().expect("eight bytes")),
                u64::from_le_bytes(hi.try_into().expect("eight bytes")),
            ])
        }

        #[inline(always)]
        pub(crate) fn eq(self, c: u8) -> Block {
            let c = ONES * u64::from(c);
            Block([zeros(self.0[0] ^ c), zeros(self.0[1] ^ c)])
        }

        /// Lanes below `n` (`n <= 128`), with the same caveat as `eq`.
        #[inline(always)]
        pub(crate) fn below(self, n: u8) -> Block {
            let n = ONES * u64::from(n);
            let lt = |w: u64| w.wrapping_sub(n) & !w & HIGHS;
            Block([lt(self.0[0]), lt(self.0[1])])
        }

        /// Lanes with their high bit set (exact).
        #[inline(always)]
        pub(crate) fn high(self) -> Block {
            Block([self.0[0] & HIGHS, self.0[1] & HIGHS])
        }

        /// Every lane with `0x20` set (ASCII letters in lower case).
        #[inline(always)]
        pub(crate) fn folded(self) -> Block {
            let s = ONES * 0x20;
            Block([self.0[0] | s, self.0[1] | s])
        }

        #[inline(always)]
        pub(crate) fn or(self, other: Block) -> Block {
            Block([self.0[0] | other.0[0], self.0[1] | other.0[1]])
        }

        #[inline(always)]
        pub(crate) fn any(self) -> bool {
            (self.0[0] | self.0[1]) != 0
        }

        #[inline(always)]
        pub(crate) fn first(self) -> Option<usize> {
            if self.0[0] != 0 {
                Some((self.0[0].trailing_zeros() / 8) as usize)
            } else if self.0[1] != 0 {
                Some(8 + (self.0[1].trailing_zeros() / 8) as usize)
            } else {
                None
            }
        }

        /// The flagged lanes as bits, lane 0 lowest (with the same caveat:
        /// a lane above a flagged one may be set too).
        #[inline(always)]
        pub(crate) fn lanes(self) -> u32 {
            // Each lane's flag moved to bit 0 of its byte, then the eight
            // bytes gathered into the top byte by one multiplication.
            let gather =
                |w: u64| ((((w & HIGHS) >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56) as u32;
            gather(self.0[0]) | gather(self.0[1]) << 8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes one bit away from the ones searched for, high bytes and a few
    /// letters, so that a carry or a sign mistake shows.
    fn filler(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| [b'#', b'!', b']', 0xa2, 0xdc, b'a', b'-', 0x7f][i % 8])
            .collect()
    }

    #[test]
    fn finds_the_first_of_two_bytes_at_any_position() {
        for len in 0..50 {
            for at in 0..=len {
                for c in [b'"', b'\\'] {
                    let mut b = filler(len);
                    if at < len {
                        b[at] = c;
                        if at + 1 < len {
                            b[at + 1] = b'"';
                        }
                    }
                    let want = (at < len).then_some(at);
                    assert_eq!(find_either(&b, b'"', b'\\'), want, "len {len} at {at}");
                }
            }
        }
    }

    #[test]
    fn finds_the_first_byte_below_a_bound_or_a_stop() {
        for len in 0..50 {
            for at in 0..=len {
                for c in [b' ', b'\n', 0, b',', b'}', b']'] {
                    let mut b: Vec<u8> = (0..len).map(|i| b"0123456789.e+-E"[i % 15]).collect();
                    if at < len {
                        b[at] = c;
                        if at + 1 < len {
                            b[at + 1] = b',';
                        }
                    }
                    assert_eq!(
                        find_below_or(&b, 0x21, [b',', b'}', b']']),
                        at,
                        "{c} len {len}"
                    );
                }
            }
        }
    }

    /// The word fallback's lowest flag and "any" agree with a byte-by-byte
    /// model for every lane, with a second target and carries above it.
    #[test]
    fn word_blocks_flag_the_lowest_lane_exactly() {
        use super::swar::Block;
        let model = |b: &[u8; 16], p: &dyn Fn(u8) -> bool| b.iter().position(|&c| p(c));
        for at in 0..=16 {
            for c in [b'"', 0x00, 0x1f, 0x01, 0xff] {
                let mut b: [u8; 16] = filler(16).try_into().unwrap();
                if at < 16 {
                    b[at] = c;
                }
                if at + 1 < 16 {
                    b[at + 1] = 0x01;
                }
                let v = Block::load(&b);
                assert_eq!(v.eq(b'"').first(), model(&b, &|x| x == b'"'), "{b:?}");
                assert_eq!(v.below(0x20).first(), model(&b, &|x| x < 0x20), "{b:?}");
                assert_eq!(v.high().first(), model(&b, &|x| x >= 0x80), "{b:?}");
                assert_eq!(v.eq(b'"').any(), b.contains(&b'"'), "{b:?}");
                let lanes = v.high().lanes();
                let want = b
                    .iter()
                    .rev()
                    .fold(0, |m, &x| m << 1 | u32::from(x >= 0x80));
                assert_eq!(lanes, want, "{b:?}");
                let folded = v.folded().eq(b'a').first();
                assert_eq!(folded, model(&b, &|x| x | 0x20 == b'a'), "{b:?}");
            }
        }
    }

    #[test]
    fn tells_ascii_from_anything_else() {
        for len in 0..50 {
            let plain: Vec<u8> = (0..len).map(|i| (i * 37 % 128) as u8).collect();
            assert!(is_ascii(&plain));
            for at in 0..len {
                let mut b = plain.clone();
                b[at] |= 0x80;
                assert!(!is_ascii(&b), "len {len} at {at}");
            }
        }
    }
}
