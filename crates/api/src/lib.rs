//! The integrators' surface of the gateway: what external clients (web forms, CRMs,
//! scripts) call with a `ciq_` key in `X-API-Key`.
//!
//! - [`leads`]: `POST /api/external/leads/create`, as the reference promises it.
//! - [`webhooks`]: webhook subscriptions through the API, with filters.
//! - [`me`]: `GET /api/external/me`, the credentials test.
//! - [`usage`]: a key's usage and request log, and where every answer is counted.
//! - [`auth`]: the `X-API-Key` scheme, the key's rate limit and its headers, scopes and
//!   origins.
//! - [`challenge`]: verifying a browser submission's challenge token with its provider.
//! - [`cors`]: preflights and CORS headers of the paths browser keys may post to.
//! - [`embed`]: the embed script that makes a plain HTML form a lead form.
//! - [`openapi`]: the public OpenAPI document (`/openapi.json`) and Swagger UI
//!   (`/docs`), integrators' operations only.
//!
//! The lead domain itself (rules, store, idempotency) is `ciq-leads`; this crate
//! maps it to the HTTP contract.

pub mod auth;
pub mod challenge;
pub mod cors;
pub mod embed;
pub mod leads;
pub mod me;
pub mod money;
pub mod openapi;
mod responses;
pub mod state;
pub mod tags;
pub mod usage;
pub mod webhooks;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, IntoEndpoint, Route};

pub use state::ApiState;

/// Adds the public routes to `route`: the leads API, `/openapi.json`, `/docs` and the
/// embed script.
pub fn attach(route: Route, state: Arc<ApiState>) -> Route {
    let service = openapi::service();
    let document = openapi::document();
    let swagger = openapi::swagger_ui(&service, &document);
    let api = service
        .into_endpoint()
        // A request without a key never reaches the key checker (the framework refuses
        // it first); count it against its address here, like any other bad key.
        .around(|endpoint, mut req| async move {
            if req.uri().path() != ciq_http::routes::CREATE_LEAD {
                return endpoint.call(req).await;
            }
            let state = req
                .data::<Arc<ApiState>>()
                .expect("the API state is attached")
                .clone();
            // Group commit gathers the rows of creates in flight: say one may follow
            // before the key check, the limiter and validation take their time.
            req.extensions_mut()
                .insert(Arc::new(state.leads.writer().announce()));
            let keyless = req
                .headers()
                .get("x-api-key")
                .is_none_or(|v| v.as_bytes().iter().all(u8::is_ascii_whitespace));
            if keyless {
                auth::record_failure(&state, &req).await?;
            }
            endpoint.call(req).await
        })
        // Every answer to a verified key counts in its usage.
        .around(usage::track)
        // Outermost: a preflight is answered before anything counts it.
        .around(cors::handle)
        .data(state);
    embed::attach(route)
        .at(
            ciq_http::routes::PUBLIC_DOCUMENT,
            poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json")
                    .body(document.clone())
            }),
        )
        .nest(ciq_http::routes::DOCS, swagger)
        .nest_no_strip("/api/external", api)
}
