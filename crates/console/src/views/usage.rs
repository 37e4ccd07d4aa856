//! A key's page: what it is, what it did (a chart of its answers by outcome over 24
//! hours, 7 days or 30 days, with totals) and its request log.

use chrono::{DateTime, TimeDelta, Utc};
use maud::{Markup, html};

use ciq_admin::keys::KeySummary;
use ciq_entity::{request_log, user};
use ciq_usage::{Counts, Interval};

use super::chart::{self, Column, Series};
use super::{Section, grouped, layout, signed_in_header, when};

/// The spans a key page shows its usage over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The last 24 hours, by the hour.
    Day,
    /// The last 7 days, by the hour.
    Week,
    /// The last 30 days, by the day.
    Month,
}

impl Range {
    /// Every range, as the page offers them.
    pub const ALL: [Range; 3] = [Range::Day, Range::Week, Range::Month];

    /// `24h`, `7d` or `30d` (the `range` parameter); anything else is not a range.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.param() == text)
    }

    /// The parameter naming it.
    pub fn param(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }

    /// What the page calls it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Day => "24 hours",
            Self::Week => "7 days",
            Self::Month => "30 days",
        }
    }

    /// Its bucket length.
    pub fn interval(self) -> Interval {
        match self {
            Self::Day | Self::Week => Interval::Hour,
            Self::Month => Interval::Day,
        }
    }

    /// Its buckets up to `now`: whole buckets, the current one last.
    pub fn starts(self, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let interval = self.interval();
        let count = match self {
            Self::Day => 24,
            Self::Week => 7 * 24,
            Self::Month => 30,
        };
        let last = interval.floor(now);
        (0..count)
            .rev()
            .map(|back| last - interval.length() * back)
            .collect()
    }

    /// How a bucket start is labelled (UTC).
    pub fn bucket_label(self, start: DateTime<Utc>) -> String {
        match self.interval() {
            Interval::Day => start.format("%b %-d").to_string(),
            _ => start.format("%b %-d %H:%M").to_string(),
        }
    }
}

/// The outcomes a key's chart stacks, bottom first.
pub const OUTCOMES: [Series; 4] = [
    Series {
        name: "Succeeded",
        class: "bar-ok",
    },
    Series {
        name: "Refused (4xx)",
        class: "bar-client",
    },
    Series {
        name: "Rate limited (429)",
        class: "bar-limited",
    },
    Series {
        name: "Failed (5xx)",
        class: "bar-server",
    },
];

/// A bucket's bars in [`OUTCOMES`]' order.
pub fn outcome_values(counts: &Counts) -> Vec<u64> {
    vec![
        counts.success,
        counts.client_error,
        counts.rate_limited,
        counts.server_error,
    ]
}

/// The status filters the request log offers: (parameter, label).
pub const LOG_FILTERS: [(&str, &str); 4] = [
    ("", "All"),
    ("4xx", "Refused (4xx)"),
    ("429", "Rate limited (429)"),
    ("5xx", "Failed (5xx)"),
];

/// Everything a key page shows.
pub struct KeyPage<'a> {
    /// The signed-in owner.
    pub user: &'a user::Model,
    /// Their session's CSRF token (the header's sign-out form).
    pub csrf: &'a str,
    /// The key.
    pub key: &'a KeySummary,
    /// Its limit when it has none of its own.
    pub default_limit: u32,
    /// The span shown.
    pub range: Range,
    /// Every bucket of the span, empty ones included, oldest first.
    pub buckets: Vec<(DateTime<Utc>, Counts)>,
    /// One page of the request log, newest first.
    pub log: &'a [request_log::Model],
    /// The log's status filter (a [`LOG_FILTERS`] parameter).
    pub status: &'a str,
    /// The next page's cursor.
    pub next_cursor: Option<uuid::Uuid>,
    /// When the page was drawn.
    pub now: DateTime<Utc>,
    /// The visitor limit of a browser key that has none of its own.
    pub default_visitor_limit: u32,
    /// What the last settings form did.
    pub flash: &'a super::Flash,
    /// A refused settings form as it was sent (else the key's own settings are shown).
    pub draft: Option<&'a SettingsDraft>,
}

/// The settings form's fields as text (a refused form as sent, never the challenge's
/// secret).
#[derive(Debug, Clone, Default)]
pub struct SettingsDraft {
    /// The name.
    pub name: String,
    /// Requests a minute (empty: the default).
    pub rate_limit: String,
    /// Allowed origins, one per line.
    pub allowed_origins: String,
    /// Submissions per visitor a minute (empty: the default).
    pub visitor_rate_limit: String,
    /// The challenge provider (empty: none).
    pub challenge: String,
}

impl SettingsDraft {
    /// The key's settings as stored.
    fn of(key: &KeySummary) -> Self {
        Self {
            name: key.name.clone(),
            rate_limit: key
                .rate_limit_per_minute
                .map(|l| l.to_string())
                .unwrap_or_default(),
            allowed_origins: key.allowed_origins.iter().collect::<Vec<_>>().join("\n"),
            visitor_rate_limit: key
                .visitor_rate_limit_per_minute
                .map(|l| l.to_string())
                .unwrap_or_default(),
            challenge: key.challenge.clone().unwrap_or_default(),
        }
    }
}

/// The key's settings form (not for a revoked key): a browser key's fields only when
/// the key may have origins (its only scope is `leads:create`).
fn settings_card(page: &KeyPage<'_>, path: &str) -> Markup {
    let key = page.key;
    let draft = page
        .draft
        .cloned()
        .unwrap_or_else(|| SettingsDraft::of(key));
    let browser_capable = key.scopes == ciq_admin::Scopes::of(&[ciq_admin::Scope::LeadsCreate]);
    html! {
        section.card aria-labelledby="settings-title" {
            h2 #settings-title { "Settings" }
            p.muted { "The key itself, what it may do and when it expires stay: roll or revoke it from the keys page for those." }
            form.stack method="post" action=(format!("{path}/settings")) {
                input type="hidden" name="csrf" value=(page.csrf);
                div.row {
                    div {
                        label for="key-name" { "Name" }
                        input #key-name type="text" name="name" maxlength=(ciq_admin::keys::MAX_KEY_NAME_LEN) value=(draft.name) required;
                    }
                    div {
                        label for="key-limit" { "Requests a minute " span.muted { "(empty: " (page.default_limit) ")" } }
                        input #key-limit type="number" name="rate_limit" min="1" inputmode="numeric" placeholder=(page.default_limit) value=(draft.rate_limit);
                    }
                }
                @if browser_capable {
                    div {
                        label for="key-origins" { "Allowed origins " span.muted { "(empty: a server key)" } }
                        textarea #key-origins name="allowed_origins" rows="2" placeholder="https://www.example.com" aria-describedby="key-origins-help" { (draft.allowed_origins) }
                        p.muted #key-origins-help { "One per line. Pages on these sites may send leads with this key from the visitor's browser." }
                    }
                    div.row {
                        div {
                            label for="key-visitor" { "Submissions per visitor a minute " span.muted { "(empty: " (page.default_visitor_limit) ")" } }
                            input #key-visitor type="number" name="visitor_rate_limit" min="1" inputmode="numeric" placeholder=(page.default_visitor_limit) value=(draft.visitor_rate_limit);
                        }
                        div {
                            label for="key-challenge" { "Challenge" }
                            select #key-challenge name="challenge" {
                                option value="" { "None" }
                                @for provider in ciq_admin::ChallengeProvider::ALL {
                                    option value=(provider.as_str()) selected[provider.as_str() == draft.challenge] { (provider.title()) }
                                }
                            }
                        }
                        div {
                            label for="key-challenge-secret" { "Provider's secret key" }
                            input #key-challenge-secret type="password" name="challenge_secret" autocomplete="off" maxlength="200" aria-describedby="key-secret-help";
                        }
                    }
                    p.muted #key-secret-help { "Empty keeps the stored secret of the same provider; a new provider needs its secret. It is stored encrypted and never shown." }
                }
                div.actions { button type="submit" { "Save settings" } }
            }
        }
    }
}

fn key_path(key: &KeySummary) -> String {
    format!("{}/{}", ciq_http::routes::SETTINGS_API_KEYS, key.id)
}

/// The key page.
pub fn key_page(page: &KeyPage<'_>) -> Markup {
    let key = page.key;
    let path = key_path(key);
    let mut totals = Counts::default();
    for (_, counts) in &page.buckets {
        totals.add(counts);
    }
    let columns: Vec<Column> = page
        .buckets
        .iter()
        .map(|(start, counts)| Column {
            label: page.range.bucket_label(*start),
            values: outcome_values(counts),
        })
        .collect();
    let title = format!("Requests by outcome, last {}", page.range.label());
    let limit = key
        .rate_limit_per_minute
        .map_or(i64::from(page.default_limit), i64::from);
    html! {
        (layout(&format!("Key {}", key.name), Section::ApiKeys, signed_in_header(page.user, page.csrf), html! {
            p { a href=(ciq_http::routes::SETTINGS_API_KEYS) { "← API keys" } }
            div.headline {
                h1 { (key.name) " " span class=(format!("badge {}", key.status)) { (key.status) } }
                a.button.secondary href=(format!("{path}/usage.csv?range={}", page.range.param())) download { "Export usage (CSV)" }
            }
            @if let Some(notice) = &page.flash.notice { div.notice role="status" { (notice) } }
            @if let Some(error) = &page.flash.error { div.error role="alert" { (error) } }
            p.lead {
                code { (key.display_prefix) "…" } " · " (limit) " requests a minute · may "
                (key.scopes.names().join(", "))
                @if !key.allowed_origins.is_empty() { " · from " (key.allowed_origins.to_stored()) }
                " · created " (when(Some(key.created_at))) " · last used " (when(key.last_used_at))
                @if let Some(expires) = key.expires_at { " · expires " (when(Some(expires))) }
            }
            section.card aria-labelledby="usage-title" {
                div.headline {
                    h2 #usage-title { "Usage" }
                    nav.ranges aria-label="Span" {
                        @for range in Range::ALL {
                            a href=(format!("{path}?range={}", range.param()))
                                aria-current=[(range == page.range).then_some("true")] { (range.label()) }
                        }
                    }
                }
                div.tiles {
                    div.tile { b { (grouped(totals.requests())) } span { "requests" } }
                    div.tile { b { (grouped(totals.errors())) } span { "not 2xx" } }
                    div.tile { b { (grouped(totals.rate_limited)) } span { "rate limited" } }
                    div.tile { b { (grouped(totals.leads_created)) } span { "leads stored" } }
                    @if totals.spam > 0 { div.tile { b { (grouped(totals.spam)) } span { "of them spam" } } }
                }
                (chart::stacked("usage", &title, &OUTCOMES, &columns,
                    &format!("No requests with this key in the last {}.", page.range.label())))
                p.muted { "Times in UTC. Counts reach this page within a few seconds of each answer." }
            }
            section.card aria-labelledby="log-title" {
                div.headline {
                    h2 #log-title { "Request log" }
                    a.button.secondary href=(format!("{path}/requests.csv?status={}", page.status)) download { "Export log (CSV)" }
                }
                p.muted { "Answers that were not 2xx, newest first, kept 7 days (at most 1 000). Never a body or a key." }
                nav.ranges aria-label="Show" {
                    @for (param, label) in LOG_FILTERS {
                        a href=(format!("{path}?range={}&status={param}#log-title", page.range.param()))
                            aria-current=[(param == page.status).then_some("true")] { (label) }
                    }
                }
                @if page.log.is_empty() {
                    p.muted { "Nothing here: every answer was a success, or none was given yet." }
                } @else {
                    div.scroll {
                        table.stacked {
                            thead { tr {
                                th scope="col" { "When (UTC)" } th scope="col" { "Status" } th scope="col" { "What was wrong" }
                                th scope="col" { "Request" } th scope="col" { "From" } th scope="col" { "Request id" }
                            } }
                            tbody {
                                @for row in page.log {
                                    tr {
                                        td data-label="When (UTC)" { (row.at.format("%b %-d %H:%M:%S")) }
                                        td data-label="Status" { span class=(format!("status-{}", row.status / 100)) { (row.status) } " " code { (row.code.as_deref().unwrap_or("")) } }
                                        td data-label="What was wrong" {
                                            @if let Some(field) = &row.field { code { (field) } ": " }
                                            (row.message.as_deref().unwrap_or("—"))
                                        }
                                        td data-label="Request" { code { (row.method) " " (row.path) } }
                                        td data-label="From" {
                                            (row.client.as_deref().unwrap_or("—"))
                                            @if let Some(origin) = &row.origin { br; span.muted { (origin) } }
                                            @if let Some(agent) = &row.user_agent { br; span.muted { (agent) } }
                                        }
                                        td data-label="Request id" { code { (row.request_id.as_deref().unwrap_or("—")) } }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(cursor) = page.next_cursor {
                        nav.pager aria-label="Pages" {
                            a.button.secondary href=(format!("{path}?range={}&status={}&cursor={cursor}#log-title", page.range.param(), page.status)) { "Older" }
                        }
                    }
                }
            }
            @if key.revoked_at.is_none() { (settings_card(page, &path)) }
            p.muted { "Drawn " (when(Some(page.now))) "." }
        }))
    }
}

/// The buckets of `range` up to `now` with what `stored` holds for them (zero where it
/// holds nothing).
pub fn fill(
    range: Range,
    now: DateTime<Utc>,
    stored: &[(DateTime<Utc>, Counts)],
) -> Vec<(DateTime<Utc>, Counts)> {
    range
        .starts(now)
        .into_iter()
        .map(|start| {
            let counts = stored
                .iter()
                .find(|(at, _)| *at == start)
                .map(|(_, c)| *c)
                .unwrap_or_default();
            (start, counts)
        })
        .collect()
}

/// The window `range` covers up to `now`: from its first bucket to the end of the
/// current one.
pub fn window_of(range: Range, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let starts = range.starts(now);
    let interval: TimeDelta = range.interval().length();
    (
        starts[0],
        *starts.last().expect("a range has buckets") + interval,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_end_with_the_current_bucket() {
        let now: DateTime<Utc> = "2026-12-05T10:31:00Z".parse().unwrap();
        let day = Range::Day.starts(now);
        assert_eq!(day.len(), 24);
        assert_eq!(day[23].to_rfc3339(), "2026-12-05T10:00:00+00:00");
        assert_eq!(day[0].to_rfc3339(), "2026-12-04T11:00:00+00:00");
        let month = Range::Month.starts(now);
        assert_eq!(month.len(), 30);
        assert_eq!(Range::Month.bucket_label(month[29]), "Dec 5");
        let (from, to) = window_of(Range::Day, now);
        assert_eq!((to - from).num_hours(), 24);
        assert_eq!(Range::parse("7d"), Some(Range::Week));
        assert_eq!(Range::parse("1y"), None);
    }
}
