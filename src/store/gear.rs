//! FastCDC 2020's cut point, found on four independent hash chains at once.
//!
//! The `fastcdc` crate's scan is one chain of dependent shift-and-adds, one per byte, so it
//! runs at the latency of that chain: about 2 GiB/s here, and in a 1 GiB write the two
//! commit workers spent 29% of memfs's CPU in it (`docs/bench/zero-copy/perf-dd.txt`).
//!
//! The gear hash shifts left one bit per byte, so a byte's contribution is gone 64 bytes
//! later: the hash at byte `p` is a function of `data[p - 63..=p]` alone (and of no byte
//! before the scan's start, where the crate starts it at zero). A block of the scan can
//! therefore be split into four lanes and the four chains advanced in one loop; the
//! processor overlaps them. A block's first lane goes on from the hash the last lane of the
//! block before ended with; the other three are warmed up on the 64 bytes before them. The
//! first cut of the block is the first in the lowest lane that has one.
//!
//! The result is the crate's, position for position (`tests` compare them), so recipes,
//! dedup and the chunk-size measurements do not change.

use std::sync::LazyLock;

use fastcdc::v2020;

type Gear = [u64; 256];

/// The crate's gear table (its default, unseeded one).
static GEAR: LazyLock<Gear> = LazyLock::new(|| {
    let mut table = [0u64; 256];
    table.copy_from_slice(&v2020::get_gear_with_seed(0).0);
    table
});

/// Bytes each lane scans per block. Its 64-byte warm-up is 6% of this; a cut lands, on
/// average, half a block into the block that holds it, and the other lanes' work past it
/// is wasted.
const LANE: usize = 1024;

/// A lane shorter than this is not worth its warm-up: the rest is scanned on one chain.
const LANE_MIN: usize = 128;

/// The length of the chunk at the start of `data`, as `v2020::cut(data, min, avg, max,
/// mask_s, mask_l, mask_s << 1, mask_l << 1).1` gives it. `min`, `avg` and `max` are even.
pub fn cut(data: &[u8], min: usize, avg: usize, max: usize, mask_s: u64, mask_l: u64) -> usize {
    let mut remaining = data.len();
    if remaining <= min {
        return remaining;
    }
    let mut center = avg;
    if remaining > max {
        remaining = max;
    } else if remaining < center {
        center = remaining;
    }
    // The crate tests bytes in pairs: an odd center or end rounds down.
    let center = (center & !1).max(min);
    let end = remaining & !1;
    let scan = Scan {
        data: &data[..remaining],
        gear: &GEAR,
        start: min,
    };
    scan.first_cut(min, center, mask_s)
        .or_else(|| scan.first_cut(center, end, mask_l))
        .unwrap_or(remaining)
}

/// The hash over `data[start..]`: it starts at zero at `start`.
struct Scan<'a> {
    data: &'a [u8],
    gear: &'a Gear,
    start: usize,
}

impl Scan<'_> {
    /// The first `p` in `from..to` that is a cut under `mask`.
    fn first_cut(&self, from: usize, to: usize, mask: u64) -> Option<usize> {
        // A superset of the cuts under `mask` at both parities (see `is_cut`).
        let filter = mask & !(1 << 63);
        let mut pos = from;
        // The last lane of a block ends where the next block's first lane starts: its hash
        // carries over, and only the other three lanes are warmed up.
        let mut carried = self.hash_before(from);
        while pos < to {
            let lane = ((to - pos) / 4).min(LANE);
            if lane < LANE_MIN {
                return self.first_cut_on_one_chain(pos, to, mask, carried);
            }
            let [s0, s1, s2, s3] = [0, 1, 2, 3].map(|k| pos + k * lane);
            let mut h0 = carried;
            let [mut h1, mut h2, mut h3] = self.warm_up([s1, s2, s3]);
            let d = self.data;
            let lanes = d[s0..s1]
                .iter()
                .zip(&d[s1..s2])
                .zip(&d[s2..s3])
                .zip(&d[s3..s3 + lane]);
            let g = self.gear;
            let mut found = None;
            for (i, (((&b0, &b1), &b2), &b3)) in lanes.enumerate() {
                h0 = (h0 << 1).wrapping_add(g[b0 as usize]);
                h1 = (h1 << 1).wrapping_add(g[b1 as usize]);
                h2 = (h2 << 1).wrapping_add(g[b2 as usize]);
                h3 = (h3 << 1).wrapping_add(g[b3 as usize]);
                if h0 & filter == 0 || h1 & filter == 0 || h2 & filter == 0 || h3 & filter == 0 {
                    if is_cut(h0, s0 + i, mask) {
                        return Some(s0 + i);
                    }
                    // A lane's first cut is before every cut of the lanes after it.
                    for (h, s) in [(h1, s1), (h2, s2), (h3, s3)] {
                        if is_cut(h, s + i, mask) && found.is_none_or(|f| s + i < f) {
                            found = Some(s + i);
                        }
                    }
                }
            }
            if found.is_some() {
                return found;
            }
            carried = h3;
            pos += 4 * lane;
        }
        None
    }

    /// The same on one chain, from `h`, the hash after the byte before `from`.
    fn first_cut_on_one_chain(
        &self,
        from: usize,
        to: usize,
        mask: u64,
        mut h: u64,
    ) -> Option<usize> {
        for (p, &b) in self.data[from..to].iter().enumerate() {
            h = (h << 1).wrapping_add(self.gear[b as usize]);
            if is_cut(h, from + p, mask) {
                return Some(from + p);
            }
        }
        None
    }

    /// `hash_before` of three lanes' starts, each at least 64 bytes after `start`, on three
    /// chains at once.
    fn warm_up(&self, starts: [usize; 3]) -> [u64; 3] {
        let g = self.gear;
        let [w1, w2, w3] = starts.map(|s| &self.data[s - 64..s]);
        let mut h = [0u64; 3];
        for ((&b1, &b2), &b3) in w1.iter().zip(w2).zip(w3) {
            h[0] = (h[0] << 1).wrapping_add(g[b1 as usize]);
            h[1] = (h[1] << 1).wrapping_add(g[b2 as usize]);
            h[2] = (h[2] << 1).wrapping_add(g[b3 as usize]);
        }
        h
    }

    /// The hash after the byte before `p`: of at most the 64 bytes before it, none before
    /// `start`.
    fn hash_before(&self, p: usize) -> u64 {
        let from = self.start.max(p.saturating_sub(64));
        self.data[from..p]
            .iter()
            .fold(0u64, |h, &b| (h << 1).wrapping_add(self.gear[b as usize]))
    }
}

/// Whether the hash `h` at byte `p` makes `p` a cut. The crate advances two bytes a step and
/// tests the even byte's hash shifted left by one against the mask shifted left by one,
/// which loses the mask's top bit there.
fn is_cut(h: u64, p: usize, mask: u64) -> bool {
    let mask = if p % 2 == 0 { mask & !(1 << 63) } else { mask };
    h & mask == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::noise;

    fn crate_cut(data: &[u8], min: usize, avg: usize, max: usize, s: u64, l: u64) -> usize {
        v2020::cut(data, min, avg, max, s, l, s << 1, l << 1).1
    }

    fn masks(avg: usize) -> (u64, u64) {
        v2020::select_masks(avg, v2020::Normalization::Level1)
    }

    /// Every chunk of `data`, cut both ways, and every shorter tail.
    fn same_cuts(data: &[u8], min: usize, avg: usize, max: usize, s: u64, l: u64) {
        let mut pos = 0;
        while pos < data.len() {
            let window = &data[pos..data.len().min(pos + max)];
            let want = crate_cut(window, min, avg, max, s, l);
            assert_eq!(cut(window, min, avg, max, s, l), want, "at {pos}");
            for short in [min + 1, min + 65, min + 300, avg - 1, avg + 3, max - 7] {
                if short < window.len() {
                    let w = &window[..short];
                    let want = crate_cut(w, min, avg, max, s, l);
                    assert_eq!(cut(w, min, avg, max, s, l), want, "{short} at {pos}");
                }
            }
            pos += want.max(1);
        }
    }

    #[test]
    fn cuts_as_the_crate_does_on_noise() {
        let data = noise(8 << 20, 11);
        for (min, avg, max) in [(4096, 16384, 65536), (2048, 8192, 32768), (64, 256, 1024)] {
            let (s, l) = masks(avg);
            same_cuts(&data, min, avg, max, s, l);
        }
    }

    #[test]
    fn cuts_as_the_crate_does_on_text_and_zeros() {
        let mut data = Vec::new();
        for i in 0..40_000 {
            data.extend_from_slice(format!("line {i}: the quick brown fox\n").as_bytes());
            if i % 5000 == 0 {
                data.extend(std::iter::repeat_n(0u8, 70_000));
            }
        }
        let (s, l) = masks(16384);
        same_cuts(&data, 4096, 16384, 65536, s, l);
    }

    #[test]
    fn a_mask_with_the_top_bit_cuts_as_the_crate_does() {
        // Easy masks, so cuts land at both parities, some only because of the top bit.
        let data = noise(1 << 20, 5);
        for (s, l) in [(1 << 63 | 0x3f, 1 << 63 | 0x7), (1 << 63, 1 << 63)] {
            same_cuts(&data, 64, 256, 1024, s, l);
        }
    }
}
