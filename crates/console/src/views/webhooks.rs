//! Settings → Webhooks: the endpoints page and an endpoint's delivery log.

use maud::{Markup, html};
use uuid::Uuid;

use ciq_entity::webhook_delivery::{self, DeliveryStatus};
use ciq_entity::{user, webhook_endpoint};
use ciq_leads::events::NAMES as EVENT_TYPES;

use super::{Flash, Section, layout, layout_refreshing, signed_in_header, when};

/// The webhook guide's address.
pub const GUIDE: &str = "/settings/webhooks/guide";

/// Deliveries shown in an endpoint's log.
pub const LOG_SIZE: u64 = 50;
/// How long the old secret keeps signing after a rotation from the page, in seconds,
/// with the choices' labels.
pub const ROTATION_OVERLAPS: [(u64, &str); 3] = [
    (0, "Immediately"),
    (3600, "After 1 hour"),
    (86_400, "After 24 hours"),
];

/// The page of endpoint `id` (its delivery log); its actions are below it.
pub fn path_of(id: Uuid) -> String {
    format!("{}/{id}", ciq_http::routes::SETTINGS_WEBHOOKS)
}

/// The add form's checkbox of an event type.
pub fn event_field(event: &str) -> String {
    format!("event_{}", event.replace('.', "_"))
}

/// The verification snippet shown with a new secret (the official Python library).
fn snippet(secret: &str) -> String {
    format!(
        "# pip install standardwebhooks\nfrom standardwebhooks.webhooks import Webhook\n\n\
         wh = Webhook(\"{secret}\")\n# raw body and headers exactly as received; raises if not ours\n\
         event = wh.verify(request_body, request_headers)"
    )
}

/// Settings → Webhooks: the add form, the new secret (once), the endpoints and their
/// actions.
pub fn endpoints_page(
    user: &user::Model,
    csrf: &str,
    listed: &[webhook_endpoint::Model],
    keys: &std::collections::HashMap<Uuid, String>,
    flash: &Flash,
    webhooks_on: bool,
) -> Markup {
    layout_refreshing(
        "Webhooks",
        Section::Webhooks,
        signed_in_header(user, csrf),
        html! {
            h1 { "Webhooks" }
            p.lead { "We POST a signed event to your endpoint whenever a lead is created, changed or erased, and retry until it answers 2xx. " a href=(GUIDE) { "The webhook guide" } " shows each event's payload and how to verify a signature." }
            @if !webhooks_on {
                div.error role="alert" { "Webhooks are off on this server: its operator has not set CIQ_WEBHOOK_SECRET_KEY." }
            }
            @if let Some(notice) = &flash.notice { div.notice role="status" { (notice) } }
            @if let Some(error) = &flash.error { div.error role="alert" { (error) } }
            @if let Some((url, secret)) = &flash.new_key {
                section.card.newkey aria-labelledby="new-secret-title" {
                    h2 #new-secret-title { "Signing secret for " (url) }
                    p.warn { "Copy this secret now. It will not be shown again." }
                    div.keybox {
                        label for="new-key" class="sr-only" { "Signing secret" }
                        input #new-key type="text" readonly value=(secret) aria-describedby="new-secret-title";
                        button.secondary type="button" data-copy="new-key" hidden { "Copy" }
                    }
                    p { "Verify each delivery before you trust it, for example in Python:" }
                    pre { code { (snippet(secret)) } }
                }
            }
            section.card aria-labelledby="add-title" {
                h2 #add-title { "Add an endpoint" }
                form method="post" action=(ciq_http::routes::SETTINGS_WEBHOOKS) {
                    input type="hidden" name="csrf" value=(csrf);
                    div.row {
                        div {
                            label for="webhook-url" { "URL" }
                            input.wide #webhook-url type="text" inputmode="url" name="url" required maxlength="2048" placeholder="https://crm.example.com/hooks/convertiq"
                                value=[flash.webhook_draft.as_ref().map(|(url, _)| url.as_str())];
                        }
                    }
                    fieldset.scopes {
                        legend { "Events" }
                        @for event in EVENT_TYPES {
                            div {
                                input id=(event_field(event)) type="checkbox" name=(event_field(event)) value="on"
                                    checked[flash.webhook_draft.as_ref().is_none_or(|(_, ticked)| ticked.iter().any(|t| t == event))];
                                label for=(event_field(event)) { code { (event) } }
                            }
                        }
                    }
                    p { button type="submit" { "Add endpoint" } }
                }
            }
            section.card aria-labelledby="endpoints-title" {
                h2 #endpoints-title { "Your endpoints" }
                @if listed.is_empty() {
                    p.muted { "No endpoints yet." }
                } @else {
                    table.stacked {
                        thead { tr {
                            th scope="col" { "URL" } th scope="col" { "Events" } th scope="col" { "Health" }
                            th scope="col" { "Added" } th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for endpoint in listed {
                                tr {
                                    td data-label="URL" {
                                        a href=(path_of(endpoint.id)) { (endpoint.url) }
                                        @if let Some(description) = &endpoint.description {
                                            br; span.muted { (description) }
                                        }
                                        @if let Some(filter) = ciq_webhooks::filter::Filter::stored(endpoint.filter.as_deref()) {
                                            br; span.muted { "Only when " (filter.in_words()) }
                                        }
                                        @if let Some(key) = endpoint.api_key_id {
                                            br; span.muted {
                                                "Made by key " (keys.get(&key).cloned().unwrap_or_else(|| key.to_string()))
                                            }
                                        }
                                    }
                                    td data-label="Events" { (endpoint.events.replace(',', ", ")) }
                                    td data-label="Health" { (health(endpoint)) }
                                    td data-label="Added" { (when(Some(endpoint.created_at))) }
                                    td data-label="Actions" {
                                        div.actions {
                                            form method="post" action=(format!("{}/test", path_of(endpoint.id))) {
                                                input type="hidden" name="csrf" value=(csrf);
                                                button.secondary type="submit" aria-label=(format!("Send test event to {}", endpoint.url)) { "Send test event" }
                                            }
                                            form method="post" action=(format!("{}/{}", path_of(endpoint.id), if endpoint.enabled { "disable" } else { "enable" })) {
                                                input type="hidden" name="csrf" value=(csrf);
                                                button.secondary type="submit" { @if endpoint.enabled { "Disable" } @else { "Enable" } }
                                            }
                                            form method="post" action=(format!("{}/rotate", path_of(endpoint.id))) {
                                                input type="hidden" name="csrf" value=(csrf);
                                                label for=(format!("overlap-{}", endpoint.id)) class="sr-only" { "Old secret stops signing" }
                                                select id=(format!("overlap-{}", endpoint.id)) name="overlap" {
                                                    @for (seconds, label) in ROTATION_OVERLAPS {
                                                        option value=(seconds) selected[seconds == 86_400] { "Old secret: " (label) }
                                                    }
                                                }
                                                button.secondary type="submit" { "Rotate secret" }
                                            }
                                            a.button.secondary href=(format!("{}/edit", path_of(endpoint.id))) aria-label=(format!("Edit {}", endpoint.url)) { "Edit" }
                                            a.button.danger href=(format!("{}/delete", path_of(endpoint.id))) aria-label=(format!("Delete {}", endpoint.url)) { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
        None,
    )
}

/// The guide's Python verification.
const PYTHON_VERIFY: &str = r#"from standardwebhooks.webhooks import Webhook

wh = Webhook(secret)  # "whsec_..."
event = wh.verify(raw_body, request_headers)  # raises if it is not ours"#;

/// The guide's Node.js verification.
const NODE_VERIFY: &str = r#"import { Webhook } from "standardwebhooks";

const wh = new Webhook(secret);  // "whsec_..."
const event = wh.verify(rawBody, headers);  // throws if it is not ours"#;

/// A duration in words: `5 s`, `30 min`, `2 h`, `5 days`.
fn duration_words(d: std::time::Duration) -> String {
    match d.as_secs() {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// The webhook guide: `samples` are (event type, payload) as sent; `retries` and
/// `disable_after` are this server's delivery settings.
pub fn guide(
    user: &user::Model,
    csrf: &str,
    samples: &[(&str, String)],
    retries: &[std::time::Duration],
    disable_after: std::time::Duration,
) -> Markup {
    let when_sent = |kind: &str| match kind {
        "lead.created" => {
            "A lead was created: a create, a batch item, an upsert or an imported row that created one; a spam lead you marked “Not spam”."
        }
        "lead.updated" => {
            "A lead's fields changed: a PATCH that changed something, an upsert or an imported row that updated, an edit or status change in Settings."
        }
        _ => {
            "A lead was erased (through the API or in Settings): the payload holds its id and your account's only."
        }
    };
    let schedule: Vec<String> = retries.iter().map(|d| duration_words(*d)).collect();
    layout(
        "Webhook guide",
        Section::Webhooks,
        signed_in_header(user, csrf),
        html! {
            p { a href=(ciq_http::routes::SETTINGS_WEBHOOKS) { "← All endpoints" } }
            h1 { "Webhook guide" }
            p.lead { "What your endpoint receives, and how to check it came from us." }
            section.card aria-labelledby="request-title" {
                h2 #request-title { "The request" }
                p { "A " code { "POST" } " with a JSON body and these headers (Standard Webhooks):" }
                dl.fields {
                    dt { code { "webhook-id" } } dd { "The event's id: the same on every attempt and every replay. Store it and ignore a second delivery of one you processed." }
                    dt { code { "webhook-timestamp" } } dd { "Unix seconds when this attempt was signed." }
                    dt { code { "webhook-signature" } } dd { code { "v1,<base64>" } ": HMAC-SHA256 of " code { "{webhook-id}.{webhook-timestamp}.{body}" } ", keyed with the base64-decoded part of your secret after " code { "whsec_" } ". During a secret rotation there are two, space-separated: accept if one matches." }
                    dt { code { "content-type" } } dd { code { "application/json" } }
                }
            }
            section.card aria-labelledby="verify-title" {
                h2 #verify-title { "Verify every delivery" }
                p { "With the raw body as received, before parsing it; refuse timestamps more than five minutes from your clock." }
                p { strong { "Python" } " (" code { "pip install standardwebhooks" } "):" }
                pre { code { (PYTHON_VERIFY) } }
                p { strong { "Node.js" } " (" code { "npm install standardwebhooks" } "):" }
                pre { code { (NODE_VERIFY) } }
            }
            section.card aria-labelledby="retries-title" {
                h2 #retries-title { "Answers and retries" }
                ul {
                    li { "Answer any 2xx within 15 seconds: the delivery is done. Do the work after answering." }
                    li { "Anything else is tried again after " (schedule.join(", ")) "; then the delivery has failed (replay it from the endpoint's log)." }
                    li { "429 or 503 with " code { "Retry-After" } " is retried when it says." }
                    li { "410 Gone disables the endpoint: answer it to unsubscribe." }
                    li { "An endpoint whose every delivery failed for " (duration_words(disable_after)) " is disabled, with the reason shown on your endpoints page." }
                }
            }
            section.card aria-labelledby="events-title" {
                h2 #events-title { "Events" }
                p { "Leads held back as spam have no event until you mark them “Not spam”. A " code { "webhook.test" } " event (" strong { "Send test event" } ") carries a message instead of a lead." }
                @for (kind, payload) in samples {
                    h3 { code { (kind) } }
                    p { (when_sent(kind)) }
                    pre { code { (pretty(payload)) } }
                }
            }
        },
    )
}

/// Filter conditions the edit form offers (blank ones are left out).
pub const FILTER_ROWS: usize = 5;

/// The edit form as it is shown: the endpoint's values, or a refused form as it was
/// sent.
pub struct EndpointDraft {
    /// The URL.
    pub url: String,
    /// The events ticked.
    pub events: Vec<String>,
    /// What the endpoint is for.
    pub description: String,
    /// The filter's conditions: (field, operator, value as typed).
    pub conditions: Vec<(String, String, String)>,
}

impl EndpointDraft {
    /// The endpoint as stored.
    pub(crate) fn of(endpoint: &webhook_endpoint::Model) -> Self {
        let mut conditions = Vec::new();
        let filter = ciq_webhooks::filter::Filter::stored(endpoint.filter.as_deref());
        if let Some(serde_json::Value::Object(fields)) = filter.map(|f| f.canonical()) {
            for (field, ops) in fields {
                let serde_json::Value::Object(ops) = ops else {
                    continue;
                };
                for (op, value) in ops {
                    let text = match &value {
                        serde_json::Value::Array(values) => {
                            values.iter().map(text_of).collect::<Vec<_>>().join(", ")
                        }
                        serde_json::Value::Bool(true) => "yes".to_owned(),
                        serde_json::Value::Bool(false) => "no".to_owned(),
                        other => text_of(other),
                    };
                    conditions.push((field.clone(), op, text));
                }
            }
        }
        Self {
            url: endpoint.url.clone(),
            events: endpoint.events.split(',').map(str::to_owned).collect(),
            description: endpoint.description.clone().unwrap_or_default(),
            conditions,
        }
    }

    /// The form as sent.
    pub(crate) fn sent(form: &std::collections::HashMap<String, String>) -> Self {
        let field = |name: &str| form.get(name).map_or("", |v| v.trim()).to_owned();
        Self {
            url: field("url"),
            events: EVENT_TYPES
                .into_iter()
                .filter(|e| form.contains_key(&event_field(e)))
                .map(str::to_owned)
                .collect(),
            description: field("description"),
            conditions: (0..FILTER_ROWS)
                .map(|i| {
                    (
                        field(&format!("f{i}_field")),
                        field(&format!("f{i}_op")),
                        field(&format!("f{i}_value")),
                    )
                })
                .filter(|(field, _, _)| !field.is_empty())
                .collect(),
        }
    }

    /// The filter the conditions make, as the API's body would carry it: a number field's
    /// value as a number when it reads as one, `in` values split at commas, `exists` as
    /// yes or no (anything else is left as typed, for the filter's rules to name).
    pub(crate) fn filter_json(&self) -> serde_json::Value {
        let mut filter = serde_json::Map::new();
        for (field, op, text) in &self.conditions {
            let number = ciq_webhooks::filter::is_number_field(field) == Some(true);
            let typed = |text: &str| match text.parse::<f64>() {
                Ok(n) if number => serde_json::json!(n),
                _ => serde_json::Value::String(text.to_owned()),
            };
            let value = match op.as_str() {
                "in" => serde_json::Value::Array(
                    text.split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(typed)
                        .collect(),
                ),
                "exists" => match text.to_lowercase().as_str() {
                    "yes" | "true" | "" => serde_json::Value::Bool(true),
                    "no" | "false" => serde_json::Value::Bool(false),
                    _ => serde_json::Value::String(text.clone()),
                },
                _ => typed(text),
            };
            let ops = filter
                .entry(field.clone())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if let serde_json::Value::Object(ops) = ops {
                ops.insert(op.clone(), value);
            }
        }
        serde_json::Value::Object(filter)
    }
}

/// A filter value as the form shows it.
fn text_of(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// An endpoint's edit form: URL, events, what it is for, and its filter as conditions
/// (field, operator, value) that must all hold; `problems` of a refused form above it.
pub fn edit(
    user: &user::Model,
    csrf: &str,
    endpoint: &webhook_endpoint::Model,
    draft: &EndpointDraft,
    problems: &[String],
) -> Markup {
    let stored = ciq_webhooks::filter::Filter::stored(endpoint.filter.as_deref());
    let operator_words = |op: &str| match op {
        "eq" => "is",
        "in" => "is one of (commas between)",
        "gte" => "is at least",
        "lte" => "is at most",
        _ => "is set (yes) / empty (no)",
    };
    layout(
        "Edit endpoint",
        Section::Webhooks,
        signed_in_header(user, csrf),
        html! {
            p { a href=(ciq_http::routes::SETTINGS_WEBHOOKS) { "← All endpoints" } }
            h1 { "Edit endpoint" }
            p.lead { "Changes apply to the next event; deliveries already queued go to the new URL too. The signing secret stays." }
            @if !problems.is_empty() {
                div.error role="alert" #problems {
                    p { "Not saved:" }
                    ul { @for problem in problems { li { (problem) } } }
                }
            }
            section.card {
                form.stack method="post" action=(format!("{}/edit", path_of(endpoint.id))) {
                    input type="hidden" name="csrf" value=(csrf);
                    div {
                        label for="webhook-url" { "URL" }
                        input.wide #webhook-url type="text" inputmode="url" name="url" required maxlength="2048" value=(draft.url);
                    }
                    div {
                        label for="description" { "Description " span.muted { "(optional)" } }
                        input.wide #description type="text" name="description" maxlength=(ciq_webhooks::endpoints::MAX_DESCRIPTION_LEN) value=(draft.description) placeholder="e.g. New leads to the CRM";
                    }
                    fieldset.scopes {
                        legend { "Events" }
                        @for event in EVENT_TYPES {
                            div {
                                input id=(event_field(event)) type="checkbox" name=(event_field(event)) value="on"
                                    checked[draft.events.iter().any(|t| t == event)];
                                label for=(event_field(event)) { code { (event) } }
                            }
                        }
                    }
                    fieldset.filter {
                        legend { "Filter " span.muted { "(optional: only events whose lead matches every condition are sent)" } }
                        p.muted {
                            "Now: "
                            @match &stored { Some(filter) => { strong { (filter.in_words()) } }, None => { "every event of the types ticked." } }
                        }
                        @for i in 0..FILTER_ROWS {
                            @let (field, op, value) = draft.conditions.get(i).cloned().unwrap_or_default();
                            div.condition {
                                div {
                                    label for=(format!("f{i}_field")) { "Field " (i + 1) }
                                    select id=(format!("f{i}_field")) name=(format!("f{i}_field")) {
                                        option value="" { "—" }
                                        @for (name, _) in ciq_webhooks::filter::FIELDS {
                                            option value=(name) selected[field == name] { (name.replace("attribution.", "").replace('_', " ")) }
                                        }
                                    }
                                }
                                div {
                                    label for=(format!("f{i}_op")) { "Condition " (i + 1) }
                                    select id=(format!("f{i}_op")) name=(format!("f{i}_op")) {
                                        @for candidate in ciq_webhooks::filter::OPERATORS {
                                            option value=(candidate) selected[op == candidate] { (operator_words(candidate)) }
                                        }
                                    }
                                }
                                div {
                                    label for=(format!("f{i}_value")) { "Value " (i + 1) }
                                    input type="text" id=(format!("f{i}_value")) name=(format!("f{i}_value")) value=(value) maxlength="2000";
                                }
                            }
                        }
                    }
                    div.actions {
                        button type="submit" { "Save endpoint" }
                        a.button.secondary href=(ciq_http::routes::SETTINGS_WEBHOOKS) { "Cancel" }
                    }
                }
            }
        },
    )
}

/// "Delete this endpoint?": what goes with it, and the button.
pub fn confirm_delete(
    user: &user::Model,
    csrf: &str,
    endpoint: &webhook_endpoint::Model,
) -> Markup {
    layout(
        "Delete endpoint",
        Section::Webhooks,
        signed_in_header(user, csrf),
        html! {
            section.card.stack {
                h1 { "Delete this endpoint?" }
                p { code { (endpoint.url) } }
                p { "Nothing more is sent to it, its delivery log goes with it, and its secret stops meaning anything. This cannot be undone; to pause deliveries instead, disable it." }
                form method="post" action=(format!("{}/delete", path_of(endpoint.id))) {
                    input type="hidden" name="csrf" value=(csrf);
                    div.actions {
                        button.danger type="submit" { "Delete endpoint" }
                        a.button.secondary href=(ciq_http::routes::SETTINGS_WEBHOOKS) { "Cancel" }
                    }
                }
            }
        },
    )
}

/// An endpoint's health as the pages show it: disabled (and why), failing since when,
/// or healthy.
pub(crate) fn health(endpoint: &webhook_endpoint::Model) -> Markup {
    html! {
        @if !endpoint.enabled {
            span.badge.revoked { "disabled" }
            @if let Some(reason) = &endpoint.disabled_reason { " " span.muted { (reason) } }
        } @else if let Some(since) = endpoint.failing_since {
            span.badge.expired { "failing" } " " span.muted { "since " (when(Some(since))) }
        } @else {
            span.badge.active { "healthy" }
        }
    }
}

/// A delivery's payload as the log shows it: indented JSON (as sent, when it is not).
fn pretty(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| payload.to_owned())
}

/// A delivery's status as a badge.
fn status_badge(status: DeliveryStatus) -> Markup {
    let class = match status {
        DeliveryStatus::Delivered => "badge active",
        DeliveryStatus::Failed => "badge revoked",
        DeliveryStatus::Pending => "badge expired",
    };
    html! { span class=(class) { (status.as_str()) } }
}

/// An endpoint's delivery log, newest first; it reloads itself while a delivery is
/// pending.
pub fn log(
    user: &user::Model,
    csrf: &str,
    endpoint: &webhook_endpoint::Model,
    log: &[webhook_delivery::Model],
) -> Markup {
    // While something is on its way, the page follows it.
    let pending = log.iter().any(|d| d.status == DeliveryStatus::Pending);
    layout_refreshing(
        "Webhook deliveries",
        Section::Webhooks,
        signed_in_header(user, csrf),
        html! {
            h1 { "Deliveries" }
            p.lead { "To " (endpoint.url) ", newest first; the last " (LOG_SIZE) " are shown and each is kept for 7 days." }
            @if !endpoint.enabled {
                div.error role="alert" { "This endpoint is disabled" @if let Some(reason) = &endpoint.disabled_reason { ": " (reason) } "." }
            }
            section.card aria-labelledby="log-title" {
                h2 #log-title { "Delivery log" }
                @if log.is_empty() {
                    p.muted { "Nothing sent yet." }
                } @else {
                    table.stacked #deliveries {
                        thead { tr {
                            th scope="col" { "Event" } th scope="col" { "Status" } th scope="col" { "Attempts" }
                            th scope="col" { "Last answer" } th scope="col" { "Next attempt" } th scope="col" { "Replay" }
                        } }
                        tbody {
                            @for d in log {
                                tr {
                                    td data-label="Event" {
                                        code { (d.event_type) } br; span.muted { (when(Some(d.created_at))) }
                                        details.payload {
                                            summary { "Payload" span.sr-only { " of the " (d.event_type) " of " (when(Some(d.created_at))) } }
                                            pre { code { (pretty(&d.payload)) } }
                                        }
                                    }
                                    td data-label="Status" { (status_badge(d.status)) }
                                    td data-label="Attempts" { (d.attempts) }
                                    td data-label="Last answer" {
                                        @match (d.last_status_code, &d.last_error) {
                                            (Some(code), _) => { (code) @if let Some(excerpt) = &d.last_response { " " span.muted { (excerpt.chars().take(120).collect::<String>()) } } },
                                            (None, Some(error)) => span.muted { (error) },
                                            (None, None) => "—",
                                        }
                                    }
                                    td data-label="Next attempt" { @if d.status == DeliveryStatus::Pending { (when(Some(d.next_attempt_at))) } @else { "—" } }
                                    td data-label="Replay" {
                                        form method="post" action=(format!("{}/deliveries/{}/replay", path_of(endpoint.id), d.id)) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button.secondary type="submit" aria-label=(format!("Replay the {} of {}", d.event_type, when(Some(d.created_at)))) { "Replay" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.actions { a.button.secondary href=(ciq_http::routes::SETTINGS_WEBHOOKS) { "All endpoints" } }
        },
        pending.then_some(2),
    )
}
