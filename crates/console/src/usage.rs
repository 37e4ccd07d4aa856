//! Settings → API Key → a key: its usage over 24 hours, 7 days or 30 days (a chart of
//! its answers by outcome, with totals) and its request log, each exportable as CSV;
//! and its settings (name, limits, origins, challenge), which its owner may change.
//! The key is found in the owner's account (another owner's key is "not found"), and
//! every read names the account in its query.

use std::sync::Arc;

use chrono::Utc;
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Query};
use poem::{Request, Response, Route, get, handler, post};
use serde::Deserialize;

use ciq_admin::AdminError;
use ciq_admin::keys::{self, KeySummary};
use ciq_entity::api_key;
use ciq_http::routes::SETTINGS_API_KEYS;
use ciq_usage::KeyRef;
use ciq_usage::query::{self, Of, StatusFilter, Window};

use crate::extract::{Owned, OwnedForm, PageError, SignedIn};
use crate::leads::{cell, csv_bytes};
use crate::middleware::page;
use crate::state::ConsoleState;
use crate::views::usage::{self as view, KeyPage, LOG_FILTERS, Range};
use crate::views::{self, Flash};

/// Rows of the request log a key page shows at once.
pub const LOG_PAGE: u64 = 25;

/// The usage pages' routes.
pub(crate) fn routes(route: Route, state: &Arc<ConsoleState>) -> Route {
    route
        .at(
            format!("{SETTINGS_API_KEYS}/:key_id"),
            page(state, get(key_page)),
        )
        .at(
            format!("{SETTINGS_API_KEYS}/:key_id/settings"),
            page(state, post(save_settings)),
        )
        .at(
            format!("{SETTINGS_API_KEYS}/:key_id/usage.csv"),
            page(state, get(usage_csv)),
        )
        .at(
            format!("{SETTINGS_API_KEYS}/:key_id/requests.csv"),
            page(state, get(requests_csv)),
        )
}

/// The key page's parameters, as sent.
#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    range: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

/// What a key page's parameters say, or the first one that is broken (label, rule).
struct Asked {
    range: Range,
    status: Option<StatusFilter>,
    status_param: &'static str,
    cursor: Option<uuid::Uuid>,
}

impl PageQuery {
    /// What the parameters ask for; a broken one is its page (422) naming it.
    fn asked(&self) -> Result<Asked, PageError> {
        self.parse()
            .map_err(|(label, rule)| PageError::from(refused(label, &rule)))
    }

    fn parse(&self) -> Result<Asked, (&'static str, String)> {
        let range = match self.range.as_deref().unwrap_or("").trim() {
            "" => Range::Day,
            text => Range::parse(text)
                .ok_or(("Span", "choose 24 hours, 7 days or 30 days".to_owned()))?,
        };
        let text = self.status.as_deref().unwrap_or("").trim();
        let (status_param, _) = LOG_FILTERS
            .iter()
            .find(|(param, _)| *param == text)
            .ok_or(("Show", "choose one of the filters offered".to_owned()))?;
        let status = match *status_param {
            "" => None,
            param => Some(StatusFilter::parse(param).expect("the filters offered parse")),
        };
        let cursor = match self
            .cursor
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            None => None,
            Some(text) => Some(query::cursor(text).map_err(|_| {
                (
                    "Page",
                    "that page link is not one this page gave; start from the newest".to_owned(),
                )
            })?),
        };
        Ok(Asked {
            range,
            status,
            status_param,
            cursor,
        })
    }
}

fn key_ref(key: &api_key::Model) -> KeyRef {
    KeyRef {
        key_id: key.id,
        user_id: key.user_id,
    }
}

/// A refused parameter's page (422).
fn refused(label: &str, rule: &str) -> Response {
    views::page(
        StatusCode::UNPROCESSABLE_ENTITY,
        views::message("Not shown", &format!("{label}: {rule}")),
    )
}

/// The buckets of `range` for `key` up to now, every one of them (zero where nothing
/// was counted).
async fn range_buckets(
    state: &ConsoleState,
    req: &Request,
    key: KeyRef,
    range: Range,
) -> Result<Vec<(chrono::DateTime<Utc>, ciq_usage::Counts)>, PageError> {
    let now = Utc::now();
    let (from, to) = view::window_of(range, now);
    let window = Window::new(range.interval(), Some(from), Some(to), now)
        .expect("a page's ranges are windows");
    let stored = state
        .lists_for(req)
        .read(|db| async move { query::buckets(&db, Of::Key(key), &window).await })
        .await?;
    Ok(view::fill(range, now, &stored))
}

/// `GET /settings/api-keys/{id}`: the key, its usage and its request log.
#[handler]
async fn key_page(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    query: Query<PageQuery>,
    owned: Owned<api_key::Model>,
) -> Result<Response, PageError> {
    let asked = query.asked()?;
    let shown = Shown {
        flash: Flash::default(),
        draft: None,
    };
    render_key_page(&state, req, &owned.signed_in, owned.row, &asked, shown).await
}

/// What a key page shows besides the key: what the last form did, and a refused
/// settings form as it was sent.
struct Shown {
    flash: Flash,
    draft: Option<view::SettingsDraft>,
}

/// A key's page: its usage over `asked`'s span and its request log.
async fn render_key_page(
    state: &ConsoleState,
    req: &Request,
    signed_in: &SignedIn,
    row: api_key::Model,
    asked: &Asked,
    shown: Shown,
) -> Result<Response, PageError> {
    let user = signed_in.owner(state).await?;
    let key = key_ref(&row);
    let buckets = range_buckets(state, req, key, asked.range).await?;
    let (cursor, status) = (asked.cursor, asked.status);
    let log = state
        .lists_for(req)
        .read(|db| async move { query::requests(&db, key, LOG_PAGE, cursor, status).await })
        .await?;
    let summary = KeySummary::from(row);
    let markup = view::key_page(&KeyPage {
        user: &user,
        csrf: &signed_in.session.csrf_token,
        key: &summary,
        default_limit: state.default_limit_per_window,
        default_visitor_limit: state.default_visitor_limit_per_window,
        range: asked.range,
        buckets,
        log: &log.rows,
        status: asked.status_param,
        next_cursor: log.next_cursor,
        now: Utc::now(),
        flash: &shown.flash,
        draft: shown.draft.as_ref(),
    });
    Ok(views::page(shown.flash.status(), markup))
}

/// The key page's settings form.
#[derive(Deserialize)]
struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    /// Requests a minute; empty: the default.
    #[serde(default)]
    rate_limit: String,
    /// Web origins, one per line (or separated by spaces or commas).
    #[serde(default)]
    allowed_origins: String,
    /// Submissions per visitor a minute; empty: the default.
    #[serde(default)]
    visitor_rate_limit: String,
    /// A provider's name, empty for none.
    #[serde(default)]
    challenge: String,
    /// The provider's secret; empty keeps the stored one (same provider).
    #[serde(default)]
    challenge_secret: String,
}

impl crate::extract::CsrfForm for SettingsForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl SettingsForm {
    /// The form as sent (never the secret), to show it again.
    fn draft(&self) -> view::SettingsDraft {
        view::SettingsDraft {
            name: self.name.clone(),
            rate_limit: self.rate_limit.clone(),
            allowed_origins: self.allowed_origins.clone(),
            visitor_rate_limit: self.visitor_rate_limit.clone(),
            challenge: self.challenge.clone(),
        }
    }

    /// The settings it asks for, read against the key's challenge now, or the first
    /// problem (field, rule).
    fn settings(&self, key: &api_key::Model) -> Result<keys::KeySettings, AdminError> {
        let limit = |field: &'static str, text: &str| match text.trim() {
            "" => Ok(None),
            typed => typed
                .parse::<u32>()
                .map(Some)
                .map_err(|_| AdminError::Invalid {
                    field,
                    rule: "a whole number a minute, or empty for the default".into(),
                }),
        };
        let challenge = match (self.challenge.trim(), key.challenge_provider.as_deref()) {
            ("", None) => keys::ChallengeChange::Keep,
            ("", Some(_)) => keys::ChallengeChange::Remove,
            (name, current) => {
                let provider = ciq_admin::ChallengeProvider::from_name(name).ok_or_else(|| {
                    AdminError::Invalid {
                        field: "challenge",
                        rule: "choose one of the providers offered".into(),
                    }
                })?;
                if self.challenge_secret.is_empty() && current == Some(provider.as_str()) {
                    keys::ChallengeChange::Keep
                } else {
                    keys::ChallengeChange::Set(ciq_admin::NewChallenge::checked(
                        provider,
                        &self.challenge_secret,
                    )?)
                }
            }
        };
        Ok(keys::KeySettings {
            name: self.name.clone(),
            rate_limit_per_minute: limit("rate_limit_per_minute", &self.rate_limit)?,
            allowed_origins: crate::keys::typed_origins(&self.allowed_origins),
            visitor_rate_limit_per_minute: limit(
                "visitor_rate_limit_per_minute",
                &self.visitor_rate_limit,
            )?,
            challenge,
        })
    }
}

/// `POST /settings/api-keys/{id}/settings`: the key's name, limits, origins and
/// challenge change by the rules a new key follows (422 naming the field, the form as
/// sent, nothing saved); running instances use them within a second.
#[handler]
async fn save_settings(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: OwnedForm<api_key::Model, SettingsForm>,
) -> Result<Response, PageError> {
    let form = &sent.signed.form;
    let key = &sent.row;
    // A revoked key is named first: whatever the form says, it changes nothing.
    let parsed = if key.revoked_at.is_some() {
        Err(keys::revoked_key_unchangeable())
    } else {
        form.settings(key)
    };
    let saved = match parsed {
        Ok(settings) => {
            keys::update_settings(
                &state.db,
                state.webhook_key.as_ref(),
                key.id,
                settings,
                &crate::keys::settings_actor(req, &state),
            )
            .await
        }
        Err(err) => Err(err),
    };
    let asked = PageQuery::default().asked()?;
    let (row, shown) = match saved {
        Ok(row) => {
            let shown = Shown {
                flash: Flash {
                    notice: Some(
                        "Settings saved: running gateways use them within a second.".into(),
                    ),
                    ..Flash::default()
                },
                draft: None,
            };
            (row, shown)
        }
        Err(AdminError::Invalid { field, rule }) => {
            let shown = Shown {
                flash: Flash::refused(format!("{}: {rule}.", field.replace('_', " "))),
                draft: Some(form.draft()),
            };
            (sent.row.clone(), shown)
        }
        Err(err) => return Err(err.into()),
    };
    render_key_page(&state, req, &sent.signed.signed_in, row, &asked, shown).await
}

/// A CSV download named `name`.
fn csv_download(name: &str, bytes: Vec<u8>) -> Response {
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .content_type("text/csv; charset=utf-8")
        .body(bytes);
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .expect("the name is ASCII"),
    );
    resp
}

/// `GET /settings/api-keys/{id}/usage.csv?range=`: every bucket of the span, empty
/// ones included, oldest first.
#[handler]
async fn usage_csv(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    query: Query<PageQuery>,
    owned: Owned<api_key::Model>,
) -> Result<Response, PageError> {
    let asked = query.asked()?;
    let buckets = range_buckets(&state, req, key_ref(&owned.row), asked.range).await?;
    let header = [
        "start",
        "success",
        "client_error",
        "rate_limited",
        "server_error",
        "leads_created",
        "spam",
        "dropped",
    ]
    .map(str::to_owned);
    let rows = buckets.iter().map(|(start, c)| {
        [
            ciq_http::time::format_time(*start),
            c.success.to_string(),
            c.client_error.to_string(),
            c.rate_limited.to_string(),
            c.server_error.to_string(),
            c.leads_created.to_string(),
            c.spam.to_string(),
            c.dropped.to_string(),
        ]
    });
    let mut bytes = csv_bytes([header]);
    bytes.extend(csv_bytes(rows));
    let name = format!(
        "usage-{}-{}.csv",
        owned.row.display_prefix,
        asked.range.param()
    );
    Ok(csv_download(&name, bytes))
}

/// `GET /settings/api-keys/{id}/requests.csv?status=`: the whole request log of the
/// filter (at most 1 000 rows), newest first, behind the formula guard.
#[handler]
async fn requests_csv(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    query: Query<PageQuery>,
    owned: Owned<api_key::Model>,
) -> Result<Response, PageError> {
    let asked = query.asked()?;
    let key = key_ref(&owned.row);
    let status = asked.status;
    let limit = ciq_usage::flush::LOG_ROWS_PER_KEY;
    let log = state
        .lists_for(req)
        .read(|db| async move { query::requests(&db, key, limit, None, status).await })
        .await?;
    let header = [
        "at",
        "method",
        "path",
        "status",
        "code",
        "field",
        "message",
        "request_id",
        "client",
        "origin",
        "user_agent",
    ]
    .map(str::to_owned);
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(|t| cell(t).into_owned())
            .unwrap_or_default()
    };
    let rows = log.rows.iter().map(|row| {
        [
            ciq_http::time::format_time(row.at),
            row.method.clone(),
            cell(&row.path).into_owned(),
            row.status.to_string(),
            text(&row.code),
            text(&row.field),
            text(&row.message),
            text(&row.request_id),
            text(&row.client),
            text(&row.origin),
            text(&row.user_agent),
        ]
    });
    let mut bytes = csv_bytes([header]);
    bytes.extend(csv_bytes(rows));
    let name = format!("requests-{}.csv", owned.row.display_prefix);
    Ok(csv_download(&name, bytes))
}
