//! Helpers for the unit tests: datagrams as a peer holding the key would send them.

use alloc::vec::Vec;

use crate::auth::Keyring;
use crate::wire::{Body, Flags, Header, PacketWriter, Record, Sender, Version};

/// A sealed version-2 datagram for the member named `receiver`, with an unsequenced nonce
/// (the unit tests' nodes have no wall clock).
pub(crate) fn forge(
    keyring: &Keyring,
    receiver: &str,
    sender: &Sender<'_>,
    body: &Body<'_>,
    records: &[Record<'_>],
) -> Vec<u8> {
    let header = Header::new(Version::V2, Flags::default(), 1);
    let mut writer = PacketWriter::new(Vec::new(), 1452, &header, sender, body).unwrap();
    for record in records {
        assert!(writer.push(record));
    }
    keyring.seal_packet(writer.finish(), "", receiver)
}
