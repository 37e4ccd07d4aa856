//! Settings → Webhooks: the owner's endpoints — add one (its secret shown once, with a
//! snippet that verifies a delivery), enable or disable it, rotate its secret, send it a
//! test event — and each endpoint's delivery log with replay. Every query names the
//! account: another owner's endpoint or delivery is "not found".

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Request, Response, Route, get, handler, post};
use secrecy::ExposeSecret;
use uuid::Uuid;

use ciq_entity::webhook_endpoint;
use ciq_leads::events::NAMES as EVENT_TYPES;
use ciq_webhooks::delivery;
use ciq_webhooks::endpoints::{self, EndpointError};

use crate::extract::{InAccount, Owned, OwnedForm, PageError, SignedIn, SignedInForm};
use crate::middleware::page;
use crate::state::ConsoleState;
use crate::views::webhooks::{EndpointDraft, LOG_SIZE, ROTATION_OVERLAPS, event_field, path_of};
use crate::views::{self, Flash};

/// The webhook pages' routes.
pub(crate) fn routes(route: Route, state: &Arc<ConsoleState>) -> Route {
    let base = ciq_http::routes::SETTINGS_WEBHOOKS;
    let action = |name: &str| format!("{base}/:endpoint_id/{name}");
    route
        .at(base, page(state, get(list_page).post(create)))
        .at(views::webhooks::GUIDE, page(state, get(guide)))
        .at(format!("{base}/:endpoint_id"), page(state, get(log_page)))
        .at(
            format!("{base}/:endpoint_id/deliveries/:delivery_id/replay"),
            page(state, post(replay)),
        )
        .at(action("enable"), page(state, post(enable)))
        .at(action("disable"), page(state, post(disable)))
        .at(action("rotate"), page(state, post(rotate)))
        .at(action("test"), page(state, post(send_test)))
        .at(
            action("delete"),
            page(state, get(confirm_delete).post(delete)),
        )
        .at(action("edit"), page(state, get(edit_page).post(save)))
}

/// `GET /settings/webhooks/guide`: what an endpoint receives — each event's payload
/// (made by the code that makes real ones, for a lead of this account), the headers,
/// how to verify a signature, this server's retry schedule.
#[handler]
async fn guide(
    state: Data<&Arc<ConsoleState>>,
    signed_in: SignedIn,
) -> Result<Response, PageError> {
    use ciq_leads::events::{self, EventType};
    let user = signed_in.owner(&state).await?;
    let owner = ciq_leads::LeadOwner {
        user_id: user.id,
        api_key_id: Some(Uuid::now_v7()),
    };
    let lead = ciq_leads::Lead {
        score: Some(8),
        external_id: Some("crm-4711".to_owned()),
        ..ciq_leads::Lead::example(owner)
    };
    let changed = ciq_leads::Lead {
        status: ciq_leads::LeadStatus::Contacted,
        ..lead.clone()
    };
    let samples: Vec<(&str, String)> = [
        events::event(EventType::Created, &lead),
        events::event(EventType::Updated, &changed),
        Some(events::deleted(user.id, lead.id)),
    ]
    .into_iter()
    .flatten()
    .map(|event| (event.kind, event.payload))
    .collect();
    let settings = state.delivery_worker.settings();
    Ok(views::page(
        StatusCode::OK,
        views::webhooks::guide(
            &user,
            &signed_in.session.csrf_token,
            &samples,
            &settings.retry_schedule,
            settings.disable_after,
        ),
    ))
}

/// `GET /settings/webhooks/{id}/edit`: the endpoint's URL, events, description and
/// filter in a form.
#[handler]
async fn edit_page(
    state: Data<&Arc<ConsoleState>>,
    owned: Owned<webhook_endpoint::Model>,
) -> Result<Response, PageError> {
    let user = owned.signed_in.owner(&state).await?;
    let csrf = &owned.signed_in.session.csrf_token;
    let draft = EndpointDraft::of(&owned.row);
    Ok(views::page(
        StatusCode::OK,
        views::webhooks::edit(&user, csrf, &owned.row, &draft, &[]),
    ))
}

/// `POST /settings/webhooks/{id}/edit`: the URL checked as when it was added, at least
/// one event, the filter by the API's rules (every broken rule named, the form kept:
/// 422, nothing saved); then saved, and the endpoints page says so.
#[handler]
async fn save(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: ActionForm,
) -> Result<Response, PageError> {
    let endpoint = &sent.row;
    let draft = EndpointDraft::sent(&sent.signed.form);
    let mut problems: Vec<String> = Vec::new();
    let url = match ciq_webhooks::address::check_url(&draft.url, state.webhook_allow_private) {
        Ok(url) => Some(url),
        Err(why) => {
            problems.push(format!("URL: {why}"));
            None
        }
    };
    let events: Vec<&'static str> = EVENT_TYPES
        .into_iter()
        .filter(|e| draft.events.iter().any(|t| t == e))
        .collect();
    if events.is_empty() {
        problems.push("Events: choose at least one event to send.".to_owned());
    }
    let filter = match ciq_webhooks::filter::Filter::parse(&draft.filter_json()) {
        Ok(filter) => Some(filter),
        Err(broken) => {
            problems.extend(broken.into_iter().map(|e| {
                let path = e.field.strip_prefix("filter.").unwrap_or(&e.field);
                format!("Filter {}: {}", path.replace('.', " "), e.message)
            }));
            None
        }
    };
    let description = endpoints::check_description(&draft.description).unwrap_or_else(|rule| {
        problems.push(format!("Description: {rule}."));
        None
    });
    let (Some(url), Some(filter), true) = (url, filter, problems.is_empty()) else {
        let user = sent.signed.signed_in.owner(&state).await?;
        let csrf = &sent.signed.signed_in.session.csrf_token;
        return Ok(views::page(
            StatusCode::UNPROCESSABLE_ENTITY,
            views::webhooks::edit(&user, csrf, endpoint, &draft, &problems),
        ));
    };
    let changes = endpoints::EndpointChanges {
        url: Some(url),
        events: Some(events),
        filter: Some(filter),
        description: Some(description),
        enabled: None,
    };
    let done = endpoints::update(&state.db, sent.session().user_id, endpoint.id, changes)
        .await
        .map(|saved| Flash {
            notice: Some(format!("Saved {}.", saved.url)),
            ..Flash::default()
        });
    after_form(&state, req, &sent.signed.signed_in, done).await
}

/// `GET /settings/webhooks/{id}/delete`: "Delete this endpoint?".
#[handler]
async fn confirm_delete(
    state: Data<&Arc<ConsoleState>>,
    owned: Owned<webhook_endpoint::Model>,
) -> Result<Response, PageError> {
    let user = owned.signed_in.owner(&state).await?;
    let csrf = &owned.signed_in.session.csrf_token;
    Ok(views::page(
        StatusCode::OK,
        views::webhooks::confirm_delete(&user, csrf, &owned.row),
    ))
}

/// `POST /settings/webhooks/{id}/delete`: the endpoint and its delivery log are gone;
/// nothing more is sent to it (a delivery under way finishes, its result unrecorded).
#[handler]
async fn delete(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: ActionForm,
) -> Result<Response, PageError> {
    let endpoint = &sent.row;
    let done = endpoints::delete(&state.db, sent.session().user_id, endpoint.id)
        .await
        .map(|()| Flash {
            notice: Some(format!(
                "Deleted the endpoint {} and its delivery log.",
                endpoint.url
            )),
            ..Flash::default()
        });
    after_form(&state, req, &sent.signed.signed_in, done).await
}

impl InAccount for webhook_endpoint::Model {
    const PARAM: &'static str = "endpoint_id";
    const NOT_FOUND: (&'static str, &'static str) = (
        "Endpoint not found",
        "That webhook endpoint does not exist in your account.",
    );

    async fn find_in_account(
        state: &ConsoleState,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<Option<Self>, PageError> {
        match endpoints::find(&state.db, user_id, id).await {
            Ok(endpoint) => Ok(Some(endpoint)),
            Err(EndpointError::NotFound) => Ok(None),
            Err(err) => Err(PageError::store(err)),
        }
    }
}

/// An endpoint action's form: its CSRF token, and `overlap` for a rotation.
type ActionForm = OwnedForm<webhook_endpoint::Model, HashMap<String, String>>;

/// The endpoints page with `flash` (a new secret, a notice, a refused form).
async fn endpoints_answer(
    state: &ConsoleState,
    req: &Request,
    signed_in: &SignedIn,
    status: StatusCode,
    flash: Flash,
) -> Result<Response, PageError> {
    let user = signed_in.owner(state).await?;
    let user_id = signed_in.session.user_id;
    let listed = state
        .lists_for(req)
        .read(|db| async move { endpoints::list(&db, user_id).await })
        .await
        .map_err(PageError::store)?;
    // The keys that subscribed endpoints through the API, by name.
    let keys = if listed.iter().any(|e| e.api_key_id.is_some()) {
        ciq_admin::keys::list_keys(&state.db, user_id)
            .await
            .map_err(|err| PageError::store(err.to_string()))?
            .into_iter()
            .map(|k| (k.id, format!("{} ({}…)", k.name, k.display_prefix)))
            .collect()
    } else {
        std::collections::HashMap::new()
    };
    let csrf = &signed_in.session.csrf_token;
    let webhooks_on = state.webhook_key.is_some();
    let markup = views::webhooks::endpoints_page(&user, csrf, &listed, &keys, &flash, webhooks_on);
    Ok(views::page(status, markup))
}

/// The endpoints page after a form: 201 with a new secret, 200 with a notice; a
/// refused form (422) names the problem; the store's failure is its own page.
async fn after_form(
    state: &ConsoleState,
    req: &Request,
    signed_in: &SignedIn,
    done: Result<Flash, EndpointError>,
) -> Result<Response, PageError> {
    let flash = match done {
        Ok(flash) => flash,
        Err(err) => refused(err)?,
    };
    endpoints_answer(state, req, signed_in, flash.status(), flash).await
}

/// The flash of a refused endpoint form, naming the problem; the store's failure is
/// its own page.
fn refused(err: EndpointError) -> Result<Flash, PageError> {
    match err {
        EndpointError::Store(err) => Err(PageError::store(err)),
        EndpointError::Url(why) => Ok(Flash::refused(format!("URL: {why}"))),
        other => Ok(Flash::refused(other.to_string())),
    }
}

/// `GET /settings/webhooks`.
#[handler]
pub async fn list_page(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    signed_in: SignedIn,
) -> Result<Response, PageError> {
    endpoints_answer(&state, req, &signed_in, StatusCode::OK, Flash::default()).await
}

/// `POST /settings/webhooks` (`csrf`, `url`, `event_<n>` per ticked event): adds the
/// endpoint and shows its secret this once (201), or names what is wrong (422) with
/// the form as it was sent.
#[handler]
pub async fn create(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: SignedInForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let form = &sent.form;
    let events: Vec<&str> = EVENT_TYPES
        .into_iter()
        .filter(|e| form.contains_key(&event_field(e)))
        .collect();
    let url = form.get("url").map_or("", String::as_str);
    let draft = (
        url.to_owned(),
        events.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>(),
    );
    if events.is_empty() {
        let flash = Flash {
            webhook_draft: Some(draft),
            ..Flash::refused("Choose at least one event to send.")
        };
        return after_form(&state, req, &sent.signed_in, Ok(flash)).await;
    }
    let created = endpoints::create(
        &state.db,
        state.webhook_key.as_ref(),
        sent.session().user_id,
        url,
        &events,
        state.webhook_allow_private,
    )
    .await;
    let flash = match created {
        Ok((row, secret)) => Flash {
            new_key: Some((row.url, secret.expose_secret().to_owned())),
            ..Flash::default()
        },
        Err(err) => Flash {
            webhook_draft: Some(draft),
            ..refused(err)?
        },
    };
    endpoints_answer(&state, req, &sent.signed_in, flash.status(), flash).await
}

/// Turns the endpoint on or off.
async fn switch(
    state: &ConsoleState,
    req: &Request,
    sent: ActionForm,
    on: bool,
) -> Result<Response, PageError> {
    let endpoint = &sent.row;
    let done = endpoints::set_enabled(
        &state.db,
        sent.session().user_id,
        endpoint.id,
        on,
        Some("disabled by its owner in Settings"),
    )
    .await
    .map(|()| Flash {
        notice: Some(format!(
            "{} is {}.",
            endpoint.url,
            if on { "enabled" } else { "disabled" }
        )),
        ..Flash::default()
    });
    after_form(state, req, &sent.signed.signed_in, done).await
}

/// `POST /settings/webhooks/{id}/enable`.
#[handler]
pub async fn enable(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: ActionForm,
) -> Result<Response, PageError> {
    switch(&state, req, sent, true).await
}

/// `POST /settings/webhooks/{id}/disable`: nothing more is sent to it until it is
/// enabled again (pending deliveries fail).
#[handler]
pub async fn disable(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: ActionForm,
) -> Result<Response, PageError> {
    switch(&state, req, sent, false).await
}

/// `POST /settings/webhooks/{id}/rotate` (`overlap`: seconds the old secret still signs,
/// one of [`ROTATION_OVERLAPS`], else 0): the new secret is shown this once.
#[handler]
pub async fn rotate(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: ActionForm,
) -> Result<Response, PageError> {
    let overlap = sent
        .signed
        .form
        .get("overlap")
        .and_then(|o| o.parse::<u64>().ok())
        .filter(|o| ROTATION_OVERLAPS.iter().any(|(s, _)| s == o))
        .unwrap_or(0);
    let endpoint = &sent.row;
    let done = endpoints::rotate(
        &state.db,
        state.webhook_key.as_ref(),
        sent.session().user_id,
        endpoint.id,
        Duration::from_secs(overlap),
    )
    .await
    .map(|secret| Flash {
        new_key: Some((endpoint.url.clone(), secret.expose_secret().to_owned())),
        notice: Some(if overlap == 0 {
            "The old secret no longer signs.".to_owned()
        } else {
            format!(
                "The old secret signs too for {} more hours.",
                overlap / 3600
            )
        }),
        ..Flash::default()
    });
    after_form(&state, req, &sent.signed.signed_in, done).await
}

/// Test events and replays one endpoint may be sent a minute: enough to debug a
/// receiver, too few to aim the gateway at a URL.
pub const SENDS_PER_MINUTE: u32 = 10;

/// Counts one test event or replay for `endpoint`; past [`SENDS_PER_MINUTE`] the 429
/// page saying when to try again (nothing is queued).
async fn count_send(state: &ConsoleState, endpoint: Uuid) -> Result<(), Response> {
    let decision = state
        .limiter
        .acquire(
            &ciq_limiter::Bucket::EndpointSends(endpoint),
            SENDS_PER_MINUTE,
            Duration::from_secs(60),
        )
        .await;
    if decision.allowed {
        return Ok(());
    }
    let wait = decision.reset_after_secs();
    Err(views::come_back(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many test events",
        &format!(
            "An endpoint is sent at most {SENDS_PER_MINUTE} test events and replays a minute. Try again in {wait} seconds."
        ),
        wait,
    ))
}

/// `POST /settings/webhooks/{id}/test`: a `webhook.test` event queued now, then the
/// delivery log, which follows it.
#[handler]
pub async fn send_test(
    state: Data<&Arc<ConsoleState>>,
    sent: ActionForm,
) -> Result<Response, PageError> {
    if let Err(refused) = count_send(&state, sent.row.id).await {
        return Ok(refused);
    }
    delivery::queue_test(&state.db, sent.session().user_id, sent.row.id).await?;
    state.delivery_worker.wake();
    Ok(views::redirect(&path_of(sent.row.id)))
}

/// `GET /settings/webhooks/{id}`: the endpoint's delivery log, newest first.
#[handler]
pub async fn log_page(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    owned: Owned<webhook_endpoint::Model>,
) -> Result<Response, PageError> {
    let user = owned.signed_in.owner(&state).await?;
    let (user_id, endpoint_id) = (owned.signed_in.session.user_id, owned.row.id);
    let log = state
        .lists_for(req)
        .read(|db| async move { delivery::deliveries(&db, user_id, endpoint_id, LOG_SIZE).await })
        .await?;
    let csrf = &owned.signed_in.session.csrf_token;
    Ok(views::page(
        StatusCode::OK,
        views::webhooks::log(&user, csrf, &owned.row, &log),
    ))
}

/// `POST /settings/webhooks/{id}/deliveries/{delivery_id}/replay`: the delivery's event
/// queued again (same `webhook-id`), then the log.
#[handler]
pub async fn replay(
    state: Data<&Arc<ConsoleState>>,
    Path((_, delivery_id)): Path<(String, String)>,
    sent: ActionForm,
) -> Result<Response, PageError> {
    let not_found = PageError::not_found::<webhook_endpoint::Model>;
    let delivery_id = delivery_id.parse::<Uuid>().map_err(|_| not_found())?;
    if let Err(refused) = count_send(&state, sent.row.id).await {
        return Ok(refused);
    }
    match delivery::replay(&state.db, sent.session().user_id, delivery_id).await? {
        Some(_) => {
            state.delivery_worker.wake();
            Ok(views::redirect(&path_of(sent.row.id)))
        }
        None => Err(not_found()),
    }
}
