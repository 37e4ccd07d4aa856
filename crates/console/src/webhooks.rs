//! Settings → Webhooks: the owner's endpoints — add one (its secret shown once, with a
//! snippet that verifies a delivery), enable or disable it, rotate its secret, send it a
//! test event — and each endpoint's delivery log with replay. Every query names the
//! account: another owner's endpoint or delivery is "not found".

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};
use secrecy::ExposeSecret;
use uuid::Uuid;

use ciq_admin::sessions::Session;
use ciq_entity::webhook_delivery::{self, DeliveryStatus};
use ciq_entity::{user, webhook_endpoint};
use ciq_leads::events::NAMES as EVENT_TYPES;
use ciq_webhooks::delivery;
use ciq_webhooks::endpoints::{self, EndpointError};

use crate::pages::{self, Flash, Section, layout_refreshing, owner_name, sign_out, when};
use crate::state::ConsoleState;
use crate::{html as page, redirect, signed_in, signed_in_form, store_trouble};

/// Deliveries shown in an endpoint's log.
pub const LOG_SIZE: u64 = 50;
/// How long the old secret keeps signing after a rotation from the page, in seconds,
/// with the choices' labels.
pub const ROTATION_OVERLAPS: [(u64, &str); 3] = [
    (0, "Immediately"),
    (3600, "After 1 hour"),
    (86_400, "After 24 hours"),
];

fn path_of(id: Uuid) -> String {
    format!("{}/{id}", ciq_http::routes::SETTINGS_WEBHOOKS)
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        pages::message(
            "Endpoint not found",
            "That webhook endpoint does not exist in your account.",
        ),
    )
}

async fn owner(state: &ConsoleState, session: &Session) -> Result<user::Model, Response> {
    ciq_admin::users::find_user(&state.db, &session.user_id.to_string())
        .await
        .map_err(store_trouble)
}

/// The owner's endpoint `id`, or the response to send instead.
async fn own_endpoint(
    state: &ConsoleState,
    session: &Session,
    id: &str,
) -> Result<webhook_endpoint::Model, Response> {
    let id = id.parse::<Uuid>().map_err(|_| not_found())?;
    match endpoints::find(&state.db, session.user_id, id).await {
        Ok(endpoint) => Ok(endpoint),
        Err(EndpointError::NotFound) => Err(not_found()),
        Err(err) => Err(store_trouble(err)),
    }
}

/// The signed-in owner of a form post (its CSRF token checked) and their endpoint `id`,
/// or the response to send instead.
async fn form_endpoint(
    req: &Request,
    state: &ConsoleState,
    form: &HashMap<String, String>,
    id: &str,
) -> Result<(Session, webhook_endpoint::Model), Response> {
    let csrf = form.get("csrf").map_or("", String::as_str);
    let session = signed_in_form(req, state, csrf).await?;
    let endpoint = own_endpoint(state, &session, id).await?;
    Ok((session, endpoint))
}

/// The endpoints page with `flash` (a new secret, a notice, a refused form).
async fn endpoints_answer(
    state: &ConsoleState,
    req: &Request,
    session: &Session,
    status: StatusCode,
    flash: Flash,
) -> Response {
    let user = match owner(state, session).await {
        Ok(user) => user,
        Err(resp) => return resp,
    };
    let user_id = session.user_id;
    match state
        .lists_for(req)
        .read(|db| async move { endpoints::list(&db, user_id).await })
        .await
    {
        Ok(listed) => page(
            status,
            endpoints_page(&user, &session.csrf_token, &listed, &flash, state),
        ),
        Err(err) => store_trouble(err),
    }
}

/// `GET /settings/webhooks`.
#[handler]
pub async fn list_page(req: &Request, state: Data<&Arc<ConsoleState>>) -> Response {
    match signed_in(req, &state).await {
        Ok((_, session)) => {
            endpoints_answer(&state, req, &session, StatusCode::OK, Flash::default()).await
        }
        Err(resp) => resp,
    }
}

/// `POST /settings/webhooks` (`csrf`, `url`, `event_<n>` per ticked event): adds the
/// endpoint and shows its secret this once (201), or names what is wrong (422).
#[handler]
pub async fn create(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    form: Form<HashMap<String, String>>,
) -> Response {
    let csrf = form.get("csrf").map_or("", String::as_str);
    let session = match signed_in_form(req, &state, csrf).await {
        Ok(session) => session,
        Err(resp) => return resp,
    };
    let events: Vec<&str> = EVENT_TYPES
        .into_iter()
        .filter(|e| form.contains_key(&event_field(e)))
        .collect();
    let refuse = |error: String| Flash {
        error: Some(error),
        ..Flash::default()
    };
    if events.is_empty() {
        let flash = refuse("Choose at least one event to send.".into());
        return endpoints_answer(
            &state,
            req,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            flash,
        )
        .await;
    }
    let url = form.get("url").map_or("", String::as_str);
    let created = endpoints::create(
        &state.db,
        state.webhook_key.as_ref(),
        session.user_id,
        url,
        &events,
        state.webhook_allow_private,
    )
    .await;
    match created {
        Ok((row, secret)) => {
            let flash = Flash {
                new_key: Some((row.url, secret.expose_secret().to_owned())),
                ..Flash::default()
            };
            endpoints_answer(&state, req, &session, StatusCode::CREATED, flash).await
        }
        Err(EndpointError::Store(err)) => store_trouble(err),
        Err(err) => {
            let flash = refuse(match err {
                EndpointError::Url(why) => format!("URL: {why}"),
                other => other.to_string(),
            });
            endpoints_answer(
                &state,
                req,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                flash,
            )
            .await
        }
    }
}

fn event_field(event: &str) -> String {
    format!("event_{}", event.replace('.', "_"))
}

/// `POST /settings/webhooks/{id}/{action}` (`csrf`; `overlap` for `rotate`):
/// `enable`, `disable`, `rotate` (the new secret shown once), `test` (a `webhook.test`
/// event queued now).
#[handler]
pub async fn act(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    Path((id, action)): Path<(String, String)>,
    form: Form<HashMap<String, String>>,
) -> Response {
    let (session, endpoint) = match form_endpoint(req, &state, &form, &id).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let done = match action.as_str() {
        "enable" | "disable" => endpoints::set_enabled(
            &state.db,
            session.user_id,
            endpoint.id,
            action == "enable",
            Some("disabled by its owner in Settings"),
        )
        .await
        .map(|()| Flash {
            notice: Some(format!("{} is {action}d.", endpoint.url)),
            ..Flash::default()
        }),
        "rotate" => {
            let overlap = form
                .get("overlap")
                .and_then(|o| o.parse::<u64>().ok())
                .filter(|o| ROTATION_OVERLAPS.iter().any(|(s, _)| s == o))
                .unwrap_or(0);
            endpoints::rotate(
                &state.db,
                state.webhook_key.as_ref(),
                session.user_id,
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
            })
        }
        "test" => match delivery::queue_test(&state.db, session.user_id, endpoint.id).await {
            Ok(_) => {
                state.delivery_worker.wake();
                return redirect(&path_of(endpoint.id));
            }
            Err(err) => Err(EndpointError::Store(err)),
        },
        _ => return not_found(),
    };
    match done {
        Ok(flash) => {
            endpoints_answer(&state, req, &session, crate::flash_status(&flash), flash).await
        }
        Err(EndpointError::Store(err)) => store_trouble(err),
        Err(err) => {
            let flash = Flash {
                error: Some(err.to_string()),
                ..Flash::default()
            };
            endpoints_answer(
                &state,
                req,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                flash,
            )
            .await
        }
    }
}

/// `GET /settings/webhooks/{id}`: the endpoint's delivery log, newest first.
#[handler]
pub async fn log_page(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    id: Path<String>,
) -> Response {
    let (_, session) = match signed_in(req, &state).await {
        Ok(signed) => signed,
        Err(resp) => return resp,
    };
    let endpoint = match own_endpoint(&state, &session, &id).await {
        Ok(endpoint) => endpoint,
        Err(resp) => return resp,
    };
    let user = match owner(&state, &session).await {
        Ok(user) => user,
        Err(resp) => return resp,
    };
    let (user_id, endpoint_id) = (session.user_id, endpoint.id);
    let log = state
        .lists_for(req)
        .read(|db| async move { delivery::deliveries(&db, user_id, endpoint_id, LOG_SIZE).await })
        .await;
    match log {
        Ok(log) => page(
            StatusCode::OK,
            log_markup(&user, &session.csrf_token, &endpoint, &log),
        ),
        Err(err) => store_trouble(err),
    }
}

/// `POST /settings/webhooks/{id}/deliveries/{delivery_id}/replay`: the delivery's event
/// queued again (same `webhook-id`), then the log.
#[handler]
pub async fn replay(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    Path((id, delivery_id)): Path<(String, String)>,
    form: Form<HashMap<String, String>>,
) -> Response {
    let (session, endpoint) = match form_endpoint(req, &state, &form, &id).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let Ok(delivery_id) = delivery_id.parse::<Uuid>() else {
        return not_found();
    };
    match delivery::replay(&state.db, session.user_id, delivery_id).await {
        Ok(Some(_)) => {
            state.delivery_worker.wake();
            redirect(&path_of(endpoint.id))
        }
        Ok(None) => not_found(),
        Err(err) => store_trouble(err),
    }
}

// ---- markup ----------------------------------------------------------------------

fn header_of(user: &user::Model, csrf: &str) -> Markup {
    html! { span.muted { (owner_name(user)) } (sign_out(csrf)) }
}

/// The verification snippet shown with a new secret (the official Python library).
fn snippet(secret: &str) -> String {
    format!(
        "# pip install standardwebhooks\nfrom standardwebhooks.webhooks import Webhook\n\n\
         wh = Webhook(\"{secret}\")\n# raw body and headers exactly as received; raises if not ours\n\
         event = wh.verify(request_body, request_headers)"
    )
}

fn endpoints_page(
    user: &user::Model,
    csrf: &str,
    listed: &[webhook_endpoint::Model],
    flash: &Flash,
    state: &ConsoleState,
) -> Markup {
    layout_refreshing(
        "Webhooks",
        Section::Webhooks,
        header_of(user, csrf),
        html! {
            h1 { "Webhooks" }
            p.lead { "We POST a signed event to your endpoint whenever a lead is created, changed or erased, and retry until it answers 2xx. See the developer guide for the payloads and how to verify a signature." }
            @if state.webhook_key.is_none() {
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
                            input #webhook-url type="text" name="url" required maxlength="2048" placeholder="https://crm.example.com/hooks/convertiq";
                        }
                    }
                    fieldset.scopes {
                        legend { "Events" }
                        @for event in EVENT_TYPES {
                            div {
                                input id=(event_field(event)) type="checkbox" name=(event_field(event)) value="on" checked;
                                " " label for=(event_field(event)) style="display:inline" { code { (event) } }
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
                                    td data-label="URL" { a href=(path_of(endpoint.id)) { (endpoint.url) } }
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

fn status_badge(status: DeliveryStatus) -> Markup {
    let class = match status {
        DeliveryStatus::Delivered => "badge active",
        DeliveryStatus::Failed => "badge revoked",
        DeliveryStatus::Pending => "badge expired",
    };
    html! { span class=(class) { (status.as_str()) } }
}

fn log_markup(
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
        header_of(user, csrf),
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
