//! The Settings pages' HTML (maud escapes every value), with the choices their
//! forms offer.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use ciq_admin::keys::{KeyEventView, KeyStatus, KeySummary};
use ciq_entity::{api_key, user};

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

/// The pages' Content-Security-Policy: nothing but their own one stylesheet and one
/// script, named by hash (no `'unsafe-inline'`), forms only to this origin, never framed.
pub fn content_security_policy() -> &'static str {
    static POLICY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        use base64::Engine;
        use sha2::Digest;
        let hash = |text: &str| {
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()))
        };
        format!(
            "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            hash(STYLE),
            hash(COPY_SCRIPT)
        )
    })
}

/// The permissions the generate form offers: the form field, the scope, and what it
/// allows in a plain sentence.
pub const SCOPE_CHOICES: [(&str, ciq_admin::Scope, &str); 3] = [
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
];

/// What the keys page shows besides the list.
#[derive(Default)]
pub struct Flash {
    /// A key to show this once: (name, full key).
    pub new_key: Option<(String, String)>,
    /// A confirmation line.
    pub notice: Option<String>,
    /// A problem with the last form.
    pub error: Option<String>,
}

const STYLE: &str = r#"
.sr-only { position:absolute; left:-9999px; }
fieldset.scopes { border:0; padding:0; margin:.75rem 0 0; } fieldset.scopes div { margin:.25rem 0; }
:root { --ink:#1d2433; --muted:#5b6477; --line:#e3e7ee; --brand:#3b5bdb; --bg:#f6f8fb; --ok:#1f6e30; --bad:#c92a2a; --warn:#9a4700; }
* { box-sizing: border-box; }
body { margin:0; font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--ink); background:var(--bg); }
header { background:#fff; border-bottom:1px solid var(--line); }
.bar { max-width:1040px; margin:0 auto; padding:14px 24px; display:flex; align-items:center; gap:16px; }
.brand { font-weight:700; font-size:18px; color:var(--brand); }
.crumb { color:var(--muted); }
.who { margin-left:auto; display:flex; gap:8px; align-items:center; flex-wrap:wrap; }
nav.sections { display:flex; gap:4px; }
nav.sections a { padding:6px 10px; border-radius:6px; color:var(--ink); text-decoration:none; font-weight:600; }
nav.sections a[aria-current=page] { background:#e8edff; color:#2541b2; }
form.filters { display:flex; gap:12px 16px; flex-wrap:wrap; align-items:flex-end; }
form.filters input, form.filters select { min-width:0; }
.headline { display:flex; justify-content:space-between; align-items:center; gap:12px; flex-wrap:wrap; margin-bottom:12px; }
.headline h2 { margin:0; }
nav.pager { display:flex; gap:8px; margin-top:12px; flex-wrap:wrap; }
dl.fields { display:grid; grid-template-columns:max-content 1fr; gap:6px 16px; margin:0; }
dl.fields dt { font-weight:600; color:var(--muted); }
dl.fields dd { margin:0; overflow-wrap:anywhere; white-space:pre-wrap; }
td a { color:#2541b2; }
main { max-width:1040px; margin:0 auto; padding:24px; }
h1 { font-size:26px; margin:0 0 4px; }
h2 { font-size:18px; margin:0 0 12px; }
p.lead { color:var(--muted); margin:0 0 24px; }
section.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:20px 24px; margin-bottom:20px; }
label { display:block; font-weight:600; margin-bottom:4px; }
input[type=text], input[type=email], input[type=password], input[type=date], select, textarea { font:inherit; padding:8px 10px; border:1px solid #c5ccd8; border-radius:6px; min-width:220px; }
input:focus, select:focus, button:focus, a:focus { outline:3px solid #a5b8ff; outline-offset:1px; }
.row { display:flex; gap:16px; align-items:flex-end; flex-wrap:wrap; }
button, .button { font:inherit; font-weight:600; padding:8px 14px; border-radius:6px; border:1px solid var(--brand); background:var(--brand); color:#fff; cursor:pointer; text-decoration:none; display:inline-block; }
button.secondary, .button.secondary { background:#fff; color:var(--brand); }
button.danger, .button.danger { background:#fff; color:var(--bad); border-color:var(--bad); }
table { width:100%; border-collapse:collapse; font-size:14px; }
th, td { text-align:left; padding:10px 8px; border-bottom:1px solid var(--line); vertical-align:middle; }
th { color:var(--muted); font-weight:600; }
code { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:13px; }
.badge { font-size:12px; font-weight:700; padding:2px 8px; border-radius:999px; }
.badge.active { background:#ebfbee; color:var(--ok); }
.badge.revoked { background:#fff5f5; color:var(--bad); }
.badge.expired { background:#fff4e6; color:var(--warn); }
.actions { display:flex; gap:8px; align-items:center; flex-wrap:wrap; }
.actions select { min-width:0; font-size:14px; padding:5px 6px; }
.actions button, .actions .button { font-size:14px; padding:5px 10px; }
.notice { border-left:4px solid var(--ok); background:#fff; padding:12px 16px; margin-bottom:20px; border-radius:6px; }
.error { border-left:4px solid var(--bad); background:#fff; padding:12px 16px; margin-bottom:20px; border-radius:6px; }
.newkey { border:2px solid var(--brand); }
.newkey .keybox { display:flex; gap:8px; }
.newkey input { flex:1; font-family:ui-monospace,monospace; font-size:14px; }
.warn { color:var(--bad); font-weight:600; }
ul.history { list-style:none; padding:0; margin:0; font-size:14px; }
ul.history li { padding:6px 0; border-bottom:1px solid var(--line); }
.muted { color:var(--muted); }
.narrow { max-width:420px; margin:48px auto; }
.narrow input { width:100%; }
.stack > * + * { margin-top:14px; }
textarea { width:100%; max-width:560px; }
progress { width:100%; height:18px; }
pre { white-space:pre-wrap; overflow-wrap:anywhere; background:var(--bg); border:1px solid var(--line); border-radius:6px; padding:12px; font-size:13px; }
fieldset.scopes legend { font-weight:600; }
.scroll { overflow-x:auto; }
table.mapping select { min-width:0; }
td.problem { color:var(--bad); }
/* A phone's width: nothing scrolls sideways; each table row becomes a card of labelled values. */
@media (max-width: 640px) {
  .bar { flex-wrap:wrap; padding:12px 16px; gap:10px; }
  main { padding:16px; }
  section.card { padding:16px; }
  input[type=text], input[type=email], input[type=password], input[type=date], select, textarea { min-width:0; width:100%; }
  .row > div, form.filters > div { flex:1 1 100%; }
  table.stacked, table.stacked tbody, table.stacked tr, table.stacked td { display:block; }
  table.stacked thead { position:absolute; left:-9999px; }
  table.stacked tr { border-bottom:1px solid var(--line); padding:8px 0; }
  table.stacked td { border:0; padding:3px 0; overflow-wrap:anywhere; }
  table.stacked td[data-label]::before { content:attr(data-label); display:block; font-size:12px; color:var(--muted); font-weight:600; }
  dl.fields { grid-template-columns:1fr; }
  dl.fields dd { margin-bottom:6px; }
  .newkey .keybox { flex-wrap:wrap; }
}
"#;

const COPY_SCRIPT: &str = r#"
var originsField = document.querySelector('[data-origins-field]');
if (originsField) {
  var boxes = ['scope_create', 'scope_read', 'scope_write'].map(function (id) { return document.getElementById(id); });
  var onlyCreate = function () { return boxes[0].checked && !boxes[1].checked && !boxes[2].checked; };
  var sync = function () {
    originsField.hidden = !onlyCreate();
    document.getElementById('allowed-origins').disabled = !onlyCreate();
  };
  boxes.forEach(function (box) { box.addEventListener('change', sync); });
  sync();
}
document.querySelectorAll('[data-copy]').forEach(function (button) {
  button.hidden = false;
  button.addEventListener('click', function () {
    var field = document.getElementById(button.getAttribute('data-copy'));
    field.select();
    var done = function () { button.textContent = 'Copied'; };
    if (navigator.clipboard) { navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand('copy'); done(); }); }
    else { document.execCommand('copy'); done(); }
  });
});
"#;

/// Which part of Settings a page belongs to (the header's navigation marks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Pages outside Settings (home, sign-in, messages).
    None,
    /// Settings → API Key.
    ApiKeys,
    /// Settings → Leads.
    Leads,
    /// Settings → Webhooks.
    Webhooks,
}

pub(crate) fn owner_name(user: &user::Model) -> String {
    user.name.clone().unwrap_or_else(|| user.email.clone())
}

fn layout(title: &str, section: Section, header_extra: Markup, body: Markup) -> Markup {
    layout_refreshing(title, section, header_extra, body, None)
}

/// [`layout`] of a page that reloads itself every `refresh` seconds (a running
/// import's progress; no script needed).
pub(crate) fn layout_refreshing(
    title: &str,
    section: Section,
    header_extra: Markup,
    body: Markup,
    refresh: Option<u32>,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
                title { (title) " · ConvertIQ" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { div.bar {
                    span.brand { "ConvertIQ" }
                    @if section != Section::None {
                        nav.sections aria-label="Settings" {
                            a href="/settings/api-keys" aria-current=[(section == Section::ApiKeys).then_some("page")] { "API keys" }
                            a href="/settings/leads" aria-current=[(section == Section::Leads).then_some("page")] { "Leads" }
                            a href="/settings/webhooks" aria-current=[(section == Section::Webhooks).then_some("page")] { "Webhooks" }
                        }
                    }
                    div.who { (header_extra) }
                } }
                main { (body) }
                script { (PreEscaped(COPY_SCRIPT)) }
            }
        }
    }
}

pub(crate) fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "—".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// A page with a title and one paragraph (errors, confirmations).
pub fn message(title: &str, text: &str) -> Markup {
    layout(
        title,
        Section::None,
        html! {},
        html! {
            section.card.narrow.stack {
                h1 { (title) }
                p { (text) }
                p { a.button.secondary href="/settings/api-keys" { "Back to API keys" } }
            }
        },
    )
}

/// `GET /`: what this server is and where to go.
pub fn home() -> Markup {
    layout(
        "ConvertIQ lead gateway",
        Section::None,
        html! {},
        html! {
            section.card.narrow.stack {
                h1 { "ConvertIQ lead gateway" }
                p { "This server takes leads from web forms, CRMs and scripts into ConvertIQ accounts." }
                ul {
                    li { a href="/docs" { "API documentation" } " — create leads with your API key (Swagger UI, with Try it out)." }
                    li { a href="/settings/api-keys" { "Settings → API Key" } " — sign in to generate, roll and revoke your keys." }
                }
            }
        },
    )
}

/// The sign-in form.
pub fn login(csrf: &str, notice: Option<&str>, email: &str) -> Markup {
    layout(
        "Sign in",
        Section::None,
        html! {},
        html! {
            section.card.narrow {
                h1 { "Sign in" }
                p.lead { "Manage the API keys of your ConvertIQ account." }
                @if let Some(notice) = notice {
                    div.error role="alert" { (notice) }
                }
                form.stack method="post" action="/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    div {
                        label for="email" { "Email" }
                        input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
                    }
                    div {
                        label for="password" { "Password" }
                        input #password type="password" name="password" autocomplete="current-password" required;
                    }
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

pub(crate) fn sign_out(csrf: &str) -> Markup {
    html! {
        form method="post" action="/logout" {
            input type="hidden" name="csrf" value=(csrf);
            button.secondary type="submit" { "Sign out" }
        }
        form method="post" action="/logout/everywhere" {
            input type="hidden" name="csrf" value=(csrf);
            button.secondary type="submit" title="Ends every session of this account, on every device" { "Sign out everywhere" }
        }
    }
}

/// The keys page.
pub fn keys(
    user: &user::Model,
    keys: &[KeySummary],
    history: &[KeyEventView],
    csrf: &str,
    flash: &Flash,
    default_limit: u32,
) -> Markup {
    layout(
        "API keys",
        Section::ApiKeys,
        html! { span.muted { (owner_name(user)) } (sign_out(csrf)) },
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
                            input #key-name type="text" name="name" maxlength="100" placeholder="e.g. Website form" required;
                        }
                        div {
                            label for="key-expiry" { "Expires" }
                            select #key-expiry name="expires_in_days" {
                                @for (days, label) in EXPIRY_CHOICES { option value=(days) { (label) } }
                            }
                        }
                        button type="submit" { "Generate key" }
                    }
                    fieldset.scopes {
                        legend { "What the key may do" }
                        @for (field, scope, sentence) in SCOPE_CHOICES {
                            div {
                                input type="checkbox" id=(field) name=(field) value="on" checked[scope == ciq_admin::Scope::LeadsCreate];
                                " "
                                label for=(field) { strong { (scope.as_str()) } " — " (sentence) }
                            }
                        }
                    }
                    // Shown while only "create" is ticked (the page's script hides it
                    // otherwise; without a script it is always there, and the server
                    // says when it does not apply).
                    div #origins-field data-origins-field {
                        label for="allowed-origins" { "Allowed origins " span.muted { "(optional: for a key used by a web page)" } }
                        textarea #allowed-origins name="allowed_origins" rows="2" placeholder="https://www.example.com" aria-describedby="origins-help" {}
                        p.muted #origins-help {
                            "One per line, scheme and host (and port, if not the usual one): "
                            code { "https://www.example.com" } ". Pages on these sites may send leads "
                            "with this key from the visitor's browser. The key is then public, so it may only create leads. "
                            "No paths, no wildcards."
                        }
                    }
                }
            }
            section.card aria-labelledby="keys-title" {
                h2 #keys-title { "Your keys" }
                @if keys.is_empty() {
                    p.muted { "No keys yet. Generate one above." }
                } @else {
                    table.stacked {
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "Key" } th scope="col" { "Status" } th scope="col" { "May" }
                            th scope="col" { "Limit / min" } th scope="col" { "Created" } th scope="col" { "Last used" }
                            th scope="col" { "Expires" } th scope="col" { span class="sr-only" { "Actions" } }
                        } }
                        tbody {
                            @for key in keys {
                                tr {
                                    td data-label="Name" { (key.name) }
                                    td data-label="Key" { code { (key.display_prefix) "…" } }
                                    td data-label="Status" { span class=(format!("badge {}", key.status)) { (key.status) } }
                                    td data-label="May" {
                                        (key.scopes.names().join(", "))
                                        @if !key.allowed_origins.is_empty() {
                                            br; span.muted { "from " (key.allowed_origins.iter().collect::<Vec<_>>().join(", ")) }
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
            section.card aria-labelledby="history-title" {
                h2 #history-title { "Recent key activity" }
                @if history.is_empty() {
                    p.muted { "Nothing yet." }
                } @else {
                    ul.history {
                        @for event in history {
                            li {
                                strong { (event.kind.as_str()) } " · " (when(Some(event.at))) " · via " (event.source.as_str())
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

/// What the leads page shows.
pub struct LeadsView<'a> {
    /// The filters as sent (the form shows them again).
    pub query: &'a crate::leads::LeadsQuery,
    /// The owner's keys, for the key filter and the key column.
    pub keys: &'a [KeySummary],
    /// This page's leads.
    pub leads: &'a [ciq_leads::Lead],
    /// The next page's cursor, if more follow.
    pub next: Option<&'a str>,
    /// Broken filters: (field label, rule).
    pub problems: &'a [(&'static str, String)],
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
        html! { span.muted { (owner_name(user)) } (sign_out(csrf)) },
        html! {
            h1 { "Leads" }
            p.lead { "Every lead your keys sent into this account, newest first." }
            @for (label, rule) in view.problems {
                div.error role="alert" { (label) ": " (rule) }
            }
            section.card aria-labelledby="filter-title" {
                h2 #filter-title { "Filter" }
                form.filters method="get" action="/settings/leads" {
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
                    h2 #leads-title { "Your leads" }
                    div.actions {
                        a.button.secondary #import href=(ciq_http::routes::SETTINGS_LEADS_IMPORTS) { "Import CSV" }
                        a.button.secondary #export href=(format!("/settings/leads/export.csv{}", if filters.is_empty() { String::new() } else { format!("?{filters}") })) download { "Export CSV" }
                    }
                }
                @if view.leads.is_empty() {
                    p.muted { @if query.cursor.is_empty() { "No leads match." } @else { "No more leads." } }
                } @else {
                    table.stacked {
                        thead { tr {
                            th scope="col" { "Created" } th scope="col" { "Name" } th scope="col" { "Email" }
                            th scope="col" { "Source" } th scope="col" { "Status" } th scope="col" { "Key" }
                        } }
                        tbody {
                            @for lead in view.leads {
                                tr {
                                    td data-label="Created" { (when(Some(lead.created_at))) }
                                    td data-label="Name" { a href=(format!("/settings/leads/{}", lead.id)) { (lead.name) } }
                                    td data-label="Email" { (lead.email) }
                                    td data-label="Source" { (lead.source) }
                                    td data-label="Status" { (lead.status.as_str()) }
                                    td data-label="Key" { (key_name(lead.api_key_id)) }
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

/// One lead, every field.
pub fn lead_detail(
    user: &user::Model,
    csrf: &str,
    lead: &ciq_leads::Lead,
    key: Option<&str>,
) -> Markup {
    let money = |m: Option<ciq_leads::Money>| {
        m.map_or_else(|| "—".to_owned(), |m| m.to_number().to_string())
    };
    let text = |t: &Option<String>| t.clone().unwrap_or_else(|| "—".to_owned());
    let fields: Vec<(&str, String)> = vec![
        ("Email", lead.email.clone()),
        ("Phone", text(&lead.phone)),
        ("Source", lead.source.clone()),
        ("Industry", lead.industry.clone()),
        ("Status", lead.status.as_str().to_owned()),
        (
            "Score",
            lead.score.map_or_else(|| "—".to_owned(), |s| s.to_string()),
        ),
        ("Monthly revenue", money(lead.monthly_revenue)),
        ("Budget", money(lead.budget)),
        ("Description", text(&lead.description)),
        ("External id", text(&lead.external_id)),
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
    ];
    layout(
        &lead.name,
        Section::Leads,
        html! { span.muted { (owner_name(user)) } (sign_out(csrf)) },
        html! {
            p { a href="/settings/leads" { "← All leads" } }
            section.card aria-labelledby="lead-title" {
                h1 #lead-title { (lead.name) }
                dl.fields {
                    @for (label, value) in &fields {
                        dt { (label) }
                        dd { (value) }
                    }
                }
            }
        },
    )
}
