//! Settings → API Key: the keys, the generate form, the history, the revoke
//! confirmation.

use maud::{Markup, html};

use ciq_admin::keys::{KeyEventView, KeyStatus, KeySummary};
use ciq_entity::{api_key, user};

use super::{Flash, Section, layout, signed_in_header, when};

/// Overlaps offered when rolling a key, in seconds, with their labels.
pub const ROLL_OVERLAPS: [(u64, &str); 4] = [
    (0, "Immediately"),
    (3600, "After 1 hour"),
    (86_400, "After 24 hours"),
    (604_800, "After 7 days"),
];
/// Expiries offered when generating a key, in days (0 = never).
pub const EXPIRY_CHOICES: [(u32, &str); 4] = [
    (0, "Never"),
    (30, "In 30 days"),
    (90, "In 90 days"),
    (365, "In 1 year"),
];

/// The permissions the generate form offers: the form field, the scope, and what it
/// allows in a plain sentence.
pub const SCOPE_CHOICES: [(&str, ciq_admin::Scope, &str); 4] = [
    (
        "scope_create",
        ciq_admin::Scope::LeadsCreate,
        "send new leads (web forms, CRMs, scripts)",
    ),
    (
        "scope_read",
        ciq_admin::Scope::LeadsRead,
        "read and list your leads",
    ),
    (
        "scope_write",
        ciq_admin::Scope::LeadsWrite,
        "change and erase your leads",
    ),
    (
        "scope_webhooks",
        ciq_admin::Scope::WebhooksManage,
        "subscribe webhooks through the API (Zapier, n8n; with read)",
    ),
];

/// What a refused generate form had in it (all but the challenge's secret), shown
/// again so nothing typed is lost.
#[derive(Debug, Clone, Default)]
pub struct KeyDraft {
    /// The name typed.
    pub name: String,
    /// The expiry chosen, in days (0: never).
    pub expires_in_days: u32,
    /// The permissions ticked.
    pub scopes: Vec<ciq_admin::Scope>,
    /// The origins typed.
    pub allowed_origins: String,
    /// The visitor limit typed.
    pub visitor_rate_limit: String,
    /// The challenge provider chosen.
    pub challenge: String,
}

/// The keys page.
pub fn keys(
    user: &user::Model,
    keys: &[KeySummary],
    history: &[KeyEventView],
    csrf: &str,
    flash: &Flash,
    (default_limit, default_visitor_limit): (u32, u32),
) -> Markup {
    // Revoked keys never work again: folded away under the ones that do (or did).
    let (revoked, current): (Vec<&KeySummary>, Vec<&KeySummary>) =
        keys.iter().partition(|k| k.status == KeyStatus::Revoked);
    let name_of = |key_id: uuid::Uuid| keys.iter().find(|k| k.id == key_id);
    let draft = flash.key_draft.clone().unwrap_or_else(|| KeyDraft {
        scopes: vec![ciq_admin::Scope::LeadsCreate],
        ..KeyDraft::default()
    });
    layout(
        "API keys",
        Section::ApiKeys,
        signed_in_header(user, csrf),
        html! {
            h1 { "API keys" }
            p.lead { "Keys let your web forms, CRM and scripts create leads in this account through "
                code { "POST /api/external/leads/create" } " with the " code { "X-API-Key" } " header. "
                "Each key allows " (default_limit) " requests per minute unless set otherwise." }
            @if let Some(notice) = &flash.notice { div.notice role="status" { (notice) } }
            @if let Some(error) = &flash.error { div.error role="alert" { (error) } }
            @if let Some((name, key)) = &flash.new_key {
                section.card.newkey aria-labelledby="new-key-title" {
                    h2 #new-key-title { "Your new key “" (name) "”" }
                    p.warn { "Copy this key now. It will not be shown again." }
                    div.keybox {
                        label.muted for="new-key" class="sr-only" { "New API key" }
                        input #new-key type="text" readonly value=(key) aria-describedby="new-key-title";
                        button.secondary type="button" data-copy="new-key" hidden { "Copy" }
                    }
                }
            }
            section.card aria-labelledby="generate-title" {
                h2 #generate-title { "Generate a key" }
                form method="post" action="/settings/api-keys" {
                    input type="hidden" name="csrf" value=(csrf);
                    div.row {
                        div {
                            label for="key-name" { "Name" }
                            input #key-name type="text" name="name" maxlength="100" placeholder="e.g. Website form" value=(draft.name) required;
                        }
                        div {
                            label for="key-expiry" { "Expires" }
                            select #key-expiry name="expires_in_days" {
                                @for (days, label) in EXPIRY_CHOICES { option value=(days) selected[days == draft.expires_in_days] { (label) } }
                            }
                        }
                    }
                    fieldset.scopes {
                        legend { "What the key may do" }
                        @for (field, scope, sentence) in SCOPE_CHOICES {
                            div {
                                input type="checkbox" id=(field) name=(field) value="on" checked[draft.scopes.contains(&scope)];
                                label for=(field) { strong { (scope.as_str()) } " — " (sentence) }
                            }
                        }
                    }
                    // Shown while only "create" is ticked (the page's script hides it
                    // otherwise; without a script it is always there, and the server
                    // says when it does not apply).
                    div #origins-field data-origins-field {
                        label for="allowed-origins" { "Allowed origins " span.muted { "(optional: for a key used by a web page)" } }
                        textarea #allowed-origins name="allowed_origins" rows="2" placeholder="https://www.example.com" aria-describedby="origins-help" { (draft.allowed_origins) }
                        p.muted #origins-help {
                            "One per line, scheme and host (and port, if not the usual one): "
                            code { "https://www.example.com" } ". Pages on these sites may send leads "
                            "with this key from the visitor's browser. The key is then public, so it may only create leads. "
                            "No paths, no wildcards."
                        }
                        label for="visitor-limit" { "Submissions per visitor a minute " span.muted { "(optional: default " (default_visitor_limit) ")" } }
                        input #visitor-limit type="number" name="visitor_rate_limit" min="1" inputmode="numeric" placeholder=(default_visitor_limit) value=(draft.visitor_rate_limit) aria-describedby="visitor-help";
                        p.muted #visitor-help {
                            "How many leads one visitor (one network address) may send through a web page in a minute. "
                            "Bots that try more are refused without using up the key's own "
                            (default_limit) " a minute."
                        }
                        div.row {
                            div {
                                label for="challenge" { "Challenge " span.muted { "(optional)" } }
                                select #challenge name="challenge" aria-describedby="challenge-help" {
                                    option value="" { "None" }
                                    @for provider in ciq_admin::ChallengeProvider::ALL {
                                        option value=(provider.as_str()) selected[provider.as_str() == draft.challenge] { (provider.title()) }
                                    }
                                }
                            }
                            div {
                                label for="challenge-secret" { "Provider's secret key" }
                                input #challenge-secret type="password" name="challenge_secret" autocomplete="off" maxlength="200";
                            }
                        }
                        p.muted #challenge-help {
                            "Every submission must then carry a passed challenge: put the provider's widget in your form "
                            "and send the token it writes in the X-Challenge-Token header. The secret is stored encrypted "
                            "and never shown again."
                        }
                    }
                    // After every field it applies to.
                    div.submit { button type="submit" { "Generate key" } }
                }
            }
            section.card aria-labelledby="keys-title" {
                h2 #keys-title { "Your keys" }
                @if keys.is_empty() {
                    p.muted { "No keys yet. Generate one above." }
                } @else {
                    @if current.is_empty() {
                        p.muted { "No working key: every key was revoked. Generate one above." }
                    } @else {
                        (keys_table(&current, csrf, (default_limit, default_visitor_limit)))
                    }
                    @if !revoked.is_empty() {
                        details.revoked {
                            summary { "Revoked keys (" (revoked.len()) ")" }
                            (keys_table(&revoked, csrf, (default_limit, default_visitor_limit)))
                        }
                    }
                }
            }
            section.card aria-labelledby="history-title" {
                h2 #history-title { "Recent key activity" }
                @if history.is_empty() {
                    p.muted { "Nothing yet." }
                } @else {
                    ul.history {
                        @for event in history {
                            li {
                                strong { (event.kind.as_str()) } " "
                                @if let Some(key) = name_of(event.key_id) {
                                    a href=(format!("{}/{}", ciq_http::routes::SETTINGS_API_KEYS, key.id)) { "“" (key.name) "”" }
                                    " " code { (key.display_prefix) "…" }
                                }
                                " · " (when(Some(event.at))) " · via " (event.source.as_str())
                                @if let Some(address) = &event.address { " from " (address) }
                                @if let Some(detail) = &event.detail { span.muted { " — " (detail) } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The keys table: one row per key, with roll and revoke for the active ones.
fn keys_table(
    keys: &[&KeySummary],
    csrf: &str,
    (default_limit, default_visitor_limit): (u32, u32),
) -> Markup {
    html! {
        table.stacked {
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Key" } th scope="col" { "Status" } th scope="col" { "May" }
                th scope="col" { "Limit / min" } th scope="col" { "Created" } th scope="col" { "Last used" }
                th scope="col" { "Expires" } th scope="col" { span class="sr-only" { "Actions" } }
            } }
            tbody {
                @for key in keys {
                    tr {
                        td data-label="Name" { a href=(format!("{}/{}", ciq_http::routes::SETTINGS_API_KEYS, key.id)) { (key.name) } }
                        td data-label="Key" { code { (key.display_prefix) "…" } }
                        td data-label="Status" { span class=(format!("badge {}", key.status)) { (key.status) } }
                        td data-label="May" {
                            (key.scopes.names().join(", "))
                            @if !key.allowed_origins.is_empty() {
                                br; span.muted { "from " (key.allowed_origins.iter().collect::<Vec<_>>().join(", ")) }
                                br; span.muted { (key.visitor_rate_limit_per_minute.map_or(i64::from(default_visitor_limit), i64::from)) " per visitor a minute" }
                                @if let Some(provider) = key.challenge.as_deref().and_then(ciq_admin::ChallengeProvider::from_name) {
                                    br; span.muted { "challenge: " (provider.title()) }
                                }
                            }
                        }
                        td data-label="Limit / min" { (key.rate_limit_per_minute.map_or_else(|| default_limit.to_string(), |l| l.to_string())) }
                        td data-label="Created" { (when(Some(key.created_at))) }
                        td data-label="Last used" { (when(key.last_used_at)) }
                        td data-label="Expires" { (when(key.expires_at)) }
                        td {
                            @if key.status == KeyStatus::Active {
                                div.actions {
                                    form method="post" action=(format!("/settings/api-keys/{}/roll", key.id)) {
                                        input type="hidden" name="csrf" value=(csrf);
                                        label for=(format!("overlap-{}", key.id)) class="sr-only" { "Old key stops" }
                                        select id=(format!("overlap-{}", key.id)) name="overlap_seconds" {
                                            @for (secs, label) in ROLL_OVERLAPS {
                                                // A day of overlap by default: integrations keep working while they switch.
                                                option value=(secs) selected[secs == 86_400] { "Old key: " (label.to_lowercase()) }
                                            }
                                        }
                                        " "
                                        button.secondary type="submit" aria-label=(format!("Roll {}", key.name)) { "Roll" }
                                    }
                                    a.button.danger href=(format!("/settings/api-keys/{}/revoke", key.id)) aria-label=(format!("Revoke {}", key.name)) { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// "Revoke this key?" with the form that does it.
pub fn confirm_revoke(key: &api_key::Model, csrf: &str) -> Markup {
    layout(
        "Revoke key",
        Section::ApiKeys,
        html! {},
        html! {
            section.card.narrow.stack {
                h1 { "Revoke “" (key.name) "”?" }
                p { "Requests with " code { (key.display_prefix) "…" } " will be refused within a second, everywhere. This cannot be undone." }
                form method="post" action=(format!("/settings/api-keys/{}/revoke", key.id)) {
                    input type="hidden" name="csrf" value=(csrf);
                    div.actions {
                        button.danger type="submit" { "Revoke key" }
                        a.button.secondary href="/settings/api-keys" { "Cancel" }
                    }
                }
            }
        },
    )
}
