//! Splitting bytes into chunks: FastCDC (2020) content-defined chunking, or fixed-size blocks
//! for comparison.
//!
//! A chunker only ever looks at the bytes of the chunk it is cutting and the one byte after
//! it (FastCDC decides a cut by the byte at the cut): the cut at `p` depends on
//! `data[p..=p + cut]` alone. That is what lets a commit re-chunk only around an edit and
//! reuse every chunk after the first cut that lands on an old boundary.

use fastcdc::v2020::{self, Normalization};

/// How chunks are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkerKind {
    /// FastCDC 2020, content-defined.
    FastCdc,
    /// Fixed-size blocks of `avg` bytes.
    Fixed,
}

#[derive(Clone, Debug)]
pub struct Chunker {
    pub kind: ChunkerKind,
    pub min: usize,
    pub avg: usize,
    pub max: usize,
    mask_s: u64,
    mask_l: u64,
    /// Length of the chunk FastCDC cuts from the start of a run of zeros.
    zero_cut: usize,
}

/// Default chunk sizes (see README "Chunk sizes" for the measurements behind them).
pub const DEFAULT_MIN: usize = 4 * 1024;
pub const DEFAULT_AVG: usize = 16 * 1024;
pub const DEFAULT_MAX: usize = 64 * 1024;

impl Default for Chunker {
    fn default() -> Self {
        Chunker::new(ChunkerKind::FastCdc, DEFAULT_MIN, DEFAULT_AVG, DEFAULT_MAX)
            .expect("default chunk sizes are valid")
    }
}

impl Chunker {
    /// A chunker, or a message saying which size is out of range (naming the command line's
    /// flags, which set them).
    pub fn new(kind: ChunkerKind, min: usize, avg: usize, max: usize) -> Result<Chunker, String> {
        if kind == ChunkerKind::Fixed {
            if !(64..=v2020::MAXIMUM_MAX).contains(&avg) {
                return Err(format!(
                    "--chunk-avg {avg} (the fixed chunk size) must be between 64 and {}",
                    v2020::MAXIMUM_MAX
                ));
            }
            return Ok(Chunker {
                kind,
                min: avg,
                avg,
                max: avg,
                mask_s: 0,
                mask_l: 0,
                zero_cut: avg,
            });
        }
        let ranges = [
            ("min", min, v2020::MINIMUM_MIN, v2020::MINIMUM_MAX),
            ("avg", avg, v2020::AVERAGE_MIN, v2020::AVERAGE_MAX),
            ("max", max, v2020::MAXIMUM_MIN, v2020::MAXIMUM_MAX),
        ];
        for (name, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                return Err(format!("--chunk-{name} {v} must be between {lo} and {hi}"));
            }
            if v % 2 != 0 {
                return Err(format!("--chunk-{name} {v} must be even"));
            }
        }
        if !(min <= avg && avg <= max) {
            return Err(format!(
                "chunk sizes must satisfy --chunk-min <= --chunk-avg <= --chunk-max (got {min}, {avg}, \
                 {max})"
            ));
        }
        let (mask_s, mask_l) = v2020::select_masks(avg, Normalization::Level1);
        let mut chunker = Chunker {
            kind,
            min,
            avg,
            max,
            mask_s,
            mask_l,
            zero_cut: max,
        };
        chunker.zero_cut = chunker.cut(&vec![0u8; max]);
        Ok(chunker)
    }

    /// The length of the chunk that starts at `data[0]`. `data` must hold at least `max`
    /// bytes, or every byte up to the end of the content (then the last chunk ends there).
    pub fn cut(&self, data: &[u8]) -> usize {
        if data.is_empty() {
            return 0;
        }
        match self.kind {
            ChunkerKind::Fixed => data.len().min(self.avg),
            ChunkerKind::FastCdc => {
                let n =
                    super::gear::cut(data, self.min, self.avg, self.max, self.mask_s, self.mask_l);
                n.clamp(1, data.len())
            }
        }
    }

    /// The length of every chunk cut from the start of a long run of zeros: a zero run of
    /// `n * zero_cut()` bytes (followed by anything) begins with `n` chunks of this length.
    pub fn zero_cut(&self) -> usize {
        self.zero_cut
    }

    /// Cuts all of `data` (a whole content) into `(offset, length)` chunks.
    pub fn chunks<'a>(&'a self, data: &'a [u8]) -> impl Iterator<Item = (usize, usize)> + 'a {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= data.len() {
                return None;
            }
            let end = data.len().min(pos + self.max);
            let n = self.cut(&data[pos..end]);
            let chunk = (pos, n);
            pos += n;
            Some(chunk)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::noise;

    #[test]
    fn chunks_cover_the_data_within_bounds() {
        let c = Chunker::default();
        let data = noise(1 << 20, 7);
        let chunks: Vec<_> = c.chunks(&data).collect();
        assert_eq!(chunks.iter().map(|c| c.1).sum::<usize>(), data.len());
        for (i, (_, n)) in chunks.iter().enumerate() {
            assert!(*n <= c.max);
            if i + 1 < chunks.len() {
                assert!(*n >= c.min);
            }
        }
    }

    #[test]
    fn an_insertion_disturbs_only_nearby_chunks() {
        let c = Chunker::default();
        let a = noise(1 << 20, 9);
        let mut b = a.clone();
        b.splice(300_000..300_000, b"an inserted paragraph".iter().copied());
        let set = |d: &[u8]| -> std::collections::HashSet<Vec<u8>> {
            c.chunks(d).map(|(o, n)| d[o..o + n].to_vec()).collect()
        };
        let (sa, sb) = (set(&a), set(&b));
        let new = sb.difference(&sa).count();
        assert!(new <= 3, "{new} new chunks");
    }

    #[test]
    fn zero_runs_cut_at_zero_cut() {
        let c = Chunker::default();
        let mut data = vec![0u8; c.zero_cut() * 3];
        data.extend(noise(100_000, 3));
        let chunks: Vec<_> = c.chunks(&data).take(3).collect();
        assert!(chunks.iter().all(|&(_, n)| n == c.zero_cut()));
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(Chunker::new(ChunkerKind::FastCdc, 8192, 4096, 65536).is_err());
        assert!(Chunker::new(ChunkerKind::FastCdc, 16, 4096, 65536).is_err());
        assert!(Chunker::new(ChunkerKind::Fixed, 0, 8192, 0).is_ok());
    }
}
