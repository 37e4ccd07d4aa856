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

use poem::http::Method;
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Response, Route};

pub use state::ApiState;

/// Adds the public routes to `route`: the leads API, `/openapi.json`, `/docs` and the
/// embed script.
pub fn attach(route: Route, state: Arc<ApiState>) -> Route {
    attach_with(route, state, Dispatch::Direct)
}

/// How `POST /api/external/leads/create` reaches its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// Straight from the operations' shared layer ([`leads::create_directly`]): what
    /// [`attach`] serves.
    Direct,
    /// Through the OpenAPI service's route, like every other operation: for the test
    /// that holds both ways to the same answers.
    Documented,
}

/// [`attach`], with the create's way to its handler chosen.
pub fn attach_with(route: Route, state: Arc<ApiState>, dispatch: Dispatch) -> Route {
    let service = openapi::service();
    let document = openapi::document();
    let swagger = openapi::swagger_ui(&service, &document);
    let api = service
        .into_endpoint()
        // Boxed where it starts (one copy of its ~3.8 KB): the nest's box and every layer
        // outside it then hold a pointer, not the whole future, and copy that.
        .around(move |endpoint, req| Box::pin(operations(endpoint, req, state.clone(), dispatch)));
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

/// The one layer around the public operations, in the order a request meets it: a
/// browser path's preflight answered before anything counts it, the API state put in
/// the request, the usage slot every answer to a verified key is counted by and — for
/// a create — group commit told that a row may follow and a request without a key
/// counted against its address (the framework refuses it before the key checker could);
/// then, on the way out, the usage count and the CORS headers. A create is answered
/// here ([`Dispatch::Direct`]) rather than through the service's route.
///
/// One `async fn` rather than a layer each: every poem layer keeps its own copy of the
/// request (472 bytes) beside the next layer's future for as long as the request is
/// in flight, and moves it once more on the way in.
async fn operations<E: Endpoint>(
    endpoint: Arc<E>,
    mut req: Request,
    state: Arc<ApiState>,
    dispatch: Dispatch,
) -> poem::Result<Response> {
    let cors = cors::Cors::of(&req);
    if let Some(preflight) = cors.preflight(&req) {
        return Ok(preflight);
    }
    req.extensions_mut().insert(state.clone());
    let counting = usage::Counting::begin(&mut req);
    let create = req.uri().path() == ciq_http::routes::CREATE_LEAD;
    let result = match before_a_create(create, &state, &mut req).await {
        // The service refuses other methods (405 with `Allow`).
        Ok(()) if create && dispatch == Dispatch::Direct && req.method() == Method::POST => {
            // Boxed on its own: the create's ~8 KB state stays out of this layer's future,
            // which every public request allocates and copies once.
            Box::pin(leads::create_directly(&state, req)).await
        }
        // On `E` itself: `Arc<E>`'s own `call` would be one more layer.
        Ok(()) => E::call(&endpoint, req)
            .await
            .map(IntoResponse::into_response),
        Err(err) => Err(err),
    };
    cors.finish(counting.finish(&state, result).await)
}

/// On the create's path (`create`): tells group commit a row may follow (before the key
/// check, the limiter and validation take their time), and counts a request without a
/// key against its address like any other bad key.
async fn before_a_create(create: bool, state: &ApiState, req: &mut Request) -> poem::Result<()> {
    if !create {
        return Ok(());
    }
    req.extensions_mut()
        .insert(Arc::new(state.leads.writer().announce()));
    let keyless = req
        .headers()
        .get(&auth::API_KEY_HEADER)
        .is_none_or(|v| v.as_bytes().iter().all(u8::is_ascii_whitespace));
    if keyless {
        auth::record_failure(state, req).await?;
    }
    Ok(())
}
