//! Settings → API Key → a key: its usage over 24 hours, 7 days or 30 days (a chart of
//! its answers by outcome, with totals) and its request log, each exportable as CSV.
//! The key is found in the owner's account (another owner's key is "not found"), and
//! every read names the account in its query.

use std::sync::Arc;

use chrono::Utc;
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Query};
use poem::{Request, Response, Route, get, handler};
use serde::Deserialize;

use ciq_admin::keys::KeySummary;
use ciq_entity::api_key;
use ciq_http::routes::SETTINGS_API_KEYS;
use ciq_usage::KeyRef;
use ciq_usage::query::{self, Of, StatusFilter, Window};

use crate::extract::{Owned, PageError};
use crate::leads::{cell, csv_bytes};
use crate::middleware::page;
use crate::state::ConsoleState;
use crate::views::usage::{self as view, KeyPage, LOG_FILTERS, Range};
use crate::views::{self};

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
    let user = owned.signed_in.owner(&state).await?;
    let key = key_ref(&owned.row);
    let buckets = range_buckets(&state, req, key, asked.range).await?;
    let (cursor, status) = (asked.cursor, asked.status);
    let log = state
        .lists_for(req)
        .read(|db| async move { query::requests(&db, key, LOG_PAGE, cursor, status).await })
        .await?;
    let summary = KeySummary::from(owned.row);
    let markup = view::key_page(&KeyPage {
        user: &user,
        csrf: &owned.signed_in.session.csrf_token,
        key: &summary,
        default_limit: state.default_limit_per_window,
        range: asked.range,
        buckets,
        log: &log.rows,
        status: asked.status_param,
        next_cursor: log.next_cursor,
        now: Utc::now(),
    });
    Ok(views::page(StatusCode::OK, markup))
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
