//! Datagram authentication: a keyring of shared secrets, truncated HMAC-SHA256, and replay
//! windows.
//!
//! Every datagram ends in a tag over everything before it (version, nonce and payload). The
//! first key of the [`Keyring`] signs; every key verifies, so a cluster rotates keys without
//! downtime: add the new key everywhere, make it first everywhere, then drop the old one.
//! Verification runs before a single byte of payload is parsed, in constant time per key.

use alloc::vec::Vec;
use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Length of the nonce after the version bytes of every datagram: a sequence number when the
/// sender has an epoch (replay-protected), random salt otherwise.
pub const NONCE_LEN: usize = 8;

/// Top bit of a nonce: set when the rest is a sequence number that only grows.
pub const SEQUENCED: u64 = 1 << 63;

/// Length of the authentication tag: HMAC-SHA256 truncated to its first 128 bits
/// (as HMAC-SHA-256-128 in RFC 4868), which halves the per-datagram overhead.
pub const TAG_LEN: usize = 16;

/// Most keys a keyring holds: verification tries each, so this bounds the work a forged
/// datagram can cause.
pub const MAX_KEYS: usize = 8;

/// The shared secrets of a cluster. The first key signs; all of them verify.
#[derive(Clone)]
pub struct Keyring {
    /// HMAC states already keyed, cloned per datagram so the key schedule runs once.
    keys: Vec<Hmac<Sha256>>,
    /// Whether an empty secret was given (kept out of `keys`, reported by validation).
    empty_secret: bool,
}

impl Keyring {
    /// A keyring with one secret, which signs and verifies.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        let mut keyring = Keyring::empty();
        keyring.push_key(secret.as_ref());
        keyring
    }

    /// A keyring from several secrets: the first signs, all verify. Empty secrets are kept
    /// so that [`Config::validate`](crate::Config::validate) can name them.
    pub fn from_secrets<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut keyring = Keyring::empty();
        for secret in secrets {
            keyring.push_key(secret.as_ref());
        }
        keyring
    }

    /// Adds a secret that verifies but does not sign (the second step of a rotation).
    #[must_use]
    pub fn with_key(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.push_key(secret.as_ref());
        self
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key at all (such a keyring is refused by validation).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether an empty secret was given: almost certainly a missing environment variable or
    /// file, so validation refuses it rather than silently dropping it.
    pub fn has_empty_secret(&self) -> bool {
        self.empty_secret
    }

    fn empty() -> Self {
        Keyring { keys: Vec::new(), empty_secret: false }
    }

    fn push_key(&mut self, secret: &[u8]) {
        if secret.is_empty() {
            self.empty_secret = true;
            return;
        }
        // HMAC takes keys of any length, so this cannot fail; a failure would leave the
        // keyring shorter, which validation reports, rather than panic.
        if let Ok(mac) = Hmac::<Sha256>::new_from_slice(secret) {
            self.keys.push(mac);
        }
    }

    /// Appends the tag of `datagram` (everything signed so far) made with the first key.
    /// Does nothing on an empty keyring, which validation never lets a node hold.
    pub(crate) fn sign(&self, datagram: &mut Vec<u8>) {
        if let Some(key) = self.keys.first() {
            let mut mac = key.clone();
            mac.update(datagram);
            let tag = mac.finalize().into_bytes();
            datagram.extend_from_slice(&tag[..TAG_LEN]);
        }
    }

    /// Returns the signed part of `datagram` if some key produced its tag.
    pub(crate) fn verify<'a>(&self, datagram: &'a [u8]) -> Option<&'a [u8]> {
        let split = datagram.len().checked_sub(TAG_LEN)?;
        let (signed, tag) = datagram.split_at(split);
        self.keys.iter().take(MAX_KEYS).find_map(|key| {
            let mut mac = key.clone();
            mac.update(signed);
            mac.verify_truncated_left(tag).ok().map(|()| signed)
        })
    }
}

impl fmt::Debug for Keyring {
    /// Never prints secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("keys", &self.keys.len()).finish()
    }
}

/// Which sequenced nonces of one sender were already accepted: the highest, and a bitmap of
/// the 64 below it (as in IPsec's anti-replay window), so reordered datagrams still pass but
/// no datagram is accepted twice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    highest: u64,
    seen: u64,
}

impl ReplayWindow {
    /// A window that rejects everything up to `highest` (a tombstone's memory).
    pub(crate) fn after(highest: u64) -> Self {
        ReplayWindow { highest, seen: u64::MAX }
    }

    /// The highest nonce accepted.
    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }

    /// Whether `nonce` is new: unsequenced nonces always are (the sender has no epoch).
    pub(crate) fn is_fresh(&self, nonce: u64) -> bool {
        if nonce & SEQUENCED == 0 || nonce > self.highest {
            return true;
        }
        let behind = self.highest - nonce;
        behind < 64 && self.seen & (1 << behind) == 0
    }

    /// Records `nonce` as accepted (call only after [`ReplayWindow::is_fresh`]).
    pub(crate) fn accept(&mut self, nonce: u64) {
        if nonce & SEQUENCED == 0 {
            return;
        }
        if nonce > self.highest {
            let ahead = nonce - self.highest;
            self.seen = if ahead >= 64 { 0 } else { self.seen << ahead };
            self.seen |= 1;
            self.highest = nonce;
        } else if self.highest - nonce < 64 {
            self.seen |= 1 << (self.highest - nonce);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn signs_with_first_key_and_verifies_with_any() {
        let old = Keyring::new("old");
        let rotating = Keyring::new("new").with_key("old");
        let mut datagram = vec![1, 2, 3];
        old.sign(&mut datagram);
        assert_eq!(datagram.len(), 3 + TAG_LEN);
        assert_eq!(rotating.verify(&datagram), Some(&[1u8, 2, 3][..]));
        assert_eq!(Keyring::new("other").verify(&datagram), None);
    }

    #[test]
    fn replay_window_accepts_each_nonce_once() {
        let mut window = ReplayWindow::default();
        let base = SEQUENCED | 1_000;
        for nonce in [base, base + 2, base + 1, base + 70] {
            assert!(window.is_fresh(nonce), "{nonce}");
            window.accept(nonce);
            assert!(!window.is_fresh(nonce));
        }
        // Within the window but seen, or too old: replays.
        assert!(!window.is_fresh(base + 2));
        assert!(!window.is_fresh(base + 6));
        assert!(window.is_fresh(base + 69));
        assert!(window.is_fresh(base + 71));
        // Unsequenced nonces carry no order.
        assert!(window.is_fresh(5));
        let tomb = ReplayWindow::after(window.highest());
        assert!(!tomb.is_fresh(base + 69));
        assert!(tomb.is_fresh(base + 71));
    }

    #[test]
    fn any_flipped_bit_fails() {
        let keyring = Keyring::new("secret");
        let mut datagram = vec![9; 40];
        keyring.sign(&mut datagram);
        for i in 0..datagram.len() {
            let mut forged = datagram.clone();
            forged[i] ^= 0x10;
            assert_eq!(keyring.verify(&forged), None, "byte {i}");
        }
        assert_eq!(keyring.verify(&datagram[..TAG_LEN - 1]), None);
    }

    #[test]
    fn empty_secrets_are_flagged() {
        assert!(Keyring::new("").is_empty());
        assert!(Keyring::from_secrets(["a", ""]).has_empty_secret());
        assert_eq!(Keyring::from_secrets(["a", "b"]).len(), 2);
        assert_eq!(alloc::format!("{:?}", Keyring::new("hunter2")), "Keyring { keys: 1 }");
    }
}
