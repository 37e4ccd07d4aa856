//! Counting in process. The integrators' surface tells the recorder about every answer
//! it gives a key and every lead it stores; the recorder adds them to the key's bucket
//! of the current minute (one short-held lock, no I/O) and keeps the request-log rows
//! waiting, at most [`LOG_ROWS_PER_KEY_PER_SECOND`] per key per second; what does not
//! fit is counted as `dropped`. [`crate::flush`] takes it all in one swap.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use crate::{Counts, KeyRef, Outcome};

/// Request-log rows one instance writes per key per second; the rest are counted as
/// `dropped` (a flood of refusals must not become a flood of writes).
pub const LOG_ROWS_PER_KEY_PER_SECOND: u32 = 10;

/// Request-log rows that may wait for a flush on one instance (while the store does
/// not answer, say); past it rows are counted as `dropped`.
pub const MAX_WAITING_LOG_ROWS: usize = 10_000;

/// Longest user agent kept, in characters.
pub const USER_AGENT_CHARS: usize = 200;

/// One answer for the request log, as the surface saw it. Never a body or a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// When it was answered.
    pub at: DateTime<Utc>,
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// The error's code.
    pub code: Option<String>,
    /// The first detail's field.
    pub field: Option<String>,
    /// The first detail's message, or the error's.
    pub message: Option<String>,
    /// `X-Request-Id` of the request.
    pub request_id: Option<String>,
    /// The client's address, truncated ([`crate::address::truncated`]).
    pub client: Option<String>,
    /// The `Origin` header.
    pub origin: Option<String>,
    /// The `User-Agent` header, cut to [`USER_AGENT_CHARS`].
    pub user_agent: Option<String>,
}

/// Everything counted since the last flush.
#[derive(Debug, Default)]
pub struct Batch {
    /// Counts per key per minute (the minute's first instant).
    pub counts: HashMap<(KeyRef, DateTime<Utc>), Counts>,
    /// Request-log rows, in the order they were answered.
    pub log: Vec<(KeyRef, LogEntry)>,
}

impl Batch {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.log.is_empty()
    }
}

#[derive(Default)]
struct Waiting {
    batch: Batch,
    /// Log rows taken per key in the current second: (second, rows).
    quota: HashMap<uuid::Uuid, (i64, u32)>,
}

impl Waiting {
    /// Keeps a log row for the next flush, or counts it as `dropped` while
    /// [`MAX_WAITING_LOG_ROWS`] wait.
    fn keep(&mut self, key: KeyRef, entry: LogEntry) {
        if self.batch.log.len() >= MAX_WAITING_LOG_ROWS {
            self.batch
                .counts
                .entry((key, minute_of(entry.at)))
                .or_default()
                .dropped += 1;
        } else {
            self.batch.log.push((key, entry));
        }
    }
}

/// The counts and request-log rows of one instance, waiting for their flush. Shared
/// by every request (cheap to call; nothing here waits on I/O).
#[derive(Default)]
pub struct Recorder {
    waiting: Mutex<Waiting>,
}

/// The minute `at` falls in.
pub fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at)
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Waiting) -> T) -> T {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut waiting)
    }

    /// Counts an answer with `status` that `key` got at `at`. `loggable`: the answer
    /// belongs in the request log (not 2xx, not a visitor's 429). Returns whether a row
    /// may be written for it (then hand it to [`Recorder::log`]); a loggable answer
    /// past the key's rate this second is counted as `dropped` instead.
    pub fn answered(&self, key: KeyRef, at: DateTime<Utc>, status: u16, loggable: bool) -> bool {
        let second = at.timestamp();
        self.with(|w| {
            let mut take = false;
            if loggable {
                let used = w.quota.entry(key.key_id).or_insert((second, 0));
                if used.0 != second {
                    *used = (second, 0);
                }
                take = used.1 < LOG_ROWS_PER_KEY_PER_SECOND;
                used.1 += u32::from(take);
            }
            let counts = w.batch.counts.entry((key, minute_of(at))).or_default();
            counts.count(Outcome::of_status(status));
            if loggable && !take {
                counts.dropped += 1;
            }
            take
        })
    }

    /// Keeps a request-log row (one [`Recorder::answered`] allowed) for the next flush;
    /// while [`MAX_WAITING_LOG_ROWS`] wait, it is counted as `dropped` instead.
    pub fn log(&self, key: KeyRef, mut entry: LogEntry) {
        if let Some(agent) = &mut entry.user_agent
            && let Some((cut, _)) = agent.char_indices().nth(USER_AGENT_CHARS)
        {
            agent.truncate(cut);
        }
        self.with(|w| w.keep(key, entry));
    }

    /// Counts leads `key` stored at `at`: `created` in all, `spam` of them as spam.
    pub fn leads(&self, key: KeyRef, at: DateTime<Utc>, created: u64, spam: u64) {
        if created == 0 {
            return;
        }
        self.with(|w| {
            let counts = w.batch.counts.entry((key, minute_of(at))).or_default();
            counts.leads_created += created;
            counts.spam += spam;
        });
    }

    /// Everything waiting, leaving the recorder empty (the quotas of the current
    /// second stay).
    pub fn take(&self) -> Batch {
        self.with(|w| std::mem::take(&mut w.batch))
    }

    /// Puts back a batch that could not be written, in front of what was counted
    /// since; log rows past [`MAX_WAITING_LOG_ROWS`] become `dropped`.
    pub fn restore(&self, batch: Batch) {
        self.with(|w| {
            for (bucket, counts) in batch.counts {
                w.batch.counts.entry(bucket).or_default().add(&counts);
            }
            let newer = std::mem::take(&mut w.batch.log);
            for (key, entry) in batch.log.into_iter().chain(newer) {
                w.keep(key, entry);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyRef {
        KeyRef {
            key_id: uuid::Uuid::now_v7(),
            user_id: uuid::Uuid::now_v7(),
        }
    }

    fn at(secs: i64, millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + secs * 1000 + millis).unwrap()
    }

    fn entry(at: DateTime<Utc>) -> LogEntry {
        LogEntry {
            at,
            method: "POST".into(),
            path: "/api/external/leads/create".into(),
            status: 422,
            code: Some("validation_failed".into()),
            field: Some("lead.email".into()),
            message: Some("must be a valid email address".into()),
            request_id: None,
            client: None,
            origin: None,
            user_agent: Some("x".repeat(300)),
        }
    }

    #[test]
    fn answers_and_leads_land_in_their_minute() {
        let recorder = Recorder::new();
        let k = key();
        assert!(!recorder.answered(k, at(0, 0), 201, false));
        recorder.leads(k, at(0, 1), 1, 0);
        assert!(recorder.answered(k, at(1, 0), 422, true));
        assert!(recorder.answered(k, at(2, 0), 429, true));
        recorder.leads(k, at(3, 0), 100, 2);
        // 1 800 000 000 is on a minute: 60 s later is the next one.
        assert!(!recorder.answered(k, at(59, 999), 201, false));
        assert!(recorder.answered(k, at(60, 0), 503, true));
        let batch = recorder.take();
        let first = batch.counts[&(k, minute_of(at(0, 0)))];
        assert_eq!(
            first,
            Counts {
                success: 2,
                client_error: 1,
                rate_limited: 1,
                leads_created: 101,
                spam: 2,
                ..Counts::default()
            }
        );
        assert_eq!(batch.counts[&(k, minute_of(at(60, 0)))].server_error, 1);
        assert_eq!(batch.counts.len(), 2);
        assert!(recorder.take().is_empty());
    }

    #[test]
    fn past_ten_rows_a_second_a_key_is_counted_as_dropped() {
        let recorder = Recorder::new();
        let (k, other) = (key(), key());
        let taken = (0..15)
            .filter(|i| recorder.answered(k, at(0, *i), 422, true))
            .count();
        assert_eq!(taken, 10);
        // Another key has its own rate; the next second starts afresh.
        assert!(recorder.answered(other, at(0, 20), 422, true));
        assert!(recorder.answered(k, at(1, 0), 422, true));
        // A visitor's 429 is counted, never logged nor dropped.
        assert!(!recorder.answered(k, at(1, 1), 429, false));
        let counts = recorder.take().counts[&(k, minute_of(at(0, 0)))];
        assert_eq!(
            (counts.client_error, counts.rate_limited, counts.dropped),
            (16, 1, 5)
        );
    }

    #[test]
    fn log_rows_wait_up_to_a_cap_and_keep_a_short_user_agent() {
        let recorder = Recorder::new();
        let k = key();
        for i in 0..MAX_WAITING_LOG_ROWS + 3 {
            recorder.log(k, entry(at(0, i as i64 % 1000)));
        }
        let batch = recorder.take();
        assert_eq!(batch.log.len(), MAX_WAITING_LOG_ROWS);
        assert_eq!(
            batch.log[0].1.user_agent.as_ref().unwrap().chars().count(),
            USER_AGENT_CHARS
        );
        let dropped: u64 = batch.counts.values().map(|c| c.dropped).sum();
        assert_eq!(dropped, 3);
    }

    #[test]
    fn a_restored_batch_adds_to_what_came_since() {
        let recorder = Recorder::new();
        let k = key();
        recorder.answered(k, at(0, 0), 201, false);
        recorder.log(k, entry(at(0, 1)));
        let failed = recorder.take();
        recorder.answered(k, at(0, 2), 201, false);
        recorder.log(k, entry(at(0, 3)));
        recorder.restore(failed);
        let batch = recorder.take();
        assert_eq!(batch.counts[&(k, minute_of(at(0, 0)))].success, 2);
        let order: Vec<_> = batch.log.iter().map(|(_, e)| e.at).collect();
        assert_eq!(order, vec![at(0, 1), at(0, 3)]);
    }
}
