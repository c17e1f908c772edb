//! Random choices from the generator a node is given (the protocol draws nothing from
//! anywhere else, so the same seed gives the same choices).

use rand_core::Rng;

/// A uniform integer in `0..n` (0 when `n` is 0), by Lemire's multiply-shift.
pub(crate) fn random_below(rng: &mut impl Rng, n: usize) -> usize {
    ((u64::from(rng.next_u32()) * n as u64) >> 32) as usize
}

/// A uniform float in `[0, 1)`.
pub(crate) fn unit(rng: &mut impl Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Most items a [`Sample`] holds: helpers of a probe, targets of a gossip round, contacts of
/// a rejoin.
pub(crate) const MAX_SAMPLE: usize = 16;

/// A few distinct items drawn at random, held by value, so that a node can act on each
/// while it draws no more.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample<T: Copy> {
    items: [Option<T>; MAX_SAMPLE],
}

impl<T: Copy> Sample<T> {
    /// The first [`MAX_SAMPLE`] of `items`.
    pub(crate) fn of(items: &[T]) -> Self {
        let mut sample = Sample { items: [None; MAX_SAMPLE] };
        for (slot, item) in sample.items.iter_mut().zip(items) {
            *slot = Some(*item);
        }
        sample
    }

    /// The items drawn.
    pub(crate) fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.items.iter().map_while(|item| *item)
    }

    /// The first item drawn.
    pub(crate) fn first(&self) -> Option<T> {
        self.items[0]
    }
}
