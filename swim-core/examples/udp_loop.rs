//! Drive a `swim-core` node from a plain loop over a std `UdpSocket`: how to link the core
//! into an event loop of your own. The drivers (`swim-tokio`, `swim-std`) do the same with
//! more care (name resolution, commands, graceful shutdown).
//!
//! ```text
//! cargo run -p swim-core --example udp_loop -- 127.0.0.1:7001
//! cargo run -p swim-core --example udp_loop -- 127.0.0.1:7002 127.0.0.1:7001
//! ```
//!
//! Arguments: this node's address (also its name), then any seeds. It runs for 60 seconds,
//! printing membership events.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use swim_core::{Config, Keyring, Node, SystemClock};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let local: SocketAddr = args.next().ok_or("usage: udp_loop ADDR [PEER...]")?.parse()?;
    let peers = args.map(|s| s.parse()).collect::<Result<Vec<SocketAddr>, _>>()?;

    let socket = UdpSocket::bind(local)?;
    let config = Config::new(local.to_string(), local, Keyring::new("example secret"));
    // The core reads no clock and asks the OS for nothing: `Node::start` seeds it from the
    // OS and sets its wall clock (replay protection), and the clock turns time into the
    // core's `Instant`s.
    let clock = SystemClock::new();
    let now = || clock.now();
    let mut node = Node::start(config, &clock)?;
    node.join(now(), peers);

    // One byte more than the largest datagram a member may send: a datagram that fills the
    // buffer was larger, and the node drops it as such rather than reading it truncated.
    let mut buf = vec![0u8; node.config().max_datagram() + 1];
    let end = now() + Duration::from_secs(60);
    while now() < end {
        // After every input: send all transmits, report all events, then wait for the next
        // datagram or the next deadline, whichever comes first.
        while let Some(transmit) = node.poll_transmit() {
            if let Err(error) = socket.send_to(transmit.payload, transmit.destination) {
                eprintln!("send to {}: {error}", transmit.destination);
            }
        }
        while let Some(event) = node.poll_event() {
            println!("{:>8} {event:?}", now().to_string());
        }
        let wait = node.poll_timeout().map_or(Duration::from_secs(1), |deadline| {
            deadline.saturating_duration_since(now()).max(Duration::from_millis(1))
        });
        // The wall clock, kept right across a suspended host or a corrected clock.
        node.set_wall_clock(now(), SystemClock::wall_ms());
        socket.set_read_timeout(Some(wait))?;
        match socket.recv_from(&mut buf) {
            Ok((len, from)) => node.handle_datagram(now(), from, &buf[..len]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(error) => eprintln!("receive: {error}"),
        }
        node.handle_timeout(now());
    }
    node.leave(now());
    while let Some(transmit) = node.poll_transmit() {
        let _ = socket.send_to(transmit.payload, transmit.destination);
    }
    Ok(())
}
