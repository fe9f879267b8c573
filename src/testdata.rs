//! Deterministic test data shared by unit tests, integration tests and benchmarks.

/// `n` pseudo-random bytes (xorshift64), the same for the same `seed`: data that no other
/// seed shares, so it neither compresses nor dedups by accident.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `n` bytes of lines of a C-like source: text that LZ4 shrinks to well under half.
pub fn source_text(n: usize) -> Vec<u8> {
    (0..)
        .flat_map(|i: u32| format!("    int x{i} = f(x{}, {i});\n", i / 3).into_bytes())
        .take(n)
        .collect()
}
