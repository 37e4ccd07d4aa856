//! The Settings pages' HTML (maud escapes every value): the page around every page and
//! what several pages share here, each resource's pages in a module of its own with the
//! choices its forms offer.

pub mod chart;
pub mod dashboard;
pub mod imports;
pub mod keys;
pub mod leads;
pub mod session;
pub mod usage;
pub mod webhooks;

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use poem::Response;
use poem::http::{StatusCode, header};

use ciq_entity::user;

pub use session::sign_out;

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

/// What a page shows besides its content after a form: a secret to copy this once, a
/// confirmation, or what was wrong with the form.
#[derive(Default)]
pub struct Flash {
    /// A key to show this once: (name, full key).
    pub new_key: Option<(String, String)>,
    /// A confirmation line.
    pub notice: Option<String>,
    /// A problem with the last form.
    pub error: Option<String>,
    /// The key form as it was refused, to show it again (the keys page).
    pub key_draft: Option<keys::KeyDraft>,
    /// The endpoint form as it was refused (its URL and the events ticked), to show it
    /// again (the webhooks page).
    pub webhook_draft: Option<(String, Vec<String>)>,
}

const STYLE: &str = r#"
.sr-only { position:absolute; left:-9999px; }
fieldset.scopes { border:0; padding:0; margin:.75rem 0 0; } fieldset.scopes div { margin:.25rem 0; display:flex; gap:8px; align-items:baseline; }
fieldset.scopes div label { display:inline; font-weight:400; margin:0; }
fieldset.scopes div label strong { font-weight:600; }
:root { --ink:#1d2433; --muted:#5b6477; --line:#e3e7ee; --brand:#3b5bdb; --bg:#f6f8fb; --ok:#1f6e30; --bad:#c92a2a; --warn:#9a4700; }
* { box-sizing: border-box; }
body { margin:0; font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--ink); background:var(--bg); }
header { background:#fff; border-bottom:1px solid var(--line); }
.bar { max-width:1040px; margin:0 auto; padding:14px 24px; display:flex; align-items:center; gap:16px; }
.brand { font-weight:700; font-size:18px; color:var(--brand); }
.crumb { color:var(--muted); }
.who { margin-left:auto; display:flex; gap:8px; align-items:center; flex-wrap:wrap; justify-content:flex-end; }
.who button { font-size:14px; padding:5px 10px; }
nav.sections { display:flex; flex-wrap:wrap; gap:2px; }
nav.sections a { white-space:nowrap; padding:6px 8px; border-radius:6px; color:var(--ink); text-decoration:none; font-weight:600; }
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
input[type=text], input[type=email], input[type=tel], input[type=search], input[type=password], input[type=date], input[type=number], select, textarea { font:inherit; padding:8px 10px; border:1px solid #c5ccd8; border-radius:6px; min-width:220px; }
input:focus, select:focus, button:focus, a:focus { outline:3px solid #a5b8ff; outline-offset:1px; }
.row { display:flex; gap:16px; align-items:flex-end; flex-wrap:wrap; }
button, .button { font:inherit; font-weight:600; padding:8px 14px; border-radius:6px; border:1px solid var(--brand); background:var(--brand); color:#fff; cursor:pointer; text-decoration:none; display:inline-block; }
button.secondary, .button.secondary { background:#fff; color:var(--brand); }
button.danger, .button.danger { background:#fff; color:var(--bad); border-color:var(--bad); }
form.inline { display:inline-block; margin:0 0 0 .5rem; }
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
td.problem { color:var(--bad); min-width:14em; }
td.ok { color:var(--ok); }
td.fault { background:#fff5f5; color:var(--bad); font-weight:600; box-shadow:inset 0 0 0 1px #ffc9c9; }
svg.outcome { width:100%; height:14px; display:block; border-radius:4px; background:var(--line); margin:8px 0 12px; }
figure.chart { margin:0; }
figure.chart figcaption { font-weight:600; margin-bottom:8px; }
.plot { display:flex; gap:8px; }
.plot svg { flex:1; min-width:0; height:160px; display:block; }
.yaxis { display:flex; flex-direction:column; justify-content:space-between; height:160px; min-width:3em; font-size:12px; color:var(--muted); text-align:right; line-height:1; }
.xaxis { display:flex; justify-content:space-between; gap:8px; margin:4px 0 0 calc(3em + 8px); font-size:12px; color:var(--muted); }
line.grid { stroke:var(--line); stroke-width:1; vector-effect:non-scaling-stroke; }
.bar-ok { fill:#2f9e44; background:#2f9e44; }
.bar-client { fill:#e67700; background:#e67700; }
.bar-limited { fill:#7048e8; background:#7048e8; }
.bar-server { fill:#e03131; background:#e03131; }
.bar-brand { fill:#3b5bdb; background:#3b5bdb; }
ul.legend { list-style:none; display:flex; flex-wrap:wrap; gap:4px 16px; padding:0; margin:8px 0 0; font-size:13px; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:6px; }
details.figures { margin-top:8px; font-size:14px; }
details.revoked { margin-top:16px; }
div.submit { margin-top:16px; }
input.wide { width:560px; max-width:100%; }
details.revoked summary { cursor:pointer; color:#2541b2; font-weight:600; }
details.figures summary { cursor:pointer; color:#2541b2; }
.tiles { display:grid; grid-template-columns:repeat(auto-fit, minmax(150px, 1fr)); gap:12px; margin-bottom:16px; }
.tile { border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.tile b { display:block; font-size:22px; }
.tile span { color:var(--muted); font-size:13px; }
nav.ranges { display:flex; gap:4px; flex-wrap:wrap; }
nav.ranges a { padding:4px 10px; border-radius:6px; border:1px solid var(--line); color:var(--ink); text-decoration:none; font-size:14px; }
nav.ranges a[aria-current=true] { background:#e8edff; border-color:#a5b8ff; color:#2541b2; font-weight:600; }
.status-4 { color:var(--warn); font-weight:600; }
.count { margin:2px 0 0; font-size:14px; }
form.filters div.search input { min-width:260px; }
input[type=search] { font:inherit; padding:8px 10px; border:1px solid #c5ccd8; border-radius:6px; }
div.bulk { display:flex; gap:8px 12px; align-items:center; flex-wrap:wrap; margin-bottom:8px; }
div.bulk label { margin:0; font-weight:600; font-size:14px; }
td.tick, th:first-child { width:32px; }
.pill { font-size:12px; font-weight:600; padding:2px 8px; border-radius:999px; background:#eef1f6; color:var(--ink); white-space:nowrap; }
.pill.status-new { background:#e8edff; color:#2541b2; }
.pill.status-contacted { background:#fff4e6; color:var(--warn); }
.pill.status-qualified { background:#ebfbee; color:var(--ok); }
.pill.status-lost { background:#f1f3f5; color:var(--muted); }
form.status { display:flex; gap:8px 12px; align-items:center; flex-wrap:wrap; margin:0 0 16px; }
form.status label { margin:0; }
form.edit .grid { display:grid; grid-template-columns:repeat(2, minmax(0, 1fr)); gap:14px 20px; }
form.edit .grid .wide { grid-column:1 / -1; }
form.edit .grid input, form.edit .grid select, form.edit .grid textarea { width:100%; min-width:0; max-width:none; }
p.problem { color:var(--bad); margin:4px 0 0; font-size:14px; }
fieldset.filter { border:0; padding:0; margin:0; }
fieldset.filter legend { font-weight:600; }
legend span.muted { font-weight:400; }
details.payload { margin-top:4px; }
details.payload summary { cursor:pointer; color:#2541b2; font-size:13px; }
details.payload pre { max-height:320px; overflow:auto; }
div.condition { display:grid; grid-template-columns:minmax(0,1fr) minmax(0,1.3fr) minmax(0,1.5fr); gap:8px 12px; margin-top:8px; }
div.condition label { font-weight:400; font-size:13px; color:var(--muted); }
div.condition select, div.condition input { width:100%; min-width:0; }
[aria-invalid=true] { border-color:var(--bad); }
.status-5 { color:var(--bad); font-weight:600; }
/* A phone's width: nothing scrolls sideways; each table row becomes a card of labelled values. */
@media (max-width: 640px) {
  .bar { flex-wrap:wrap; padding:12px 16px; gap:10px; }
  main { padding:16px; }
  section.card { padding:16px; }
  input[type=text], input[type=email], input[type=tel], input[type=search], input[type=password], input[type=date], input[type=number], select, textarea { min-width:0; width:100%; }
  .row > div, form.filters > div { flex:1 1 100%; }
  table.stacked, table.stacked tbody, table.stacked tr, table.stacked td { display:block; }
  table.stacked thead { position:absolute; left:-9999px; }
  table.stacked tr { border-bottom:1px solid var(--line); padding:8px 0; }
  table.stacked td { border:0; padding:3px 0; overflow-wrap:anywhere; }
  table.stacked td[data-label]::before { content:attr(data-label); display:block; font-size:12px; color:var(--muted); font-weight:600; }
  dl.fields { grid-template-columns:1fr; }
  form.edit .grid { grid-template-columns:1fr; }
  div.condition { grid-template-columns:1fr; border-top:1px solid var(--line); padding-top:8px; }
  form.filters div.search input, input[type=search] { min-width:0; width:100%; }
  table.stacked td.tick { float:right; }
  dl.fields dd { margin-bottom:6px; }
  .newkey .keybox { flex-wrap:wrap; }
}
"#;

const COPY_SCRIPT: &str = r#"
var originsField = document.querySelector('[data-origins-field]');
if (originsField) {
  var boxes = ['scope_create', 'scope_read', 'scope_write', 'scope_webhooks'].map(function (id) { return document.getElementById(id); });
  var onlyCreate = function () { return boxes[0].checked && boxes.slice(1).every(function (box) { return !box.checked; }); };
  var sync = function () {
    originsField.hidden = !onlyCreate();
    document.getElementById('allowed-origins').disabled = !onlyCreate();
  };
  boxes.forEach(function (box) { box.addEventListener('change', sync); });
  sync();
}
document.querySelectorAll('[data-select-all]').forEach(function (all) {
  all.hidden = false;
  all.addEventListener('change', function () {
    all.form.querySelectorAll('input[data-lead]').forEach(function (box) { box.checked = all.checked; });
  });
});
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

impl Flash {
    /// A refused form's flash: what was wrong with it.
    pub fn refused(problem: impl Into<String>) -> Self {
        Self {
            error: Some(problem.into()),
            ..Self::default()
        }
    }

    /// The page's status with this flash: 422 when a form was refused, 201 when it
    /// shows a new key or secret, 200 otherwise.
    pub fn status(&self) -> StatusCode {
        if self.error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else if self.new_key.is_some() {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        }
    }
}

/// Which part of Settings a page belongs to (the header's navigation marks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Pages outside Settings (home, sign-in, messages).
    None,
    /// Settings → Overview.
    Overview,
    /// Settings → API Key.
    ApiKeys,
    /// Settings → Leads.
    Leads,
    /// Settings → Webhooks.
    Webhooks,
    /// Settings → Account (the owner's name in the header leads there).
    Account,
}

/// How the header names the signed-in owner: their name, else their email.
pub(crate) fn owner_name(user: &user::Model) -> String {
    user.name.clone().unwrap_or_else(|| user.email.clone())
}

/// The header's right side on a signed-in page: who, and the sign-out buttons.
pub(crate) fn signed_in_header(user: &user::Model, csrf: &str) -> Markup {
    html! { a.muted href=(ciq_http::routes::SETTINGS_ACCOUNT) title="Your account and password" { (owner_name(user)) } (sign_out(csrf)) }
}

/// An HTML answer.
pub(crate) fn page(status: StatusCode, body: Markup) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .body(body.into_string())
}

/// 303 to `to`.
pub(crate) fn redirect(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .finish()
}

pub(crate) fn layout(title: &str, section: Section, header_extra: Markup, body: Markup) -> Markup {
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
                            a href="/settings" aria-current=[(section == Section::Overview).then_some("page")] { "Overview" }
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

/// A count with its thousands grouped (`25,299`), as the pages show totals.
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A time as the pages show it (UTC, to the minute; "—" for none).
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

/// A page with a `Retry-After` of `seconds`.
pub fn come_back(status: StatusCode, title: &str, text: &str, seconds: u64) -> Response {
    let mut resp = page(status, message(title, text));
    resp.headers_mut().insert(
        poem::http::header::RETRY_AFTER,
        poem::http::HeaderValue::from(seconds),
    );
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(super::grouped(0), "0");
        assert_eq!(super::grouped(999), "999");
        assert_eq!(super::grouped(25_299), "25,299");
        assert_eq!(super::grouped(1_000_000), "1,000,000");
    }
}
