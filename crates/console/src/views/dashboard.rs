//! Settings → Overview: the account at a glance — leads per day over 30 days, the top
//! sources, what each key did in the last 24 hours, the webhook endpoints' health and
//! the imports under way.

use chrono::{DateTime, NaiveDate, Utc};
use maud::{Markup, html};
use uuid::Uuid;

use ciq_admin::keys::{KeyStatus, KeySummary};
use ciq_entity::{user, webhook_endpoint};
use ciq_imports::store::ImportSummary;
use ciq_usage::Counts;

use super::chart::{self, Column, Series};
use super::{Section, grouped, layout, signed_in_header, when};

/// Days the leads chart covers.
pub const LEAD_DAYS: usize = 30;

/// Everything the overview shows.
pub struct Overview<'a> {
    /// The signed-in owner.
    pub user: &'a user::Model,
    /// Their session's CSRF token (the header's sign-out form).
    pub csrf: &'a str,
    /// Leads per day, every day of the span (zero where there were none), oldest first.
    pub leads_per_day: Vec<(NaiveDate, u64)>,
    /// The most frequent sources over the span, most first.
    pub top_sources: &'a [(String, u64)],
    /// The account's keys.
    pub keys: &'a [KeySummary],
    /// Each key's counts over the last 24 hours.
    pub key_usage: &'a std::collections::HashMap<Uuid, Counts>,
    /// The webhook endpoints.
    pub endpoints: &'a [webhook_endpoint::Model],
    /// The latest imports (those queued or running are shown).
    pub imports: &'a [ImportSummary],
    /// When the page was drawn.
    pub now: DateTime<Utc>,
}

/// The overview page.
pub fn overview(page: &Overview<'_>) -> Markup {
    let total: u64 = page.leads_per_day.iter().map(|(_, n)| n).sum();
    let today = page.leads_per_day.last().map_or(0, |(_, n)| *n);
    let mut day = Counts::default();
    for counts in page.key_usage.values() {
        day.add(counts);
    }
    let columns: Vec<Column> = page
        .leads_per_day
        .iter()
        .map(|(date, n)| Column {
            label: date.format("%b %-d").to_string(),
            values: vec![*n],
        })
        .collect();
    let leads = [Series {
        name: "Leads",
        class: "bar-brand",
    }];
    let active: Vec<&KeySummary> = page
        .keys
        .iter()
        .filter(|k| k.status == KeyStatus::Active)
        .collect();
    let under_way: Vec<&ImportSummary> = page
        .imports
        .iter()
        .filter(|i| {
            matches!(
                i.status,
                ciq_entity::lead_import::ImportStatus::Queued
                    | ciq_entity::lead_import::ImportStatus::Running
            )
        })
        .collect();
    html! {
        (layout("Overview", Section::Overview, signed_in_header(page.user, page.csrf), html! {
            h1 { "Overview" }
            p.lead { "Your account at a glance: the leads of the last 30 days, what your keys did in the last 24 hours, your webhooks and imports. Times in UTC." }
            section.card aria-labelledby="leads-title" {
                div.headline {
                    h2 #leads-title { "Leads" }
                    a.button.secondary href=(ciq_http::routes::SETTINGS_LEADS) { "All leads" }
                }
                div.tiles {
                    div.tile { b { (grouped(total)) } span { "leads in 30 days" } }
                    div.tile { b { (grouped(today)) } span { "today" } }
                    div.tile { b { (grouped(day.requests())) } span { "API requests in 24 hours" } }
                    div.tile { b { (grouped(day.errors())) } span { "of them not 2xx" } }
                }
                (chart::stacked("leads", "Leads per day, last 30 days", &leads, &columns,
                    "No leads in the last 30 days yet: send one with a key, or import a file."))
            }
            section.card aria-labelledby="sources-title" {
                h2 #sources-title { "Top sources, last 30 days" }
                @if page.top_sources.is_empty() {
                    p.muted { "No leads yet." }
                } @else {
                    table {
                        thead { tr { th scope="col" { "Source" } th scope="col" { "Leads" } th scope="col" { "Share" } } }
                        tbody {
                            @for (source, n) in page.top_sources {
                                @let share = (n * 100).checked_div(total).unwrap_or(0);
                                tr {
                                    td data-label="Source" {
                                        a href=(format!("{}?{}", ciq_http::routes::SETTINGS_LEADS, url::form_urlencoded::Serializer::new(String::new()).append_pair("source", source).finish())) { (source) }
                                    }
                                    td data-label="Leads" { (grouped(*n)) }
                                    td data-label="Share" {
                                        meter min="0" max="100" value=(share) aria-label=(format!("{source}: {share} % of the leads")) { (share) " %" }
                                        " " (share) " %"
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="keys-title" {
                div.headline {
                    h2 #keys-title { "Keys, last 24 hours" }
                    a.button.secondary href=(ciq_http::routes::SETTINGS_API_KEYS) { "All keys" }
                }
                @if active.is_empty() {
                    p.muted { "No active key. " a href=(ciq_http::routes::SETTINGS_API_KEYS) { "Generate one" } " to send leads." }
                } @else {
                    table.stacked {
                        thead { tr {
                            th scope="col" { "Key" } th scope="col" { "Requests" } th scope="col" { "Not 2xx" }
                            th scope="col" { "Rate limited" } th scope="col" { "Leads" } th scope="col" { "Last used" }
                        } }
                        tbody {
                            @for key in &active {
                                @let c = page.key_usage.get(&key.id).copied().unwrap_or_default();
                                tr {
                                    td data-label="Key" { a href=(format!("{}/{}", ciq_http::routes::SETTINGS_API_KEYS, key.id)) { (key.name) } " " code { (key.display_prefix) "…" } }
                                    td data-label="Requests" { (grouped(c.requests())) }
                                    td data-label="Not 2xx" {
                                        @if c.errors() > 0 { span.status-4 { (grouped(c.errors())) } } @else { "0" }
                                    }
                                    td data-label="Rate limited" { (grouped(c.rate_limited)) }
                                    td data-label="Leads" { (grouped(c.leads_created)) }
                                    td data-label="Last used" { (when(key.last_used_at)) }
                                }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="webhooks-title" {
                div.headline {
                    h2 #webhooks-title { "Webhooks" }
                    a.button.secondary href=(ciq_http::routes::SETTINGS_WEBHOOKS) { "All endpoints" }
                }
                @if page.endpoints.is_empty() {
                    p.muted { "No endpoint: " a href=(ciq_http::routes::SETTINGS_WEBHOOKS) { "add one" } " to get each new lead pushed to your CRM." }
                } @else {
                    ul.history {
                        @for endpoint in page.endpoints {
                            li {
                                a href=(format!("{}/{}", ciq_http::routes::SETTINGS_WEBHOOKS, endpoint.id)) { code { (endpoint.url) } }
                                " — " (super::webhooks::health(endpoint))
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="imports-title" {
                div.headline {
                    h2 #imports-title { "Imports" }
                    a.button.secondary href=(ciq_http::routes::SETTINGS_LEADS_IMPORTS) { "Import a file" }
                }
                @if under_way.is_empty() {
                    p.muted { "No import under way." }
                } @else {
                    ul.history {
                        @for import in &under_way {
                            li {
                                a href=(format!("{}/{}", ciq_http::routes::SETTINGS_LEADS_IMPORTS, import.id)) { (import.file_name) }
                                " — " (grouped(u64::try_from(import.position).unwrap_or(0))) " of "
                                (grouped(u64::try_from(import.total_rows).unwrap_or(0))) " rows"
                                @if import.failed_count > 0 { ", " span.status-4 { (import.failed_count) " failed" } }
                            }
                        }
                    }
                }
            }
            p.muted { "Drawn " (when(Some(page.now))) "." }
        }))
    }
}

/// The last [`LEAD_DAYS`] days up to `now`'s, each with what `counted` holds for it
/// (zero where it holds nothing).
pub fn every_day(now: DateTime<Utc>, counted: &[(NaiveDate, u64)]) -> Vec<(NaiveDate, u64)> {
    let today = now.date_naive();
    (0..LEAD_DAYS as u64)
        .rev()
        .filter_map(|back| today.checked_sub_days(chrono::Days::new(back)))
        .map(|day| {
            let n = counted
                .iter()
                .find(|(d, _)| *d == day)
                .map_or(0, |(_, n)| *n);
            (day, n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_day_of_the_span_is_there_with_zeros_between() {
        let now: DateTime<Utc> = "2026-12-05T10:00:00Z".parse().unwrap();
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let days = every_day(now, &[(day("2026-12-05"), 4), (day("2026-11-20"), 2)]);
        assert_eq!(days.len(), 30);
        assert_eq!(days[0], (day("2026-11-06"), 0));
        assert_eq!(days[29], (day("2026-12-05"), 4));
        assert_eq!(days.iter().map(|(_, n)| n).sum::<u64>(), 6);
    }
}
