//! Byte counts for people, in one style everywhere (binary units, via `bytesize`).

use bytesize::ByteSize;

/// "512 B", "16.0 KiB", "1.5 MiB": exact below 1 KiB, else one decimal in the largest unit.
pub fn bytes(n: u64) -> String {
    ByteSize(n).display().iec().to_string()
}

/// The same without the space ("16.0KiB"), for narrow table columns; exact bytes below
/// 10 KiB ("9216B"), where a request's size matters to the byte.
pub fn bytes_compact(n: u64) -> String {
    if n < 10 * 1024 {
        format!("{n}B")
    } else {
        bytes(n).replace(' ', "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(16 * 1024), "16.0 KiB");
        assert_eq!(bytes(3 << 19), "1.5 MiB");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(bytes(1 << 30), "1.0 GiB");
        assert_eq!(bytes_compact(29), "29B");
        assert_eq!(bytes_compact(10 * 1024 - 1), "10239B");
        assert_eq!(bytes_compact(10 * 1024), "10.0KiB");
        assert_eq!(bytes_compact(5 << 20), "5.0MiB");
    }
}
