//! Event fan-out: every event to every subscriber, and the events a watch selects to its
//! receiver, without ever waiting for a slow reader.
//!
//! Events from before the first subscriber are kept for it: a node starts joining as soon
//! as it is bound, and a join on a fast network finishes before the application can call
//! `subscribe`, so without them the first events (members joining, this node's `Joined`)
//! would never reach anyone. Like connections queued for a listener before `accept`, they
//! wait, up to `event_capacity` of them, until the first `subscribe`; the first `watch`
//! (which starts from the member table as it is) drops them too.
//!
//! One lag convention for both drivers: a stream holds at most `event_capacity` unread
//! items; further events for it are lost (the newest, not the oldest, so what was read in
//! order stays in order) and counted, and the stream yields `Err(Lagged(n))` before the next
//! event it gets.

use std::collections::VecDeque;

use swim_core::rand_core::Rng;
use swim_core::{Event, Node, Watch, WatchFilter, Watched};

/// A stream missed this many events because its reader did not keep up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("lagged behind and missed {0} events")]
pub struct Lagged(pub u64);

/// What an [`Outlet`] did with an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    /// Queued for the reader.
    Sent,
    /// The reader's queue is full: the item was not queued.
    Full,
    /// The reader is gone.
    Closed,
}

/// The sending side of a bounded, non-blocking channel: each driver's own channel.
pub trait Outlet<T>: Send {
    /// Queues `item` if there is room, never waiting.
    fn offer(&self, item: Result<T, Lagged>) -> Offered;
}

impl<T, O: Outlet<T> + ?Sized> Outlet<T> for Box<O> {
    fn offer(&self, item: Result<T, Lagged>) -> Offered {
        (**self).offer(item)
    }
}

/// An outlet and the events it missed.
struct Subscriber<O> {
    outlet: O,
    missed: u64,
}

impl<O> Subscriber<O> {
    /// Delivers `item` (after the lag notice, if any is due); `false` once the reader is gone.
    fn deliver<T>(&mut self, item: impl FnOnce() -> T) -> bool
    where
        O: Outlet<T>,
    {
        if self.missed > 0 {
            match self.outlet.offer(Err(Lagged(self.missed))) {
                Offered::Sent => self.missed = 0,
                Offered::Full => {
                    self.missed += 1;
                    return true;
                }
                Offered::Closed => return false,
            }
        }
        match self.outlet.offer(Ok(item())) {
            Offered::Sent => true,
            Offered::Full => {
                self.missed += 1;
                true
            }
            Offered::Closed => false,
        }
    }
}

/// Events published before the first subscriber, kept for it.
struct Early {
    events: VecDeque<Event>,
    /// Events lost because `events` was full (the newest, as for any stream).
    missed: u64,
    capacity: usize,
}

/// Every subscriber and watch of one node. `E` carries events, `W` watched events.
pub struct Fanout<E, W> {
    subscribers: Vec<Subscriber<E>>,
    watchers: Vec<(Watch, Subscriber<W>)>,
    /// Until the first subscriber or watch: the events it would have missed.
    early: Option<Early>,
    /// Set once the node stopped: new readers get what was kept, then their stream ends.
    closed: bool,
}

impl<E: Outlet<Event>, W: Outlet<Watched>> Fanout<E, W> {
    /// No reader yet; up to `capacity` events are kept for the first subscriber.
    pub fn new(capacity: usize) -> Self {
        let early = Early { events: VecDeque::new(), missed: 0, capacity };
        let (subscribers, watchers) = (Vec::new(), Vec::new());
        Fanout { subscribers, watchers, early: Some(early), closed: false }
    }

    /// Adds a subscriber to every event from now on; the first subscriber also gets every
    /// event published before it (see the module's documentation).
    pub fn subscribe(&mut self, outlet: E) {
        let mut subscriber = Subscriber { outlet, missed: 0 };
        if let Some(early) = self.early.take() {
            for event in early.events {
                subscriber.deliver(|| event);
            }
            // What the buffer lost came after what it kept: the notice comes next, now if
            // there is room, else before the next event.
            subscriber.missed += early.missed;
            if subscriber.missed > 0
                && subscriber.outlet.offer(Err(Lagged(subscriber.missed))) == Offered::Sent
            {
                subscriber.missed = 0;
            }
        }
        if !self.closed {
            self.subscribers.push(subscriber);
        }
    }

    /// Adds a watch starting from `node`'s members now: call it under the same lock as
    /// [`Self::publish`], so it starts exactly where the published events do.
    pub fn watch<R: Rng>(&mut self, node: &Node<R>, filter: WatchFilter, outlet: W) {
        self.early = None;
        if !self.closed {
            let watch = Watch::of(node, filter);
            self.watchers.push((watch, Subscriber { outlet, missed: 0 }));
        }
    }

    /// Hands `event` to every subscriber, and to every watch that selects it with the
    /// member as `node` has it now; readers that are gone are dropped.
    pub fn publish<R: Rng>(&mut self, node: &Node<R>, event: &Event) {
        if let Some(early) = &mut self.early {
            match early.events.len() < early.capacity {
                true => early.events.push_back(event.clone()),
                false => early.missed += 1,
            }
        }
        self.subscribers.retain_mut(|subscriber| subscriber.deliver(|| event.clone()));
        let member = Watch::member_of(node, event);
        self.watchers.retain_mut(|(watch, subscriber)| {
            if !watch.offer(event, member) {
                return true;
            }
            subscriber.deliver(|| Watched { event: event.clone(), member: member.cloned() })
        });
    }

    /// Drops every outlet, which ends every stream once drained. A subscriber that comes
    /// later still gets the events kept for the first one, then its stream ends.
    pub fn close(&mut self) {
        self.closed = true;
        self.subscribers.clear();
        self.watchers.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// An outlet holding at most `room` items.
    struct Queue<T> {
        items: Arc<Mutex<Vec<Result<T, Lagged>>>>,
        room: usize,
    }

    impl<T: Send> Outlet<T> for Queue<T> {
        fn offer(&self, item: Result<T, Lagged>) -> Offered {
            let mut items = self.items.lock().unwrap();
            if items.len() >= self.room {
                return Offered::Full;
            }
            items.push(item);
            Offered::Sent
        }
    }

    #[test]
    fn a_full_outlet_loses_the_newest_and_is_told_how_many() {
        let items = Arc::new(Mutex::new(Vec::new()));
        let mut subscriber =
            Subscriber { outlet: Queue { items: Arc::clone(&items), room: 2 }, missed: 0 };
        for i in 0..5 {
            assert!(subscriber.deliver(|| i));
        }
        assert_eq!(*items.lock().unwrap(), [Ok(0), Ok(1)]);
        items.lock().unwrap().clear();
        assert!(subscriber.deliver(|| 5));
        assert_eq!(*items.lock().unwrap(), [Err(Lagged(3)), Ok(5)]);
    }

    type Items<T> = Arc<Mutex<Vec<Result<T, Lagged>>>>;

    fn queue<T>(room: usize) -> (Queue<T>, Items<T>) {
        let items = Arc::new(Mutex::new(Vec::new()));
        (Queue { items: Arc::clone(&items), room }, items)
    }

    fn node() -> Node<swim_core::ChaCha8Rng> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        let mut config = swim_core::Config::new("a", addr, swim_core::Keyring::new("k"));
        config.epoch_ms = 1_700_000_000_000;
        Node::seeded(config, 1, swim_core::Instant::ZERO).unwrap()
    }

    fn refuted(incarnation: u64) -> Event {
        Event::Refuted { incarnation }
    }

    #[test]
    fn the_first_subscriber_gets_what_came_before_it_and_no_one_else_does() {
        let node = node();
        let mut fanout: Fanout<Queue<Event>, Queue<Watched>> = Fanout::new(3);
        for i in 0..5 {
            fanout.publish(&node, &refuted(i));
        }
        let (first, got) = queue(8);
        fanout.subscribe(first);
        fanout.publish(&node, &refuted(5));
        // Three kept, the two newest lost and said so, then what came after.
        let expected = [Ok(refuted(0)), Ok(refuted(1)), Ok(refuted(2)), Err(Lagged(2))];
        assert_eq!(got.lock().unwrap()[..4], expected);
        assert_eq!(got.lock().unwrap()[4..], [Ok(refuted(5))]);
        let (second, got) = queue(8);
        fanout.subscribe(second);
        fanout.publish(&node, &refuted(6));
        assert_eq!(*got.lock().unwrap(), [Ok(refuted(6))]);
    }

    #[test]
    fn a_watch_drops_what_was_kept_and_a_stopped_node_still_hands_it_over() {
        let node = node();
        let mut watched: Fanout<Queue<Event>, Queue<Watched>> = Fanout::new(3);
        watched.publish(&node, &refuted(0));
        watched.watch(&node, WatchFilter::all(), queue(8).0);
        let (late, got) = queue(8);
        watched.subscribe(late);
        assert!(got.lock().unwrap().is_empty());

        let mut stopped: Fanout<Queue<Event>, Queue<Watched>> = Fanout::new(3);
        stopped.publish(&node, &refuted(0));
        stopped.close();
        let (late, got) = queue(8);
        stopped.subscribe(late);
        assert_eq!(*got.lock().unwrap(), [Ok(refuted(0))]);
        // The outlet was not kept: the reader's stream ends after that.
        assert!(stopped.subscribers.is_empty());
    }
}
