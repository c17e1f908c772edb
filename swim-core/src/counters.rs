//! Counters a node keeps about its own work, for dashboards and tests.

/// Why an incoming datagram (or stream message) was dropped. A dropped datagram changes no
/// state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Larger than `mtu_size` allows (a stream message: than `max_stream_message`).
    TooLarge,
    /// Too short to hold a tag, or no key of the keyring produced its tag for this node and
    /// this cluster's label: a wrong secret, another cluster, or a datagram for another
    /// member.
    Unauthenticated,
    /// Signed correctly, but of another major protocol version.
    UnsupportedVersion,
    /// Signed correctly, but not a valid encoding.
    Malformed,
    /// A message type this version does not know (from a newer minor version).
    UnknownMessage,
    /// Claims to come from this node's own name: a name conflict or a reflected datagram.
    FromSelf,
    /// Meant for another member (an address now used by someone else), or sent to this
    /// node's address without its name while it is not the start of a join, or on the
    /// wrong transport (a stream message as a datagram or the other way round, or any
    /// stream message to a node without `streams`).
    Misdirected,
    /// Authentic, but already accepted once or older than the sender's window: a replay.
    Replayed,
    /// This node left the cluster: it no longer takes part, so others forget it.
    Left,
    /// Authentic, but claims what no honest member sends: an incarnation far beyond the
    /// one known, or an address that cannot be a member's (broadcast, multicast,
    /// unspecified, port 0).
    Implausible,
    /// From a member that left for good at the incarnation it still claims.
    SenderLeft,
    /// From a member this node does not know while its table is full (`max_members`, or
    /// `max_members_per_ip` at the sender's IP): not remembered, so not answered either.
    TableFull,
    /// Not replay-protected (no sequence number) while this node is: it could be a replay.
    Unsequenced,
    /// Its sequence number says it was sent further ahead of this node's clock than
    /// `max_clock_skew`, or longer ago than `max_datagram_age`: captured long ago, forged,
    /// or from a member with a wrong clock.
    ClockSkew,
    /// An anti-entropy step that follows nothing this node sent, or does not echo it.
    Unsolicited,
    /// Not encrypted while this node requires encryption.
    Unencrypted,
    /// Names its sender short (by the hash of its name) while this node holds no member, or
    /// more than one, of that hash: the sender believed this node knew it (it forgot it,
    /// or restarted). The sender falls back to its full name when a probe goes unanswered.
    UnknownSender,
}

impl DropReason {
    /// Every reason, in a fixed order.
    pub const ALL: [DropReason; 17] = [
        DropReason::TooLarge,
        DropReason::Unauthenticated,
        DropReason::UnsupportedVersion,
        DropReason::Malformed,
        DropReason::UnknownMessage,
        DropReason::FromSelf,
        DropReason::Misdirected,
        DropReason::Replayed,
        DropReason::Left,
        DropReason::Implausible,
        DropReason::SenderLeft,
        DropReason::TableFull,
        DropReason::Unsequenced,
        DropReason::ClockSkew,
        DropReason::Unsolicited,
        DropReason::Unencrypted,
        DropReason::UnknownSender,
    ];

    /// A short snake_case name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::TooLarge => "too_large",
            DropReason::Unauthenticated => "unauthenticated",
            DropReason::UnsupportedVersion => "unsupported_version",
            DropReason::Malformed => "malformed",
            DropReason::UnknownMessage => "unknown_message",
            DropReason::FromSelf => "from_self",
            DropReason::Misdirected => "misdirected",
            DropReason::Replayed => "replayed",
            DropReason::Left => "left",
            DropReason::Implausible => "implausible",
            DropReason::SenderLeft => "sender_left",
            DropReason::TableFull => "table_full",
            DropReason::Unsequenced => "unsequenced",
            DropReason::ClockSkew => "clock_skew",
            DropReason::Unsolicited => "unsolicited",
            DropReason::Unencrypted => "unencrypted",
            DropReason::UnknownSender => "unknown_sender",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Running totals since the node was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Counters {
    /// Datagrams handed to [`handle_datagram`](crate::Node::handle_datagram).
    pub datagrams_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Datagrams produced by [`poll_transmit`](crate::Node::poll_transmit).
    pub datagrams_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Direct probes (pings) started by this node.
    pub probes: u64,
    /// Ping-reqs sent after a direct ping timed out.
    pub ping_reqs: u64,
    /// Probes that failed, making their target suspect.
    pub suspicions: u64,
    /// Times this node refuted an accusation about itself.
    pub refutations: u64,
    /// Anti-entropy digests sent.
    pub syncs: u64,
    /// Membership facts applied because they were news.
    pub updates_applied: u64,
    /// New members refused because the table held `max_members`.
    pub members_refused: u64,
    /// Remote metadata ignored for exceeding `max_metadata_size`.
    pub metadata_refused: u64,
    /// Records ignored as implausible: a counter far beyond the one known, an address that
    /// cannot be a member's.
    pub facts_refused: u64,
    /// Offline reports from others about members this node held online, taken as a
    /// suspicion first so that the member can refute (the Python package's rule).
    pub offline_reports_doubted: u64,
    /// Lifeguard: new independent confirmations of a suspicion counted.
    pub confirmations: u64,
    /// Lifeguard: nacks sent as a ping-req helper.
    pub nacks_sent: u64,
    /// Lifeguard: nacks received from ping-req helpers.
    pub nacks_received: u64,
    /// Stream messages handed to [`handle_stream`](crate::Node::handle_stream).
    pub streams_in: u64,
    /// Their bytes.
    pub stream_bytes_in: u64,
    /// Of those, dropped (each is also counted by reason, with datagrams, in
    /// [`Counters::dropped`]).
    pub streams_dropped: u64,
    /// Stream messages produced by [`poll_stream`](crate::Node::poll_stream).
    pub streams_out: u64,
    /// Their bytes.
    pub stream_bytes_out: u64,
    /// Stream pings sent before suspecting a member that did not answer UDP probes.
    pub stream_pings: u64,
    /// Push-pull exchanges started (requests sent).
    pub push_pulls: u64,
    /// Members whose metadata was asked for over a stream.
    pub metadata_fetches: u64,
    /// Serialised by [`CounterStatus`](crate::CounterStatus) as a map by reason.
    #[cfg_attr(feature = "serde", serde(skip))]
    drops: [u64; DropReason::ALL.len()],
}

impl Counters {
    /// Datagrams dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Datagrams dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_count_by_reason() {
        let mut counters = Counters::default();
        counters.drop(DropReason::Malformed);
        counters.drop(DropReason::Malformed);
        counters.drop(DropReason::TooLarge);
        assert_eq!(counters.dropped(DropReason::Malformed), 2);
        assert_eq!(counters.dropped(DropReason::Unauthenticated), 0);
        assert_eq!(counters.dropped_total(), 3);
        assert!(DropReason::ALL.iter().enumerate().all(|(i, r)| r.index() == i));
    }
}
