//! Byte searches sixteen bytes per loop turn, with no loop over the rest.
//!
//! A guest pays for every loop turn beyond the comparison itself: the loop's
//! bookkeeping and an epoch check (the host's guard against a guest that never
//! returns). Scanning JSON strings, numbers and user agents a byte per turn made
//! those checks a large share of a plugin's time. Here each turn looks at a
//! 16-byte block; what is left after the last whole block is read as the last
//! 16 bytes of the text (overlapping the block before), or, in text shorter
//! than a block, as two overlapping 8- or 4-byte words.
//!
//! Three implementations of one small set of block operations:
//! - wasm32 with `simd128` (the plugins of this repository are built with it,
//!   see `.cargo/config.toml`): one `v128` per block;
//! - x86-64 (native tests and the native baseline of the benchmarks): SSE2,
//!   which every x86-64 processor has;
//! - anything else (a guest built without `simd128`, say): two 64-bit words
//!   per block, compared a byte per lane with carries (SWAR).
//!
//! An operation's answer is a set of flagged lanes. SIMD flags are exact;
//! SWAR flags may also mark a lane above a truly flagged one, so callers rely
//! only on the lowest flag and on "any flag" (exact everywhere), or check each
//! flagged position themselves.

pub(crate) use imp::Block;
use swar::Word;

/// How many bytes a block holds.
pub(crate) const WIDTH: usize = 16;

/// Operations on the lanes (bytes) of a block or a word.
pub(crate) trait Lanes: Copy {
    /// Lanes equal to `c`.
    fn eq(self, c: u8) -> Self;
    /// Lanes below `n` (`1 <= n <= 128`).
    fn below(self, n: u8) -> Self;
    /// Lanes with their high bit set.
    fn high(self) -> Self;
    /// Every lane with `0x20` set (ASCII letters in lower case).
    fn folded(self) -> Self;
    fn or(self, other: Self) -> Self;
    /// The flagged lanes as bits, lane 0 lowest.
    fn lanes(self) -> u32;
}

/// What a search flags, written once for blocks and words.
pub(crate) trait Pred: Copy {
    fn flags<L: Lanes>(self, v: L) -> L;
}

/// Calls `each(i)` for the positions of `b` that `p` flags, in order, until
/// it returns true; whether it did. (With SWAR, `each` may also see positions
/// above a truly flagged one.)
#[inline(always)]
pub(crate) fn flagged<P: Pred>(b: &[u8], p: P, mut each: impl FnMut(usize) -> bool) -> bool {
    let mut visit = |mut lanes: u32, base: usize| {
        while lanes != 0 {
            if each(base + lanes.trailing_zeros() as usize) {
                return true;
            }
            lanes &= lanes - 1;
        }
        false
    };
    let chunks = b.chunks_exact(WIDTH);
    for (i, c) in chunks.enumerate() {
        let block = <&[u8; WIDTH]>::try_from(c).expect("sixteen bytes");
        if visit(p.flags(Block::load(block)).lanes(), i * WIDTH) {
            return true;
        }
    }
    let [(lo, at_lo), (hi, at_hi)] = tail(b, p);
    visit(lo, at_lo) || visit(hi, at_hi)
}

/// The first position of `b` that `p` flags: [`flagged`] without the loop
/// over a block's flags (the lowest one is the answer).
#[inline(always)]
fn first<P: Pred>(b: &[u8], p: P) -> Option<usize> {
    let at = |lanes: u32, base: usize| (lanes != 0).then(|| base + lanes.trailing_zeros() as usize);
    for (i, c) in b.chunks_exact(WIDTH).enumerate() {
        let block = <&[u8; WIDTH]>::try_from(c).expect("sixteen bytes");
        let lanes = p.flags(Block::load(block)).lanes();
        if lanes != 0 {
            return at(lanes, i * WIDTH);
        }
    }
    let [(lo, at_lo), (hi, at_hi)] = tail(b, p);
    at(lo, at_lo).or_else(|| at(hi, at_hi))
}

/// The flags of what follows `b`'s whole blocks, as two sets of lanes with
/// the position of their lane 0, none of them read before: the last 16 bytes
/// (less the lanes the last block read), or in shorter text two overlapping
/// words (the second less the lanes the first read), or for under four
/// bytes, one word of them.
#[inline(always)]
fn tail<P: Pred>(b: &[u8], p: P) -> [(u32, usize); 2] {
    let n = b.len();
    let t = n % WIDTH;
    if t == 0 {
        [(0, 0), (0, 0)]
    } else if n >= WIDTH {
        let last = <&[u8; WIDTH]>::try_from(&b[n - WIDTH..]).expect("sixteen bytes");
        let lanes = p.flags(Block::load(last)).lanes() >> (WIDTH - t);
        [(lanes, n - t), (0, 0)]
    } else if n >= 8 {
        let (lo, hi) = (Word::load8(&b[..8]), Word::load8(&b[n - 8..]));
        [
            (p.flags(lo).lanes(), 0),
            (p.flags(hi).lanes() >> (16 - n), 8),
        ]
    } else if n >= 4 {
        let (lo, hi) = (Word::load4(&b[..4]), Word::load4(&b[n - 4..]));
        let lanes = |w: Word| p.flags(w).lanes() & 0xF;
        [(lanes(lo), 0), (lanes(hi) >> (8 - n), 4)]
    } else {
        let byte = |i: usize| b.get(i).map_or(0, |&c| u64::from(c)) << (8 * i);
        let word = Word(byte(0) | byte(1) | byte(2));
        [(p.flags(word).lanes() & ((1 << n) - 1), 0), (0, 0)]
    }
}

#[derive(Clone, Copy)]
struct Either(u8, u8);

impl Pred for Either {
    #[inline(always)]
    fn flags<L: Lanes>(self, v: L) -> L {
        v.eq(self.0).or(v.eq(self.1))
    }
}

#[derive(Clone, Copy)]
struct BelowOr(u8, [u8; 3]);

impl Pred for BelowOr {
    #[inline(always)]
    fn flags<L: Lanes>(self, v: L) -> L {
        let [a, b, c] = self.1;
        v.below(self.0).or(v.eq(a)).or(v.eq(b)).or(v.eq(c))
    }
}

#[derive(Clone, Copy)]
struct High;

impl Pred for High {
    #[inline(always)]
    fn flags<L: Lanes>(self, v: L) -> L {
        v.high()
    }
}

/// The index of the first byte of `b` that is `x` or `y`.
#[inline]
pub(crate) fn find_either(b: &[u8], x: u8, y: u8) -> Option<usize> {
    first(b, Either(x, y))
}

/// The index of the first byte of `b` below `n` or equal to one of `stops`,
/// or `b.len()` when there is none. `n` must be between 1 and 128.
#[inline]
pub fn find_below_or(b: &[u8], n: u8, stops: [u8; 3]) -> usize {
    first(b, BelowOr(n, stops)).unwrap_or(b.len())
}

/// Whether every byte of `b` is ASCII.
#[inline]
pub(crate) fn is_ascii(b: &[u8]) -> bool {
    !flagged(b, High, |_| true)
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
    }

    impl super::Lanes for Block {
        #[inline(always)]
        fn eq(self, c: u8) -> Block {
            Block(u8x16_eq(self.0, u8x16_splat(c)))
        }

        #[inline(always)]
        fn below(self, n: u8) -> Block {
            Block(u8x16_lt(self.0, u8x16_splat(n)))
        }

        #[inline(always)]
        fn high(self) -> Block {
            Block(i8x16_lt(self.0, i8x16_splat(0)))
        }

        #[inline(always)]
        fn folded(self) -> Block {
            Block(v128_or(self.0, u8x16_splat(0x20)))
        }

        #[inline(always)]
        fn or(self, other: Block) -> Block {
            Block(v128_or(self.0, other.0))
        }

        #[inline(always)]
        fn lanes(self) -> u32 {
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

    impl Block {
        #[inline(always)]
        pub(crate) fn load(b: &[u8; 16]) -> Block {
            // SAFETY: reads exactly the 16 bytes it is given, unaligned; SSE2
            // is part of the x86-64 baseline.
            #[allow(unsafe_code)]
            Block(unsafe { _mm_loadu_si128(b.as_ptr().cast::<__m128i>()) })
        }
    }

    // SAFETY (every `unsafe` below): SSE2 is part of the x86-64 baseline, so
    // its intrinsics are always available, and none of these touches memory.
    #[allow(unsafe_code)]
    impl super::Lanes for Block {
        #[inline(always)]
        fn eq(self, c: u8) -> Block {
            Block(unsafe { _mm_cmpeq_epi8(self.0, _mm_set1_epi8(c as i8)) })
        }

        /// Lanes equal to their minimum with `n - 1`.
        #[inline(always)]
        fn below(self, n: u8) -> Block {
            unsafe {
                let m = _mm_min_epu8(self.0, _mm_set1_epi8((n - 1) as i8));
                Block(_mm_cmpeq_epi8(m, self.0))
            }
        }

        /// The lanes themselves: `lanes` reads their high bits.
        #[inline(always)]
        fn high(self) -> Block {
            self
        }

        #[inline(always)]
        fn folded(self) -> Block {
            Block(unsafe { _mm_or_si128(self.0, _mm_set1_epi8(0x20)) })
        }

        #[inline(always)]
        fn or(self, other: Block) -> Block {
            Block(unsafe { _mm_or_si128(self.0, other.0) })
        }

        #[inline(always)]
        fn lanes(self) -> u32 {
            unsafe { _mm_movemask_epi8(self.0) as u32 }
        }
    }
}

#[cfg(not(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
)))]
use swar as imp;

/// Eight lanes in a 64-bit word: the short-text path everywhere, and blocks
/// of two words where there is no SIMD. Compiled everywhere, so that its
/// tests run on every machine.
mod swar {
    use super::Lanes;

    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// Eight bytes, little-endian, or their flags (`0x80` lanes).
    #[derive(Clone, Copy)]
    pub(crate) struct Word(pub(crate) u64);

    impl Word {
        #[inline(always)]
        pub(crate) fn load8(b: &[u8]) -> Word {
            Word(u64::from_le_bytes(b.try_into().expect("eight bytes")))
        }

        /// Four bytes in the low lanes; the high lanes are zero.
        #[inline(always)]
        pub(crate) fn load4(b: &[u8]) -> Word {
            Word(u64::from(u32::from_le_bytes(
                b.try_into().expect("four bytes"),
            )))
        }
    }

    impl Lanes for Word {
        /// High bit of each lane that equals `c`; a lane above one may also
        /// be flagged (the borrow of the subtraction), never one below.
        #[inline(always)]
        fn eq(self, c: u8) -> Word {
            let x = self.0 ^ (ONES * u64::from(c));
            Word(x.wrapping_sub(ONES) & !x & HIGHS)
        }

        /// Lanes below `n` (`n <= 128`), with the same caveat as `eq`.
        #[inline(always)]
        fn below(self, n: u8) -> Word {
            Word(self.0.wrapping_sub(ONES * u64::from(n)) & !self.0 & HIGHS)
        }

        /// Exact.
        #[inline(always)]
        fn high(self) -> Word {
            Word(self.0 & HIGHS)
        }

        #[inline(always)]
        fn folded(self) -> Word {
            Word(self.0 | (ONES * 0x20))
        }

        #[inline(always)]
        fn or(self, other: Word) -> Word {
            Word(self.0 | other.0)
        }

        /// Each lane's flag moved to bit 0 of its byte, then the eight bytes
        /// gathered into the top byte by one multiplication.
        #[inline(always)]
        fn lanes(self) -> u32 {
            ((((self.0 & HIGHS) >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56) as u32
        }
    }

    /// A block as two words.
    #[cfg_attr(
        any(
            all(target_arch = "wasm32", target_feature = "simd128"),
            target_arch = "x86_64"
        ),
        allow(dead_code)
    )]
    #[derive(Clone, Copy)]
    pub(crate) struct Block(Word, Word);

    #[cfg_attr(
        any(
            all(target_arch = "wasm32", target_feature = "simd128"),
            target_arch = "x86_64"
        ),
        allow(dead_code)
    )]
    impl Block {
        #[inline(always)]
        pub(crate) fn load(b: &[u8; 16]) -> Block {
            Block(Word::load8(&b[..8]), Word::load8(&b[8..]))
        }
    }

    impl Lanes for Block {
        #[inline(always)]
        fn eq(self, c: u8) -> Block {
            Block(self.0.eq(c), self.1.eq(c))
        }

        #[inline(always)]
        fn below(self, n: u8) -> Block {
            Block(self.0.below(n), self.1.below(n))
        }

        #[inline(always)]
        fn high(self) -> Block {
            Block(self.0.high(), self.1.high())
        }

        #[inline(always)]
        fn folded(self) -> Block {
            Block(self.0.folded(), self.1.folded())
        }

        #[inline(always)]
        fn or(self, other: Block) -> Block {
            Block(self.0.or(other.0), self.1.or(other.1))
        }

        #[inline(always)]
        fn lanes(self) -> u32 {
            self.0.lanes() | (self.1.lanes() << 8)
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
        let first = |lanes: u32| (lanes != 0).then(|| lanes.trailing_zeros() as usize);
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
                assert_eq!(
                    first(v.eq(b'"').lanes()),
                    model(&b, &|x| x == b'"'),
                    "{b:?}"
                );
                assert_eq!(
                    first(v.below(0x20).lanes()),
                    model(&b, &|x| x < 0x20),
                    "{b:?}"
                );
                let folded = first(v.folded().eq(b'a').lanes());
                assert_eq!(folded, model(&b, &|x| x | 0x20 == b'a'), "{b:?}");
                let want = b
                    .iter()
                    .rev()
                    .fold(0, |m, &x| m << 1 | u32::from(x >= 0x80));
                assert_eq!(v.high().lanes(), want, "{b:?}");
            }
        }
    }

    /// Every flagged position is visited once, in order, whatever the length
    /// (whole blocks, an overlapping last block, two words, bytes).
    #[test]
    fn visits_each_flagged_position_once_in_order() {
        for len in 0..60 {
            let b: Vec<u8> = (0..len)
                .map(|i| if i % 3 == 1 { 0xc3 } else { b'a' })
                .collect();
            let mut seen = Vec::new();
            assert!(!flagged(&b, High, |i| {
                seen.push(i);
                false
            }));
            let want: Vec<usize> = (0..len).filter(|i| i % 3 == 1).collect();
            assert_eq!(seen, want, "len {len}");
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
