//! A running 64-bit hash of the trace. Not cryptographic: it only has to differ when the
//! trace differs, and be the same on every platform (no `std` hasher, whose keys are random).

/// SplitMix64's finaliser: a good 64-bit mixer.
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A running hash over words and byte strings.
#[derive(Clone, Copy, Debug)]
pub struct Digest(u64);

impl Digest {
    /// A digest starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Digest(mix64(seed))
    }

    /// Adds one word.
    pub fn write(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    /// Adds a byte string, length included.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.write(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write(u64::from_le_bytes(word));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.write(u64::from_le_bytes(last));
    }

    /// The hash so far.
    pub fn value(&self) -> u64 {
        mix64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differs_on_any_change() {
        let mut a = Digest::new(1);
        let mut b = Digest::new(1);
        a.write_bytes(b"hello world");
        b.write_bytes(b"hello world");
        assert_eq!(a.value(), b.value());
        b.write(0);
        assert_ne!(a.value(), b.value());
        let mut c = Digest::new(1);
        c.write_bytes(b"hello worle");
        assert_ne!(a.value(), c.value());
    }
}
