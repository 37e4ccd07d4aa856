//! Reading usage: buckets of a key or an account over a window, and pages of a key's
//! request log, with the rules their parameters follow. Every read names the account
//! in its query: another account's key has no usage, it is simply not found.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use ciq_entity::{key_usage, request_log};
use ciq_errors::{Coded, ErrorCode};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::flush::MINUTE;
use crate::{Counts, KeyRef};

/// Most buckets one answer holds.
pub const MAX_BUCKETS: i64 = 1_440;

/// How long minute buckets are kept before they are rolled up into hours.
pub const MINUTES_KEPT: TimeDelta = TimeDelta::hours(48);

/// What a window is asked for when `from` is not given: the last 24 hours.
pub const DEFAULT_SPAN: TimeDelta = TimeDelta::hours(24);

/// Rows of the request log per page when `limit` is not given, and at most.
pub const DEFAULT_LOG_PAGE: u64 = 50;
/// See [`DEFAULT_LOG_PAGE`].
pub const MAX_LOG_PAGE: u64 = 100;

/// How long the buckets of an answer are (all UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// A minute (kept 48 h).
    Minute,
    /// An hour.
    Hour,
    /// A day, from midnight UTC.
    Day,
}

impl Interval {
    /// `minute`, `hour` or `day`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "minute" => Some(Self::Minute),
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            _ => None,
        }
    }

    /// The name [`Interval::parse`] reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    /// The length of one bucket.
    pub fn length(self) -> TimeDelta {
        match self {
            Self::Minute => TimeDelta::minutes(1),
            Self::Hour => TimeDelta::hours(1),
            Self::Day => TimeDelta::days(1),
        }
    }

    /// The start of the bucket `at` falls in.
    pub fn floor(self, at: DateTime<Utc>) -> DateTime<Utc> {
        at.duration_trunc(self.length()).unwrap_or(at)
    }
}

/// Why a usage or request-log read was not answered.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A parameter broke its rule (422 `validation_failed` naming it).
    #[error("{field} {rule}")]
    Param {
        /// The parameter: `interval`, `from`, `to`, `limit`, `cursor` or `status`.
        field: &'static str,
        /// The rule it broke.
        rule: String,
    },
    /// The store did not answer (503) or refused the read (500).
    #[error("usage could not be read: {0}")]
    Store(#[from] sea_orm::DbErr),
}

impl UsageError {
    fn new(field: &'static str, rule: impl Into<String>) -> Self {
        Self::Param {
            field,
            rule: rule.into(),
        }
    }

    /// The parameter and its rule, for a broken parameter.
    pub fn param(&self) -> Option<(&'static str, &str)> {
        match self {
            Self::Param { field, rule } => Some((field, rule)),
            Self::Store(_) => None,
        }
    }
}

impl Coded for UsageError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Param { .. } => ErrorCode::ValidationFailed,
            Self::Store(err) if ciq_store::is_outage(err) => ErrorCode::ServiceUnavailable,
            Self::Store(_) => ErrorCode::InternalError,
        }
    }

    fn field(&self) -> Option<(&'static str, String)> {
        self.param().map(|(field, rule)| (field, rule.to_owned()))
    }
}

/// The buckets an answer covers: `[from, to)` in buckets of `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Bucket length.
    pub interval: Interval,
    /// First instant counted (inclusive).
    pub from: DateTime<Utc>,
    /// First instant not counted (exclusive).
    pub to: DateTime<Utc>,
}

impl Window {
    /// The window asked for, checked at `now`: `to` defaults to `now`, `from` to 24 h
    /// before `to`; `from` must come before `to`, span at most [`MAX_BUCKETS`] buckets,
    /// and for minutes lie within the [`MINUTES_KEPT`] that minute buckets are kept.
    /// (A window that starts mid-bucket touches one bucket more than its span.)
    pub fn new(
        interval: Interval,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self, UsageError> {
        let to = to.unwrap_or(now);
        let from = from.unwrap_or(to - DEFAULT_SPAN);
        if from >= to {
            return Err(UsageError::new("from", "must be before to"));
        }
        // The span decides (a window that starts mid-bucket touches one more).
        let (span, step) = ((to - from).num_seconds(), interval.length().num_seconds());
        let buckets = (span + step - 1) / step;
        if buckets > MAX_BUCKETS {
            return Err(UsageError::new(
                "from",
                format!(
                    "must be at most {MAX_BUCKETS} {}s before to (asked: {buckets}); ask for a \
                     longer interval or a shorter window",
                    interval.as_str()
                ),
            ));
        }
        if interval == Interval::Minute && from < now - MINUTES_KEPT {
            return Err(UsageError::new(
                "from",
                format!(
                    "must be within the last {} hours for interval=minute (minute buckets are \
                     then rolled up into hours); ask for interval=hour",
                    MINUTES_KEPT.num_hours()
                ),
            ));
        }
        Ok(Self { interval, from, to })
    }
}

/// Whose usage is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Of {
    /// One key of one account.
    Key(KeyRef),
    /// Every key of one account.
    Account(Uuid),
}

fn usage_rows(of: Of) -> sea_orm::Select<key_usage::Entity> {
    use key_usage::Column as C;
    let rows = key_usage::Entity::find();
    match of {
        Of::Key(key) => rows
            .filter(C::UserId.eq(key.user_id))
            .filter(C::KeyId.eq(key.key_id)),
        Of::Account(user_id) => rows.filter(C::UserId.eq(user_id)),
    }
}

/// A stored bucket's counts.
pub(crate) fn counts_of(row: &key_usage::Model) -> Counts {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Counts {
        success: n(row.success),
        client_error: n(row.client_error),
        rate_limited: n(row.rate_limited),
        server_error: n(row.server_error),
        leads_created: n(row.leads_created),
        spam: n(row.spam),
        dropped: n(row.dropped),
    }
}

/// The stored rows of `of` whose start lies in `[from, to)`; minutes only when asked.
async fn rows_in<C: ConnectionTrait>(
    db: &C,
    of: Of,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    minutes_only: bool,
) -> Result<Vec<key_usage::Model>, sea_orm::DbErr> {
    use key_usage::Column as C;
    let mut rows = usage_rows(of)
        .filter(C::StartsAt.gte(from))
        .filter(C::StartsAt.lt(to));
    if minutes_only {
        rows = rows.filter(C::Granularity.eq(MINUTE));
    }
    rows.all(db).await
}

/// The non-empty buckets of `window` for `of`, oldest first. A bucket holds the stored
/// minutes (or hours, once rolled up) that start within the window and fall in it.
pub async fn buckets<C: ConnectionTrait>(
    db: &C,
    of: Of,
    window: &Window,
) -> Result<Vec<(DateTime<Utc>, Counts)>, sea_orm::DbErr> {
    let rows = rows_in(
        db,
        of,
        window.from,
        window.to,
        window.interval == Interval::Minute,
    )
    .await?;
    let mut buckets: BTreeMap<DateTime<Utc>, Counts> = BTreeMap::new();
    for row in &rows {
        buckets
            .entry(window.interval.floor(row.starts_at))
            .or_default()
            .add(&counts_of(row));
    }
    Ok(buckets.into_iter().filter(|(_, c)| !c.is_empty()).collect())
}

/// Each key's totals over `[from, to)` in `user_id`'s account (keys with nothing
/// counted are absent).
pub async fn totals_by_key<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<HashMap<Uuid, Counts>, sea_orm::DbErr> {
    let mut totals: HashMap<Uuid, Counts> = HashMap::new();
    for row in rows_in(db, Of::Account(user_id), from, to, false).await? {
        totals.entry(row.key_id).or_default().add(&counts_of(&row));
    }
    Ok(totals)
}

/// Which answers a request-log page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// One status, e.g. `429`.
    Exact(u16),
    /// A class: `4xx` or `5xx`.
    Class(u16),
}

impl StatusFilter {
    /// `400`..`599`, `4xx` or `5xx`.
    pub fn parse(text: &str) -> Result<Self, UsageError> {
        let text = text.trim();
        match text {
            "4xx" | "4XX" => return Ok(Self::Class(4)),
            "5xx" | "5XX" => return Ok(Self::Class(5)),
            _ => {}
        }
        match text.parse::<u16>() {
            Ok(status @ 400..=599) => Ok(Self::Exact(status)),
            _ => Err(UsageError::new(
                "status",
                "must be a status from 400 to 599, 4xx or 5xx (the log holds answers that were not 2xx)",
            )),
        }
    }
}

/// A page of a key's request log, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// The rows.
    pub rows: Vec<request_log::Model>,
    /// Where the next page starts (`None`: this was the last).
    pub next_cursor: Option<Uuid>,
}

/// `limit` as a page size: 1 to [`MAX_LOG_PAGE`], [`DEFAULT_LOG_PAGE`] when absent.
pub fn page_size(limit: Option<&str>) -> Result<u64, UsageError> {
    let Some(limit) = limit else {
        return Ok(DEFAULT_LOG_PAGE);
    };
    match limit.trim().parse::<u64>() {
        Ok(n) if (1..=MAX_LOG_PAGE).contains(&n) => Ok(n),
        _ => Err(UsageError::new(
            "limit",
            format!("must be a whole number from 1 to {MAX_LOG_PAGE}"),
        )),
    }
}

/// A cursor as the previous page gave it.
pub fn cursor(text: &str) -> Result<Uuid, UsageError> {
    text.trim()
        .parse()
        .map_err(|_| UsageError::new("cursor", "must be a next_cursor this API returned"))
}

/// A page of `key`'s request log, newest first: `limit` rows older than `after` (a
/// cursor), of `status` if given.
pub async fn requests<C: ConnectionTrait>(
    db: &C,
    key: KeyRef,
    limit: u64,
    after: Option<Uuid>,
    status: Option<StatusFilter>,
) -> Result<LogPage, sea_orm::DbErr> {
    use request_log::Column as C;
    let mut rows = request_log::Entity::find()
        .filter(C::UserId.eq(key.user_id))
        .filter(C::KeyId.eq(key.key_id));
    if let Some(after) = after {
        rows = rows.filter(C::Id.lt(after));
    }
    rows = match status {
        Some(StatusFilter::Exact(status)) => rows.filter(C::Status.eq(i32::from(status))),
        Some(StatusFilter::Class(class)) => {
            let low = i32::from(class) * 100;
            rows.filter(C::Status.gte(low))
                .filter(C::Status.lt(low + 100))
        }
        None => rows,
    };
    let mut rows = rows.order_by_desc(C::Id).limit(limit + 1).all(db).await?;
    let next_cursor = if rows.len() as u64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|row| row.id)
    } else {
        None
    };
    Ok(LogPage { rows, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn the_default_window_is_the_last_day() {
        let now = t("2026-12-05T10:30:00Z");
        let window = Window::new(Interval::Minute, None, None, now).unwrap();
        assert_eq!((window.from, window.to), (t("2026-12-04T10:30:00Z"), now));
    }

    #[test]
    fn windows_refuse_what_they_cannot_answer_naming_from() {
        let now = t("2026-12-05T10:30:00Z");
        let err = Window::new(
            Interval::Hour,
            Some(t("2026-12-05T10:00:00Z")),
            Some(t("2026-12-05T09:00:00Z")),
            now,
        )
        .unwrap_err();
        assert_eq!(err.param(), Some(("from", "must be before to")));
        // 1 441 minutes (within the 48 h) is one too many.
        let err = Window::new(
            Interval::Minute,
            Some(t("2026-12-04T10:29:00Z")),
            Some(now),
            now,
        )
        .unwrap_err();
        let (field, rule) = err.param().unwrap();
        assert_eq!(field, "from");
        assert!(rule.contains("at most 1440 minutes"), "{rule}");
        // Minutes older than 48 h are hours now.
        let err = Window::new(
            Interval::Minute,
            Some(t("2026-12-03T10:00:00Z")),
            Some(t("2026-12-03T11:00:00Z")),
            now,
        )
        .unwrap_err();
        assert!(err.param().unwrap().1.contains("interval=hour"), "{err}");
        // 60 days of hours is 1 440 buckets; 90 days of days is fine.
        assert!(Window::new(Interval::Hour, Some(now - TimeDelta::days(60)), None, now).is_ok());
        assert!(Window::new(Interval::Hour, Some(now - TimeDelta::days(61)), None, now).is_err());
        assert!(Window::new(Interval::Day, Some(now - TimeDelta::days(90)), None, now).is_ok());
    }

    #[test]
    fn intervals_floor_to_utc_boundaries() {
        let at = t("2026-12-05T10:31:59.500Z");
        assert_eq!(Interval::Minute.floor(at), t("2026-12-05T10:31:00Z"));
        assert_eq!(Interval::Hour.floor(at), t("2026-12-05T10:00:00Z"));
        assert_eq!(Interval::Day.floor(at), t("2026-12-05T00:00:00Z"));
        assert_eq!(Interval::parse("week"), None);
        assert_eq!(Interval::parse("day"), Some(Interval::Day));
    }

    #[test]
    fn status_filters_take_a_status_or_a_class() {
        let field = |err: UsageError| err.param().unwrap().0;
        assert_eq!(
            StatusFilter::parse("429").unwrap(),
            StatusFilter::Exact(429)
        );
        assert_eq!(StatusFilter::parse("5xx").unwrap(), StatusFilter::Class(5));
        assert_eq!(field(StatusFilter::parse("200").unwrap_err()), "status");
        assert_eq!(field(StatusFilter::parse("abc").unwrap_err()), "status");
        assert_eq!(page_size(None).unwrap(), 50);
        assert_eq!(page_size(Some("100")).unwrap(), 100);
        assert_eq!(field(page_size(Some("0")).unwrap_err()), "limit");
        assert_eq!(field(cursor("nope").unwrap_err()), "cursor");
    }
}
