//! Settings → Webhooks: the endpoints page and an endpoint's delivery log.

use maud::{Markup, html};
use uuid::Uuid;

use ciq_entity::webhook_delivery::{self, DeliveryStatus};
use ciq_entity::{user, webhook_endpoint};
use ciq_leads::events::NAMES as EVENT_TYPES;

use super::{Flash, Section, layout, layout_refreshing, signed_in_header, when};

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
            p.lead { "We POST a signed event to your endpoint whenever a lead is created, changed or erased, and retry until it answers 2xx. See the developer guide for the payloads and how to verify a signature." }
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
                            th scope="col" { "URL" } th scope="col" { "Events" } th scope="col" { "Status" }
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
                                    td data-label="Status" {
                                        @if endpoint.enabled {
                                            span.badge.active { "enabled" }
                                        } @else {
                                            span.badge.revoked { "disabled" }
                                            @if let Some(reason) = &endpoint.disabled_reason { br; span.muted { (reason) } }
                                        }
                                    }
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
                                    td data-label="Event" { code { (d.event_type) } br; span.muted { (when(Some(d.created_at))) } }
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
