//! Datagram protection: a keyring of shared secrets that seals datagrams (authenticates, and
//! optionally encrypts) and opens them.
//!
//! Every datagram ends in a 16-byte tag. In version 2 the tag covers, besides the datagram,
//! its *binding*: the cluster label and the name of the member it is for, neither of which
//! travels on the wire. A datagram captured on its way to one member therefore fails
//! authentication at every other, and a cluster with another label cannot read or feed this
//! one even with the same secret. Plain datagrams carry truncated HMAC-SHA256; encrypted
//! ones are AES-256-GCM-SIV, with the header and the binding as associated data.
//!
//! The first key of the [`Keyring`] seals; every key opens, so a cluster rotates keys
//! without downtime: add the new key everywhere, make it first everywhere, then drop the old
//! one. Opening runs before a single byte of payload is parsed, in constant time per key.

use alloc::vec::Vec;
use core::fmt;

use aes_gcm_siv::aead::AeadInOut;
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::wire::{Flags, Header, MAX_NAME_LEN, Version};

/// Length of the nonce in every datagram's header: a sequence number when the sender has a
/// wall clock (replay-protected), random salt otherwise.
pub const NONCE_LEN: usize = 8;

/// Top bit of a nonce: set when the rest is a sequence number that only grows.
pub const SEQUENCED: u64 = 1 << 63;

/// Length of the tag that ends every datagram: HMAC-SHA256 truncated to its first 128 bits
/// (as HMAC-SHA-256-128 in RFC 4868), or the AES-GCM-SIV tag.
pub const TAG_LEN: usize = 16;

/// Most keys a keyring holds: opening tries each, so this bounds the work a forged
/// datagram can cause.
pub const MAX_KEYS: usize = 8;

/// Domain separation: the same secret yields unrelated keys for version-2 tags and for
/// encryption, and neither equals the version-1 key (the secret itself), so a tag made for
/// one use is worthless for another.
const V2_MAC_CONTEXT: &[u8] = b"swim v2 datagram tag";
const V2_AEAD_CONTEXT: &[u8] = b"swim v2 aes-256-gcm-siv key";

/// Most bytes of associated data: two length bytes, a label and a name of at most 255 each,
/// and a header.
const AD_LEN: usize = 2 + 2 * MAX_NAME_LEN + 16;

/// What a datagram is sealed to besides its own bytes: the cluster label and the name of
/// the member it is for (empty when sent to an address whose member is unknown).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Binding<'a> {
    pub(crate) label: &'a str,
    pub(crate) receiver: &'a str,
}

impl Binding<'_> {
    /// The binding as the tag covers it (each part preceded by its length), then the
    /// header: the associated data of an encrypted datagram.
    fn associated_data<'b>(&self, header: &[u8], out: &'b mut [u8; AD_LEN]) -> &'b [u8] {
        let mut len = 0;
        for part in self.parts() {
            out[len] = part.len() as u8;
            out[len + 1..len + 1 + part.len()].copy_from_slice(part);
            len += 1 + part.len();
        }
        let header = &header[..header.len().min(AD_LEN - len)];
        out[len..len + header.len()].copy_from_slice(header);
        &out[..len + header.len()]
    }

    /// Label and receiver, each at most 255 bytes (validation and names keep them so).
    fn parts(&self) -> [&[u8]; 2] {
        [self.label.as_bytes(), self.receiver.as_bytes()].map(|p| &p[..p.len().min(MAX_NAME_LEN)])
    }

    fn mac(&self, mac: &mut Hmac<Sha256>) {
        for part in self.parts() {
            mac.update(&[part.len() as u8]);
            mac.update(part);
        }
    }
}

/// One secret, keyed for each use.
#[derive(Clone)]
struct Key {
    /// Version 1: HMAC keyed with the secret itself.
    v1: Hmac<Sha256>,
    /// Version 2, plain: HMAC keyed with a key derived from the secret.
    v2: Hmac<Sha256>,
    /// Version 2, encrypted.
    aead: Aes256GcmSiv,
}

impl Key {
    fn new(secret: &[u8]) -> Option<Key> {
        let derive = |context: &[u8]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
            mac.update(context);
            Some(mac.finalize().into_bytes())
        };
        let v2 = Hmac::<Sha256>::new_from_slice(&derive(V2_MAC_CONTEXT)?).ok()?;
        let aead = Aes256GcmSiv::new_from_slice(&derive(V2_AEAD_CONTEXT)?).ok()?;
        Some(Key { v1: Hmac::<Sha256>::new_from_slice(secret).ok()?, v2, aead })
    }
}

/// The shared secrets of a cluster. The first key seals; all of them open.
#[derive(Clone)]
pub struct Keyring {
    /// Keys already scheduled, cloned per datagram so the key schedule runs once.
    keys: Vec<Key>,
    /// Whether an empty secret was given (kept out of `keys`, reported by validation).
    empty_secret: bool,
}

impl Keyring {
    /// A keyring with one secret, which seals and opens.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        let mut keyring = Keyring::empty();
        keyring.push_key(secret.as_ref());
        keyring
    }

    /// A keyring from several secrets: the first seals, all open. Empty secrets are kept
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

    /// Adds a secret that opens but does not seal (the first step of a rotation).
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
        // HMAC and the key derivation take keys of any length, so this cannot fail; a
        // failure would leave the keyring shorter, which validation reports, rather than
        // panic.
        if let Some(key) = Key::new(secret) {
            self.keys.push(key);
        }
    }

    /// Appends the tag to `datagram` (header then payload), encrypting the payload in place
    /// if the header says so. Does nothing on an empty keyring, which validation never lets
    /// a node hold.
    pub(crate) fn seal(&self, datagram: &mut Vec<u8>, header: &Header, binding: &Binding<'_>) {
        let Some(key) = self.keys.first() else { return };
        let tag: [u8; TAG_LEN] = match header.version {
            Version::V1 => truncated(key.v1.clone().chain_update(&datagram[..])),
            Version::V2 if header.flags.has(Flags::ENCRYPTED) => {
                let (head, payload) = datagram.split_at_mut(header.encoded_len());
                let mut scratch = [0; AD_LEN];
                let ad = binding.associated_data(head, &mut scratch);
                // AES-GCM-SIV refuses only inputs beyond 2^36 bytes, far beyond a datagram.
                let Ok(tag) = key.aead.encrypt_inout_detached(&nonce(header), ad, payload.into())
                else {
                    return;
                };
                tag.into()
            }
            Version::V2 => {
                let mut mac = key.v2.clone();
                binding.mac(&mut mac);
                truncated(mac.chain_update(&datagram[..]))
            }
        };
        datagram.extend_from_slice(&tag);
    }

    /// Seals a packet written with [`PacketWriter`](crate::wire::PacketWriter) for the
    /// member named `receiver` (empty: for an address) of the cluster labelled `label`, as
    /// a node does before sending. For tests, fuzzing and tools that speak the protocol.
    #[cfg(any(test, feature = "unstable-wire"))]
    pub fn seal_packet(&self, mut packet: Vec<u8>, label: &str, receiver: &str) -> Vec<u8> {
        if let Ok(header) = Header::parse(&packet) {
            self.seal(&mut packet, &header, &Binding { label, receiver });
        }
        packet
    }

    /// Opens a datagram sealed for the member named `receiver` of the cluster labelled
    /// `label`: the packet without its tag (decrypted into `scratch` if it was encrypted),
    /// or `None` if no key sealed it so. For tests, benchmarks and tools.
    #[cfg(any(test, feature = "unstable-wire"))]
    pub fn open_packet<'a>(
        &self,
        datagram: &'a [u8],
        label: &str,
        receiver: &str,
        scratch: &'a mut Vec<u8>,
    ) -> Option<&'a [u8]> {
        let header = Header::parse(datagram).ok()?;
        self.open(datagram, &header, &Binding { label, receiver }, scratch)
    }

    /// Checks the tag of `datagram` against every key with `binding`, and returns the
    /// datagram without its tag (decrypted into `scratch` if it was encrypted); `None` if
    /// no key produced it.
    pub(crate) fn open<'a>(
        &self,
        datagram: &'a [u8],
        header: &Header,
        binding: &Binding<'_>,
        scratch: &'a mut Vec<u8>,
    ) -> Option<&'a [u8]> {
        let split = datagram.len().checked_sub(TAG_LEN)?;
        let (sealed, tag) = datagram.split_at(split);
        if sealed.len() < header.encoded_len() {
            return None;
        }
        let keys = self.keys.iter().take(MAX_KEYS);
        match header.version {
            Version::V1 => keys
                .into_iter()
                .find(|key| key.v1.clone().chain_update(sealed).verify_truncated_left(tag).is_ok())
                .map(|_| sealed),
            Version::V2 if header.flags.has(Flags::ENCRYPTED) => {
                let tag = Tag::try_from(tag).ok()?;
                let (head, ciphertext) = sealed.split_at(header.encoded_len());
                let mut ad_scratch = [0; AD_LEN];
                let ad = binding.associated_data(head, &mut ad_scratch);
                scratch.clear();
                scratch.extend_from_slice(sealed);
                let nonce = nonce(header);
                let opened = keys.into_iter().any(|key| {
                    let out = &mut scratch[header.encoded_len()..];
                    let buffer = aes_gcm_siv::aead::inout::InOutBuf::new(ciphertext, out).ok();
                    buffer.is_some_and(|b| {
                        key.aead.decrypt_inout_detached(&nonce, ad, b, &tag).is_ok()
                    })
                });
                opened.then_some(&scratch[..])
            }
            Version::V2 => keys
                .into_iter()
                .find(|key| {
                    let mut mac = key.v2.clone();
                    binding.mac(&mut mac);
                    mac.chain_update(sealed).verify_truncated_left(tag).is_ok()
                })
                .map(|_| sealed),
        }
    }
}

/// The AES-GCM-SIV nonce of a datagram: its header nonce, then four zero bytes. Nonces of
/// one sender never repeat; two senders may pick the same one, which AES-GCM-SIV tolerates
/// (it is misuse-resistant: a repeated nonce with another plaintext reveals nothing).
fn nonce(header: &Header) -> Nonce {
    let mut nonce = Nonce::default();
    nonce[..NONCE_LEN].copy_from_slice(&header.nonce.to_be_bytes());
    nonce
}

fn truncated(mac: Hmac<Sha256>) -> [u8; TAG_LEN] {
    let full = mac.finalize().into_bytes();
    let mut tag = [0; TAG_LEN];
    tag.copy_from_slice(&full[..TAG_LEN]);
    tag
}

impl fmt::Debug for Keyring {
    /// Never prints secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("keys", &self.keys.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u8) -> Header {
        Header::new(Version::V2, Flags(flags), SEQUENCED | 42)
    }

    fn sealed(keyring: &Keyring, header: &Header, binding: &Binding<'_>) -> Vec<u8> {
        let mut datagram = Vec::new();
        datagram.extend_from_slice(&[header.version as u8, header.minor]);
        if header.version == Version::V2 {
            datagram.push(header.flags.0);
        }
        datagram.extend_from_slice(&header.nonce.to_be_bytes());
        datagram.extend_from_slice(b"payload bytes");
        keyring.seal(&mut datagram, header, binding);
        datagram
    }

    const TO_B: Binding<'static> = Binding { label: "", receiver: "b" };

    #[test]
    fn seals_with_the_first_key_and_opens_with_any() {
        for flags in [0, Flags::ENCRYPTED] {
            let header = header(flags);
            let old = Keyring::new("old");
            let rotating = Keyring::new("new").with_key("old");
            let datagram = sealed(&old, &header, &TO_B);
            let mut scratch = Vec::new();
            let opened = rotating.open(&datagram, &header, &TO_B, &mut scratch).unwrap();
            assert_eq!(&opened[header.encoded_len()..], b"payload bytes");
            let mut scratch = Vec::new();
            assert!(Keyring::new("other").open(&datagram, &header, &TO_B, &mut scratch).is_none());
        }
    }

    #[test]
    fn encryption_hides_the_payload() {
        let header = header(Flags::ENCRYPTED);
        let datagram = sealed(&Keyring::new("k"), &header, &TO_B);
        assert!(!datagram.windows(7).any(|w| w == b"payload"));
    }

    #[test]
    fn a_datagram_opens_only_for_its_receiver_and_label() {
        for flags in [0, Flags::ENCRYPTED] {
            let header = header(flags);
            let keyring = Keyring::new("k");
            let datagram = sealed(&keyring, &header, &TO_B);
            for other in [
                Binding { label: "", receiver: "c" },
                Binding { label: "", receiver: "" },
                Binding { label: "prod", receiver: "b" },
            ] {
                let mut scratch = Vec::new();
                assert!(keyring.open(&datagram, &header, &other, &mut scratch).is_none());
            }
        }
    }

    #[test]
    fn any_flipped_bit_fails() {
        let keyring = Keyring::new("secret");
        for flags in [0, Flags::ENCRYPTED] {
            let header = header(flags);
            let datagram = sealed(&keyring, &header, &TO_B);
            for i in 0..datagram.len() {
                let mut forged = datagram.clone();
                forged[i] ^= 0x10;
                let mut scratch = Vec::new();
                assert!(keyring.open(&forged, &header, &TO_B, &mut scratch).is_none(), "byte {i}");
            }
            let mut scratch = Vec::new();
            assert!(keyring.open(&datagram[..TAG_LEN - 1], &header, &TO_B, &mut scratch).is_none());
        }
    }

    #[test]
    fn version_one_tags_are_the_secret_keyed_hmac_of_the_datagram() {
        let header = Header::new(Version::V1, Flags::default(), 7);
        let datagram = sealed(&Keyring::new("k"), &header, &TO_B);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(&datagram[..datagram.len() - TAG_LEN]);
        assert_eq!(&mac.finalize().into_bytes()[..TAG_LEN], &datagram[datagram.len() - TAG_LEN..]);
    }

    #[test]
    fn empty_secrets_are_flagged() {
        assert!(Keyring::new("").is_empty());
        assert!(Keyring::from_secrets(["a", ""]).has_empty_secret());
        assert_eq!(Keyring::from_secrets(["a", "b"]).len(), 2);
        assert_eq!(alloc::format!("{:?}", Keyring::new("hunter2")), "Keyring { keys: 1 }");
    }
}
