//! `HOST:PORT` names: parsing them with errors that say which setting is wrong, and turning
//! them into addresses through a [`Resolver`].

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crate::error::Error;

/// A parsed `HOST:PORT`: an IP address, or a name to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// The host, brackets of an IPv6 address removed.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl HostPort {
    /// Parses `value`, the setting `field`: `HOST:PORT`, with IPv6 hosts in brackets.
    ///
    /// Errors are permanent and name the field: no port, a port above 65535, an empty host,
    /// or a host that is written as an IPv4 address but is not one (`999.1.1.1`). Whether
    /// a name resolves is not checked here.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidAddress { field, value: value.to_owned(), reason };
        let (host, port) = value.rsplit_once(':').ok_or(invalid("expected HOST:PORT"))?;
        let port = match port.parse::<u32>() {
            Ok(port) => u16::try_from(port).map_err(|_| invalid("the port is above 65535"))?,
            Err(_) => return Err(invalid("the port is not a number")),
        };
        let host = match host.strip_prefix('[') {
            Some(v6) => {
                let v6 = v6.strip_suffix(']').ok_or(invalid("unclosed `[` around the host"))?;
                v6.parse::<std::net::Ipv6Addr>()
                    .map_err(|_| invalid("not a valid IPv6 address between `[` and `]`"))?;
                v6
            }
            None if host.contains(':') => return Err(invalid("an IPv6 host must be in brackets")),
            None => host,
        };
        if host.is_empty() {
            return Err(invalid("the host is empty"));
        }
        // A name made only of digits and dots is an IPv4 address: no DNS name has an
        // all-numeric top-level label, so asking a resolver would only delay the error.
        if host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && host.parse::<Ipv4Addr>().is_err()
        {
            return Err(invalid("not a valid IPv4 address"));
        }
        Ok(HostPort { host: host.to_owned(), port })
    }

    /// The address, without asking a resolver, if the host is an IP address.
    pub fn ip_addr(&self) -> Option<SocketAddr> {
        self.host.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Splits `HOST:PORT` (IPv6 hosts in brackets) into the host, brackets removed, and port;
/// `None` if it is not one. [`HostPort::parse`] says why.
pub fn split_host_port(name: &str) -> Option<(&str, u16)> {
    let (host, port) = name.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

type ResolveFn = dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// Turns a host and port into addresses. [`Resolver::default`] asks the system (DNS,
/// `/etc/hosts`); [`Resolver::new`] plugs in anything else (tests, service registries).
#[derive(Clone)]
pub struct Resolver(Arc<ResolveFn>);

impl Resolver {
    /// A resolver calling `resolve(host, port)`. The drivers call it from a thread of its
    /// own (swim-std) or a blocking task (swim-tokio), never from the node's loop.
    pub fn new(
        resolve: impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> Self {
        Resolver(Arc::new(resolve))
    }

    /// Every address `host:port` resolves to.
    pub fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        (self.0)(host, port)
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new(|host, port| Ok((host, port).to_socket_addrs()?.collect()))
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(value: &str) -> &'static str {
        match HostPort::parse("peer", value) {
            Err(Error::InvalidAddress { field: "peer", reason, .. }) => reason,
            other => panic!("{value}: {other:?}"),
        }
    }

    #[test]
    fn host_port_names_parse() {
        let parsed = HostPort::parse("peer", "db.local:2001").unwrap();
        assert_eq!((parsed.host.as_str(), parsed.port), ("db.local", 2001));
        assert_eq!(parsed.ip_addr(), None);
        let v6 = HostPort::parse("peer", "[::1]:7").unwrap();
        assert_eq!(v6.ip_addr(), Some("[::1]:7".parse().unwrap()));
        assert_eq!(v6.to_string(), "[::1]:7");
        assert_eq!(split_host_port("127.0.0.1:2001"), Some(("127.0.0.1", 2001)));
        assert_eq!(split_host_port("node-1"), None);
    }

    #[test]
    fn bad_names_say_what_is_wrong() {
        assert_eq!(reason("999.1.1.1:2000"), "not a valid IPv4 address");
        assert_eq!(reason("127.0.0.1:99999"), "the port is above 65535");
        assert_eq!(reason(":99999"), "the port is above 65535");
        assert_eq!(reason("host:port"), "the port is not a number");
        assert_eq!(reason("node-1"), "expected HOST:PORT");
        assert_eq!(reason(":2001"), "the host is empty");
        assert_eq!(reason("::1:7"), "an IPv6 host must be in brackets");
        assert_eq!(reason("[::1:7"), "unclosed `[` around the host");
        assert_eq!(reason("[nope]:7"), "not a valid IPv6 address between `[` and `]`");
    }
}
