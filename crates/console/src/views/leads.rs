//! Settings → Leads: the list with its filters, and one lead.

use maud::{Markup, html};

use ciq_admin::keys::KeySummary;
use ciq_entity::user;

use super::{Section, layout, signed_in_header, when};

/// What the leads page shows.
pub struct LeadsView<'a> {
    /// The filters as sent (the form shows them again).
    pub query: &'a crate::leads::LeadsQuery,
    /// The owner's keys, for the key filter and the key column.
    pub keys: &'a [KeySummary],
    /// This page's leads.
    pub leads: &'a [ciq_leads::Lead],
    /// How many leads the filter matches (`Some(None)`: more than
    /// [`crate::leads::COUNT_CAP`]); `None` when the filter was refused.
    pub total: Option<Option<u64>>,
    /// The next page's cursor, if more follow.
    pub next: Option<&'a str>,
    /// Broken filters: (field label, rule).
    pub problems: &'a [(&'static str, String)],
    /// What the last action (a bulk action, a delete) did.
    pub flash: &'a super::Flash,
}

/// "1 lead", "1,234 leads", "more than 10,000 leads".
fn total_text(total: Option<u64>) -> String {
    match total {
        Some(1) => "1 lead".to_owned(),
        Some(n) => format!("{} leads", super::grouped(n)),
        None => format!(
            "more than {} leads",
            super::grouped(crate::leads::COUNT_CAP)
        ),
    }
}

/// Settings → Leads: filters, a page of leads, the next-page and export links.
pub fn leads(user: &user::Model, csrf: &str, view: &LeadsView<'_>) -> Markup {
    let query = view.query;
    let filters = query.filters_query();
    let with = |extra: &str| match (filters.is_empty(), extra.is_empty()) {
        (true, _) => extra.to_owned(),
        (false, true) => filters.clone(),
        (false, false) => format!("{filters}&{extra}"),
    };
    let key_name = |id: Option<uuid::Uuid>| match id {
        None => "Imported".to_owned(),
        Some(id) => view
            .keys
            .iter()
            .find(|k| k.id == id)
            .map_or_else(|| "—".to_owned(), |k| k.name.clone()),
    };
    layout(
        "Leads",
        Section::Leads,
        signed_in_header(user, csrf),
        html! {
            h1 { "Leads" }
            p.lead { "Every lead your keys sent into this account, newest first. "
                "Leads judged spam are held back: " a href=(crate::leads::SETTINGS_SPAM) { "see the spam list" } "." }
            @if let Some(notice) = &view.flash.notice { div.notice role="status" { (notice) } }
            @if let Some(error) = &view.flash.error { div.error role="alert" { (error) } }
            @for (label, rule) in view.problems {
                div.error role="alert" { (label) ": " (rule) }
            }
            section.card aria-labelledby="filter-title" {
                h2 #filter-title { "Filter" }
                form.filters method="get" action="/settings/leads" {
                    div.search {
                        label for="f-q" { "Search" }
                        input #f-q type="search" name="q" value=(query.q) maxlength=(crate::leads::SEARCH_MAX_CHARS) placeholder="Name or email starts with…" aria-describedby="f-q-help";
                        span.sr-only #f-q-help { "Finds leads whose name or email address starts with this, in any case." }
                    }
                    div {
                        label for="f-status" { "Status" }
                        select #f-status name="status" {
                            option value="" { "Any" }
                            @for status in ciq_leads::LeadStatus::ALL {
                                option value=(status.as_str()) selected[query.status == status.as_str()] { (status.as_str()) }
                            }
                        }
                    }
                    div {
                        label for="f-source" { "Source" }
                        input #f-source type="text" name="source" value=(query.source) maxlength="100" placeholder="e.g. Website Form";
                    }
                    div {
                        label for="f-key" { "Key" }
                        select #f-key name="key" {
                            option value="" { "Any" }
                            option value=(crate::leads::IMPORTED) selected[query.key == crate::leads::IMPORTED] { "Imported from a file" }
                            @for key in view.keys {
                                option value=(key.id) selected[query.key == key.id.to_string()] { (key.name) " (" (key.display_prefix) "…)" }
                            }
                        }
                    }
                    div {
                        label for="f-from" { "From" }
                        input #f-from type="date" name="from" value=(query.from);
                    }
                    div {
                        label for="f-to" { "To" }
                        input #f-to type="date" name="to" value=(query.to);
                    }
                    div.actions {
                        button type="submit" { "Apply" }
                        a.button.secondary href="/settings/leads" { "Clear" }
                    }
                }
            }
            section.card aria-labelledby="leads-title" {
                div.headline {
                    div {
                        h2 #leads-title { "Your leads" }
                        @if let Some(total) = view.total {
                            p.muted.count #leads-count { (total_text(total)) @if !filters.is_empty() { " match" } }
                        }
                    }
                    div.actions {
                        a.button.secondary #import href=(ciq_http::routes::SETTINGS_LEADS_IMPORTS) { "Import CSV" }
                        a.button.secondary #export href=(format!("/settings/leads/export.csv{}", if filters.is_empty() { String::new() } else { format!("?{filters}") })) download { "Export CSV" }
                    }
                }
                @if view.leads.is_empty() {
                    p.muted { @if query.cursor.is_empty() { "No leads match." } @else { "No more leads." } }
                } @else {
                    form #bulk method="post" action=(format!("{}{}", crate::leads::SETTINGS_BULK, if filters.is_empty() { String::new() } else { format!("?{filters}") })) {
                        input type="hidden" name="csrf" value=(csrf);
                        div.bulk {
                            label for="bulk-action" { "With the ticked leads" }
                            div.actions {
                                select #bulk-action name="action" {
                                    option value="" { "Choose…" }
                                    @for status in ciq_leads::LeadStatus::ALL {
                                        option value=(format!("status:{}", status.as_str())) { "Set status: " (status.as_str()) }
                                    }
                                    option value="delete" { "Delete…" }
                                }
                                button.secondary type="submit" { "Apply" }
                            }
                        }
                        table.stacked {
                            thead { tr {
                                th scope="col" {
                                    input #select-all type="checkbox" data-select-all hidden aria-label="Tick every lead on this page";
                                }
                                th scope="col" { "Created" } th scope="col" { "Name" } th scope="col" { "Email" }
                                th scope="col" { "Source" } th scope="col" { "Score" } th scope="col" { "Status" } th scope="col" { "Key" }
                            } }
                            tbody {
                                @for lead in view.leads {
                                    tr {
                                        td.tick { input type="checkbox" name=(format!("lead_{}", lead.id)) data-lead aria-label=(format!("Tick {}", lead.name)); }
                                        td data-label="Created" { (when(Some(lead.created_at))) }
                                        td data-label="Name" { a href=(format!("/settings/leads/{}", lead.id)) { (lead.name) } }
                                        td data-label="Email" { (lead.email) }
                                        td data-label="Source" { (lead.source) }
                                        td data-label="Score" { @if let Some(score) = lead.score { (score) } @else { span.muted { "—" } } }
                                        td data-label="Status" { span class=(format!("pill status-{}", lead.status.as_str())) { (lead.status.as_str()) } }
                                        td data-label="Key" { (key_name(lead.api_key_id)) }
                                    }
                                }
                            }
                        }
                    }
                }
                nav.pager aria-label="Pages" {
                    @if !query.cursor.is_empty() {
                        a.button.secondary href=(format!("/settings/leads?{}", with(""))) { "First page" }
                    }
                    @if let Some(next) = view.next {
                        a.button.secondary rel="next" href=(format!("/settings/leads?{}", with(&format!("cursor={next}")))) { "Next page" }
                    }
                }
            }
        },
    )
}

/// What the Spam page shows.
pub struct SpamView<'a> {
    /// This page's spam leads.
    pub leads: &'a [ciq_leads::Lead],
    /// The next page's cursor, if more follow.
    pub next: Option<&'a str>,
    /// Whether this is a later page.
    pub paged: bool,
    /// What the last action did.
    pub flash: &'a super::Flash,
    /// The block list's text (one entry per line), as stored or as just typed.
    pub block_list: &'a str,
}

/// Why a spam lead was held back, in words.
fn spam_reason(lead: &ciq_leads::Lead) -> String {
    let Some(spam) = &lead.spam else {
        return String::new();
    };
    ciq_leads::SpamReason::from_name(&spam.reason)
        .map_or_else(|| spam.reason.clone(), |r| r.explained().to_owned())
}

/// Settings → Leads → Spam: what was held back, why, and "Not spam" or delete.
pub fn spam(user: &user::Model, csrf: &str, view: &SpamView<'_>) -> Markup {
    layout(
        "Spam",
        Section::Leads,
        signed_in_header(user, csrf),
        html! {
            p { a href="/settings/leads" { "← All leads" } }
            h1 { "Spam" }
            p.lead {
                "Leads from your web forms that looked like bots: kept here, out of your lead list, "
                "exports and webhooks, and deleted after 30 days. "
                "“Not spam” moves a lead to your leads and tells your webhooks about it."
            }
            @if let Some(notice) = &view.flash.notice { div.notice role="status" { (notice) } }
            @if let Some(error) = &view.flash.error { div.error role="alert" { (error) } }
            section.card aria-labelledby="spam-title" {
                h2 #spam-title { "Held back" }
                @if view.leads.is_empty() {
                    p.muted { @if view.paged { "No more spam." } @else { "No spam. Leads judged spam will show here." } }
                } @else {
                    table.stacked {
                        thead { tr {
                            th scope="col" { "Arrived" } th scope="col" { "Name" } th scope="col" { "Email" }
                            th scope="col" { "Why" } th scope="col" { span class="sr-only" { "Actions" } }
                        } }
                        tbody {
                            @for lead in view.leads {
                                tr {
                                    td data-label="Arrived" { (when(Some(lead.created_at))) }
                                    td data-label="Name" { a href=(format!("/settings/leads/{}", lead.id)) { (lead.name) } }
                                    td data-label="Email" { (lead.email) }
                                    td data-label="Why" { (label(&spam_reason(lead))) }
                                    td {
                                        div.actions {
                                            form method="post" action=(format!("/settings/leads/{}/not-spam", lead.id)) {
                                                input type="hidden" name="csrf" value=(csrf);
                                                button.secondary type="submit" aria-label=(format!("Not spam: {}", lead.name)) { "Not spam" }
                                            }
                                            form method="post" action=(format!("/settings/leads/{}/delete", lead.id)) {
                                                input type="hidden" name="csrf" value=(csrf);
                                                button.danger type="submit" aria-label=(format!("Delete {}", lead.name)) { "Delete" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                nav.pager aria-label="Pages" {
                    @if view.paged {
                        a.button.secondary href=(crate::leads::SETTINGS_SPAM) { "First page" }
                    }
                    @if let Some(next) = view.next {
                        a.button.secondary rel="next" href=(format!("{}?cursor={next}", crate::leads::SETTINGS_SPAM)) { "Next page" }
                    }
                }
            }
            section.card aria-labelledby="block-title" {
                h2 #block-title { "Block list" }
                form method="post" action=(crate::leads::SETTINGS_BLOCK_LIST) {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="block-list" { "Email addresses and domains" }
                    textarea #block-list name="block_list" rows="4" placeholder="spammer@example.com\nbad-domain.example" aria-describedby="block-help" { (view.block_list) }
                    p.muted #block-help {
                        "One per line. Leads from your web forms with one of these email addresses, or an address "
                        "at one of these domains (and their subdomains), are held back here. Up to 500."
                    }
                    button type="submit" { "Save block list" }
                }
            }
        },
    )
}

/// One lead, every field.
pub fn lead_detail(
    user: &user::Model,
    csrf: &str,
    lead: &ciq_leads::Lead,
    key: Option<&str>,
    flash: &super::Flash,
) -> Markup {
    // Every field in the lead's order, but those shown apart: the name is the title,
    // the account is the reader's, the key and the times are written in words below.
    const APART: [&str; 7] = [
        "id",
        "user_id",
        "name",
        "api_key_id",
        "created_at",
        "updated_at",
        "spam",
    ];
    // Attribution and consent get sections of their own, shown when the lead has them.
    let (origin, fields): (Vec<_>, Vec<_>) = lead
        .texts()
        .into_iter()
        .filter(|(field, _)| !APART.contains(field))
        .partition(|(field, _)| {
            ciq_leads::Attribution::is_field(field) || ciq_leads::Consent::COLUMNS.contains(field)
        });
    let mut fields: Vec<(String, String)> = fields
        .into_iter()
        .map(|(field, text)| (label(field), text.unwrap_or_else(|| "—".to_owned())))
        .collect();
    let attribution: Vec<(String, String)> = origin
        .iter()
        .filter(|(field, _)| ciq_leads::Attribution::is_field(field))
        .filter_map(|(field, text)| Some((label(field), text.clone()?)))
        .collect();
    let consent = lead.consent.as_ref().map(|consent| {
        [
            (
                "Consent given",
                if consent.granted { "Yes" } else { "No" }.to_owned(),
            ),
            ("Consent text", consent.text.clone()),
            ("Recorded", when(Some(consent.granted_at))),
            (
                "From address",
                consent
                    .ip
                    .clone()
                    .unwrap_or_else(|| "not recorded (not sent from a web form)".to_owned()),
            ),
        ]
    });
    fields.extend(
        [
            (
                "Created with key",
                match (key, lead.api_key_id) {
                    (Some(name), _) => name.to_owned(),
                    (None, Some(id)) => id.to_string(),
                    (None, None) => "none: imported from a CSV file".to_owned(),
                },
            ),
            ("Created", when(Some(lead.created_at))),
            ("Last changed", when(Some(lead.updated_at))),
            ("Lead id", lead.id.to_string()),
        ]
        .map(|(label, value)| (label.to_owned(), value)),
    );
    layout(
        &lead.name,
        Section::Leads,
        signed_in_header(user, csrf),
        html! {
            p { a href="/settings/leads" { "← All leads" } }
            @if let Some(notice) = &flash.notice { div.notice role="status" { (notice) } }
            @if let Some(error) = &flash.error { div.error role="alert" { (error) } }
            @if lead.spam.is_some() {
                div.error role="status" {
                    "Held back as spam: " (spam_reason(lead)) ". "
                    form.inline method="post" action=(format!("/settings/leads/{}/not-spam", lead.id)) {
                        input type="hidden" name="csrf" value=(csrf);
                        button.secondary type="submit" { "Not spam" }
                    }
                }
            }
            section.card aria-labelledby="lead-title" {
                div.headline {
                    h1 #lead-title { (lead.name) }
                    div.actions {
                        a.button.secondary #edit href=(format!("/settings/leads/{}/edit", lead.id)) { "Edit" }
                        a.button.danger #delete href=(format!("/settings/leads/{}/delete", lead.id)) { "Delete" }
                    }
                }
                @if lead.spam.is_none() {
                    form.status method="post" action=(format!("/settings/leads/{}/status", lead.id)) {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="status" { "Status" }
                        div.actions {
                            select #status name="status" {
                                @for status in ciq_leads::LeadStatus::ALL {
                                    option value=(status.as_str()) selected[status == lead.status] { (status.as_str()) }
                                }
                            }
                            button.secondary type="submit" { "Set status" }
                        }
                    }
                }
                dl.fields {
                    @for (label, value) in &fields {
                        dt { (label) }
                        dd { (value) }
                    }
                }
            }
            @if !attribution.is_empty() {
                section.card aria-labelledby="attribution-title" {
                    h2 #attribution-title { "Where it came from" }
                    dl.fields {
                        @for (label, value) in &attribution {
                            dt { (label) }
                            dd { (value) }
                        }
                    }
                }
            }
            @if let Some(consent) = &consent {
                section.card aria-labelledby="consent-title" {
                    h2 #consent-title { "Consent" }
                    dl.fields {
                        @for (label, value) in consent {
                            dt { (label) }
                            dd { (value) }
                        }
                    }
                }
            }
        },
    )
}

/// One lead's edit form: every editable field as `typed` holds it (the lead's values,
/// or a refused form as it was sent), each problem beside its field.
pub fn lead_edit(
    user: &user::Model,
    csrf: &str,
    lead: &ciq_leads::Lead,
    typed: &std::collections::HashMap<String, String>,
    problems: &[(String, String)],
) -> Markup {
    let value = |field: &str| typed.get(field).map_or("", String::as_str).to_owned();
    let problem = |field: &str| {
        problems
            .iter()
            .filter(|(name, _)| name == field)
            .map(|(_, rule)| rule.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    layout(
        &format!("Edit {}", lead.name),
        Section::Leads,
        signed_in_header(user, csrf),
        html! {
            p { a href=(format!("/settings/leads/{}", lead.id)) { "← " (lead.name) } }
            h1 { "Edit lead" }
            p.lead { "Changes are checked by the same rules as the API's update, and your webhooks hear of them as lead.updated." }
            @if !problems.is_empty() {
                div.error role="alert" #problems {
                    "Not saved: "
                    (problems.len()) @if problems.len() == 1 { " field needs" } @else { " fields need" } " a change."
                }
            }
            section.card {
                form.edit method="post" action=(format!("/settings/leads/{}/edit", lead.id)) {
                    input type="hidden" name="csrf" value=(csrf);
                    div.grid {
                        @for field in crate::leads::editable_fields() {
                            @let id = format!("e-{field}");
                            @let err = problem(field);
                            @let described = format!("{id}-problem");
                            div class=(if field == "description" { "wide" } else { "" }) {
                                label for=(id) { (label(field)) @if matches!(field, "name" | "email" | "source" | "industry") { " " span.muted { "(required)" } } }
                                @match field {
                                    "status" => {
                                        select id=(id) name=(field) {
                                            @for status in ciq_leads::LeadStatus::ALL {
                                                option value=(status.as_str()) selected[value(field) == status.as_str()] { (status.as_str()) }
                                            }
                                        }
                                    }
                                    "description" => {
                                        textarea id=(id) name=(field) rows="4" aria-invalid=[(!err.is_empty()).then_some("true")] aria-describedby=[(!err.is_empty()).then_some(&described)] { (value(field)) }
                                    }
                                    _ => {
                                        input id=(id) name=(field)
                                            type=(match field { "email" => "email", "phone" => "tel", _ => "text" })
                                            inputmode=[match field { "score" => Some("numeric"), "monthly_revenue" | "budget" => Some("decimal"), _ => None }]
                                            value=(value(field))
                                            aria-invalid=[(!err.is_empty()).then_some("true")]
                                            aria-describedby=[(!err.is_empty()).then_some(&described)];
                                    }
                                }
                                @if !err.is_empty() {
                                    p.problem id=(described) { (err) }
                                }
                            }
                        }
                    }
                    div.submit.actions {
                        button type="submit" { "Save changes" }
                        a.button.secondary href=(format!("/settings/leads/{}", lead.id)) { "Cancel" }
                    }
                }
            }
        },
    )
}

/// Asks before erasing `leads` (one from its page, or the list's ticked ones; `back`
/// is the list's filters to return to).
pub fn confirm_erase(
    user: &user::Model,
    csrf: &str,
    leads: &[ciq_leads::Lead],
    back: &str,
) -> Markup {
    let one = leads.len() == 1;
    let (action, cancel) = match leads {
        [lead] if back.is_empty() => (
            format!("/settings/leads/{}/delete", lead.id),
            format!("/settings/leads/{}", lead.id),
        ),
        _ => (
            format!("{}?{back}", crate::leads::SETTINGS_BULK),
            format!("/settings/leads?{back}"),
        ),
    };
    let title = if one {
        format!("Delete “{}”?", leads[0].name)
    } else {
        format!("Delete {} leads?", leads.len())
    };
    layout(
        &title,
        Section::Leads,
        signed_in_header(user, csrf),
        html! {
            section.card.stack {
                h1 { (title) }
                p { "A deleted lead is gone for good: it leaves your list and exports, and your webhooks hear of it as lead.deleted. This cannot be undone." }
                @if !one {
                    ul { @for lead in leads { li { (lead.name) " — " (lead.email) } } }
                }
                form method="post" action=(action) {
                    input type="hidden" name="csrf" value=(csrf);
                    @if !back.is_empty() || !one {
                        input type="hidden" name="action" value="delete";
                        input type="hidden" name="confirm" value="yes";
                        @for lead in leads { input type="hidden" name=(format!("lead_{}", lead.id)) value="on"; }
                    }
                    div.actions {
                        button.danger type="submit" { @if one { "Delete lead" } @else { "Delete " (leads.len()) " leads" } }
                        a.button.secondary href=(cancel) { "Cancel" }
                    }
                }
            }
        },
    )
}

/// A field's name as a label: `monthly_revenue` → "Monthly revenue".
pub(crate) fn label(field: &str) -> String {
    match field {
        "gclid" => return "Google Ads click id".to_owned(),
        "fbclid" => return "Meta click id".to_owned(),
        "msclkid" => return "Microsoft Ads click id".to_owned(),
        "page_url" => return "Page".to_owned(),
        _ => {}
    }
    if let Some(part) = field.strip_prefix("utm_") {
        return format!("UTM {part}");
    }
    let words = field.replace('_', " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
