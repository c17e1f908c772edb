//! The primitives every message is made of: a cursor whose every read is checked, and the
//! writers of the same fields. Big-endian integers, LEB128 varints with one encoding per
//! value, length-prefixed names, tagged addresses.

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{BucketSet, DecodeError, MAX_BUCKET_SHIFT, MAX_NAME_LEN};

/// A cursor over a byte slice whose every read is checked.
pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(len).ok_or(DecodeError::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.bytes(N)?;
        bytes.try_into().map_err(|_| DecodeError::Truncated)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                // One encoding per value: a zero final byte after the first is overlong.
                if i > 0 && byte == 0 {
                    return Err(DecodeError::InvalidField("overlong varint"));
                }
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    /// A varint used as a length or count: bounded by what is left, so a forged huge count
    /// fails here instead of driving a long loop.
    pub(crate) fn len_prefix(&mut self) -> Result<usize, DecodeError> {
        let value = self.varint()?;
        usize::try_from(value)
            .ok()
            .filter(|len| *len <= self.remaining())
            .ok_or(DecodeError::Truncated)
    }

    pub(crate) fn name(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::from(self.u8()?);
        core::str::from_utf8(self.bytes(len)?).map_err(|_| DecodeError::InvalidUtf8)
    }

    pub(crate) fn addr(&mut self) -> Result<SocketAddr, DecodeError> {
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>()?)),
            other => return Err(DecodeError::InvalidAddressFamily(other)),
        };
        Ok(SocketAddr::new(ip, self.u16()?))
    }

    /// A bucket bitmap of `2^shift` bits; bits beyond the last bucket must be clear.
    pub(crate) fn bucket_set(&mut self, shift: u8) -> Result<BucketSet, DecodeError> {
        let mut set = BucketSet::default();
        for (i, byte) in self.bytes(BucketSet::wire_len(shift))?.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    let index = i * 8 + bit;
                    if index >= 1 << shift {
                        return Err(DecodeError::InvalidField("bucket set"));
                    }
                    set.insert(index);
                }
            }
        }
        Ok(set)
    }

    pub(crate) fn shift(&mut self) -> Result<u8, DecodeError> {
        let shift = self.u8()?;
        if shift > MAX_BUCKET_SHIFT {
            return Err(DecodeError::InvalidField("bucket shift"));
        }
        Ok(shift)
    }
}

pub(crate) fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Writes a name or key: one length byte, then the bytes. Callers keep names within
/// [`MAX_NAME_LEN`] (configuration and metadata validation); longer input is cut at a
/// character boundary rather than produce an undecodable datagram.
pub(crate) fn put_name(out: &mut Vec<u8>, name: &str) {
    let mut len = name.len().min(MAX_NAME_LEN);
    while !name.is_char_boundary(len) {
        len -= 1;
    }
    out.push(len as u8);
    out.extend_from_slice(&name.as_bytes()[..len]);
}

/// Bytes of a name or key as [`put_name`] writes it.
pub(crate) fn name_len(name: &str) -> usize {
    1 + name.len().min(MAX_NAME_LEN)
}

pub(crate) fn addr_len(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 1 + 4 + 2,
        SocketAddr::V6(_) => 1 + 16 + 2,
    }
}

pub(crate) fn put_addr(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// A bucket bitmap of `2^shift` bits: bucket `i` at bit `i % 8` of byte `i / 8`.
pub(crate) fn put_bucket_set(out: &mut Vec<u8>, shift: u8, set: &BucketSet) {
    for i in 0..BucketSet::wire_len(shift) {
        out.push((set.0[i / 8] >> ((i % 8) * 8)) as u8);
    }
}

/// A 2-byte count of `unit`-byte items, then the items; `None` if there are too many.
pub(crate) fn put_counted(out: &mut Vec<u8>, items: &[u8], unit: usize) -> Option<()> {
    let count = u16::try_from(items.len() / unit).ok()?;
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&items[..usize::from(count) * unit]);
    Some(())
}

pub(crate) fn be_u32(bytes: &[u8]) -> u32 {
    bytes.try_into().map_or(0, u32::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_reject_overflow_and_overlong() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value));
            assert_eq!(Reader::new(&out).varint(), Ok(value));
        }
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .varint()
                .is_err()
        );
        assert!(Reader::new(&[0x80, 0x00]).varint().is_err());
    }
}
