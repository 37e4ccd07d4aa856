//! What each key did: its answers by outcome and the leads it stored, per key per
//! minute, and the request log of its answers that were not 2xx. Nothing here knows
//! HTTP: the integrators' surface tells the [`Recorder`] what it answered.
//!
//! - [`recorder`]: counting in process (a few map updates per request, no I/O), the
//!   request log's per-key rate, and what is waiting to be written.
//! - [`flush`]: writing what was counted in one transaction every few seconds (counts
//!   add up on conflict, so every instance flushes into the same rows); a failed
//!   flush keeps everything for the next.
//! - [`query`]: reading buckets (minute, hour, day) and pages of the request log, for a
//!   key or a whole account; the rules of their parameters.
//! - [`retention`]: minute buckets rolled up into hours after 48 h, buckets kept 90
//!   days, the request log 7 days and 1 000 rows per key.
//! - [`address`]: client addresses as the log keeps them (IPv4 /24, IPv6 /48).

pub mod address;
pub mod flush;
pub mod query;
pub mod recorder;
pub mod retention;

use serde::Serialize;
use uuid::Uuid;

pub use flush::Flusher;
pub use query::{Interval, UsageError};
pub use recorder::{LogEntry, Recorder};

/// The key a count belongs to, with its account (every row carries both, so every
/// read can be scoped to the account in the query itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyRef {
    /// The key.
    pub key_id: Uuid,
    /// The key's owner.
    pub user_id: Uuid,
}

/// What an answer counts as, by its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Success,
    /// 4xx but 429.
    ClientError,
    /// 429, whichever limit refused it.
    RateLimited,
    /// 5xx (and anything that is not 2xx or 4xx).
    ServerError,
}

impl Outcome {
    /// The outcome of an answer with `status`.
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=299 => Self::Success,
            429 => Self::RateLimited,
            400..=499 => Self::ClientError,
            _ => Self::ServerError,
        }
    }
}

/// Counts of one bucket: answers by outcome, leads stored, request-log rows dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Answers 2xx.
    pub success: u64,
    /// Answers 4xx but 429.
    pub client_error: u64,
    /// Answers 429, visitor-limited ones included.
    pub rate_limited: u64,
    /// Answers 5xx.
    pub server_error: u64,
    /// Leads stored (spam included; a batch of 100 counts 100).
    pub leads_created: u64,
    /// Leads stored as spam.
    pub spam: u64,
    /// Request-log rows not written (past the per-key rate, or while too many waited).
    pub dropped: u64,
}

impl Counts {
    /// Adds `other` into these counts.
    pub fn add(&mut self, other: &Counts) {
        self.success += other.success;
        self.client_error += other.client_error;
        self.rate_limited += other.rate_limited;
        self.server_error += other.server_error;
        self.leads_created += other.leads_created;
        self.spam += other.spam;
        self.dropped += other.dropped;
    }

    /// One more answer of `outcome`.
    pub fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Success => self.success += 1,
            Outcome::ClientError => self.client_error += 1,
            Outcome::RateLimited => self.rate_limited += 1,
            Outcome::ServerError => self.server_error += 1,
        }
    }

    /// Every answer counted, whatever its outcome.
    pub fn requests(&self) -> u64 {
        self.success + self.client_error + self.rate_limited + self.server_error
    }

    /// Answers that were not 2xx.
    pub fn errors(&self) -> u64 {
        self.client_error + self.rate_limited + self.server_error
    }

    /// Nothing counted at all (such buckets are never answered).
    pub fn is_empty(&self) -> bool {
        *self == Counts::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_fall_into_their_outcomes() {
        assert_eq!(Outcome::of_status(201), Outcome::Success);
        assert_eq!(Outcome::of_status(204), Outcome::Success);
        assert_eq!(Outcome::of_status(400), Outcome::ClientError);
        assert_eq!(Outcome::of_status(404), Outcome::ClientError);
        assert_eq!(Outcome::of_status(429), Outcome::RateLimited);
        assert_eq!(Outcome::of_status(500), Outcome::ServerError);
        assert_eq!(Outcome::of_status(503), Outcome::ServerError);
    }

    #[test]
    fn counts_add_up_field_by_field() {
        let mut a = Counts {
            success: 1,
            leads_created: 3,
            ..Counts::default()
        };
        a.count(Outcome::RateLimited);
        a.add(&Counts {
            success: 2,
            spam: 1,
            dropped: 4,
            ..Counts::default()
        });
        assert_eq!(
            a,
            Counts {
                success: 3,
                rate_limited: 1,
                leads_created: 3,
                spam: 1,
                dropped: 4,
                ..Counts::default()
            }
        );
        assert_eq!((a.requests(), a.errors()), (4, 1));
        assert!(!a.is_empty());
        assert!(Counts::default().is_empty());
    }
}
