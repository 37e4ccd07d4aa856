//! Settings → Overview (`/settings`): where Settings opens, and where the home page sends
//! a signed-in owner. Every figure is read in the owner's account (grouped by the
//! store, never by reading rows here).

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, Route, get, handler};

use ciq_admin::keys;

use crate::extract::{PageError, SignedIn};
use crate::middleware::page;
use crate::state::ConsoleState;
use crate::views::dashboard::{self as view, LEAD_DAYS, Overview};
use crate::views::{self};

/// Sources the overview lists.
pub const TOP_SOURCES: u64 = 5;

/// The overview's route.
pub(crate) fn routes(route: Route, state: &Arc<ConsoleState>) -> Route {
    route.at(ciq_http::routes::SETTINGS, page(state, get(overview)))
}

/// `GET /settings`: the account at a glance.
#[handler]
async fn overview(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    signed_in: SignedIn,
) -> Result<Response, PageError> {
    let user = signed_in.owner(&state).await?;
    let user_id = user.id;
    let now = Utc::now();
    let lists = state.lists_for(req);
    let first_day = now.date_naive() - TimeDelta::days(LEAD_DAYS as i64 - 1);
    let since = first_day.and_time(chrono::NaiveTime::MIN).and_utc();
    let per_day = lists
        .read(|db| async move { ciq_leads::stats::per_day(&db, user_id, since).await })
        .await?;
    let top_sources =
        lists
            .read(|db| async move {
                ciq_leads::stats::top_sources(&db, user_id, since, TOP_SOURCES).await
            })
            .await?;
    let listed = lists
        .read(|db| async move { keys::list_keys(&db, user_id).await })
        .await?;
    let day_ago = now - TimeDelta::hours(24);
    let key_usage = lists
        .read(|db| async move { ciq_usage::query::totals_by_key(&db, user_id, day_ago, now).await })
        .await?;
    let endpoints = lists
        .read(|db| async move { ciq_webhooks::endpoints::list(&db, user_id).await })
        .await?;
    let imports = lists
        .read(|db| async move { ciq_imports::store::list(&db, user_id, 10).await })
        .await?;
    let markup = view::overview(&Overview {
        user: &user,
        csrf: &signed_in.session.csrf_token,
        leads_per_day: view::every_day(now, &per_day),
        top_sources: &top_sources,
        keys: &listed,
        key_usage: &key_usage,
        endpoints: &endpoints,
        imports: &imports,
        now,
    });
    Ok(views::page(StatusCode::OK, markup))
}
