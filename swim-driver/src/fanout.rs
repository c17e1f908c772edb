//! Event fan-out: every event to every subscriber, and the events a watch selects to its
//! receiver, without ever waiting for a slow reader.
//!
//! One lag convention for both drivers: a stream holds at most `event_capacity` unread
//! items; further events for it are lost (the newest, not the oldest, so what was read in
//! order stays in order) and counted, and the stream yields `Err(Lagged(n))` before the next
//! event it gets.

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

/// Every subscriber and watch of one node. `E` carries events, `W` watched events.
pub struct Fanout<E, W> {
    subscribers: Vec<Subscriber<E>>,
    watchers: Vec<(Watch, Subscriber<W>)>,
}

impl<E, W> Default for Fanout<E, W> {
    fn default() -> Self {
        Fanout { subscribers: Vec::new(), watchers: Vec::new() }
    }
}

impl<E: Outlet<Event>, W: Outlet<Watched>> Fanout<E, W> {
    /// Adds a subscriber to every event from now on.
    pub fn subscribe(&mut self, outlet: E) {
        self.subscribers.push(Subscriber { outlet, missed: 0 });
    }

    /// Adds a watch starting from `node`'s members now: call it under the same lock as
    /// [`Self::publish`], so it starts exactly where the published events do.
    pub fn watch<R: Rng>(&mut self, node: &Node<R>, filter: WatchFilter, outlet: W) {
        let watch = Watch::of(node, filter);
        self.watchers.push((watch, Subscriber { outlet, missed: 0 }));
    }

    /// Hands `event` to every subscriber, and to every watch that selects it with the
    /// member as `node` has it now; readers that are gone are dropped.
    pub fn publish<R: Rng>(&mut self, node: &Node<R>, event: &Event) {
        self.subscribers.retain_mut(|subscriber| subscriber.deliver(|| event.clone()));
        let member = Watch::member_of(node, event);
        self.watchers.retain_mut(|(watch, subscriber)| {
            if !watch.offer(event, member) {
                return true;
            }
            subscriber.deliver(|| Watched { event: event.clone(), member: member.cloned() })
        });
    }

    /// Drops every outlet, which ends every stream once drained.
    pub fn close(&mut self) {
        self.subscribers.clear();
        self.watchers.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// An outlet holding at most `room` items.
    struct Queue {
        items: Arc<Mutex<Vec<Result<u32, Lagged>>>>,
        room: usize,
    }

    impl Outlet<u32> for Queue {
        fn offer(&self, item: Result<u32, Lagged>) -> Offered {
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
}
