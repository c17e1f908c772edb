//! Who each member sees online, kept from its reports as the simulator keeps it: joined
//! and alive mean online; suspect, offline, left and reaped mean not.

use crate::protocol::{Change, Report};

/// Every member's view of every other, from reports.
#[derive(Clone, Debug)]
pub struct Views {
    n: usize,
    online: Vec<bool>,
    counts: Vec<u32>,
}

impl Views {
    /// `n` members seeing no one.
    pub fn new(n: usize) -> Self {
        Views { n, online: vec![false; n * n], counts: vec![0; n] }
    }

    /// Forgets what member `viewer` saw (its process restarted or crashed).
    pub fn reset(&mut self, viewer: u32) {
        let row = viewer as usize * self.n;
        self.online[row..row + self.n].fill(false);
        self.counts[viewer as usize] = 0;
    }

    /// Applies `viewer`'s report, returning it with `online` filled in.
    pub fn apply(&mut self, viewer: u32, mut report: Report) -> Report {
        report.online = match report.change {
            Change::Joined | Change::Alive => Some(true),
            Change::Suspect | Change::Offline | Change::Left | Change::Reaped => Some(false),
            _ => None,
        };
        if let (Some(online), Some(subject)) = (report.online, report.subject)
            && (subject as usize) < self.n
        {
            let cell = &mut self.online[viewer as usize * self.n + subject as usize];
            if *cell != online {
                *cell = online;
                let count = &mut self.counts[viewer as usize];
                *count = if online { *count + 1 } else { count.saturating_sub(1) };
            }
        }
        report
    }

    /// How many other members `viewer` sees online.
    pub fn online_count(&self, viewer: u32) -> u32 {
        self.counts[viewer as usize]
    }

    /// Whether `viewer` sees `subject` online.
    pub fn sees_online(&self, viewer: u32, subject: u32) -> bool {
        (subject as usize) < self.n && self.online[viewer as usize * self.n + subject as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(change: Change, subject: u32) -> Report {
        Report::new(change, Some(subject), None)
    }

    #[test]
    fn counts_follow_the_last_word_about_each_member() {
        let mut views = Views::new(3);
        assert_eq!(views.apply(0, report(Change::Joined, 1)).online, Some(true));
        views.apply(0, report(Change::Joined, 2));
        views.apply(0, report(Change::Alive, 2));
        assert_eq!(views.online_count(0), 2);
        views.apply(0, report(Change::Suspect, 2));
        views.apply(0, report(Change::Offline, 2));
        assert_eq!(views.online_count(0), 1);
        assert!(views.sees_online(0, 1) && !views.sees_online(0, 2));
        let metadata = views.apply(0, report(Change::Metadata, 1));
        assert_eq!(metadata.online, None);
        views.reset(0);
        assert_eq!(views.online_count(0), 0);
        assert!(!views.sees_online(0, 1));
    }
}
