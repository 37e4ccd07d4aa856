//! The operator surface: the operator API under `/admin/v1` (behind
//! `Authorization: Bearer $CIQ_ADMIN_TOKEN`, with its own OpenAPI document at
//! `/admin/v1/openapi.json`) and the probes every instance serves (`/healthz`,
//! `/readyz`, `/metrics`).
//!
//! With no token configured the operator API is not mounted at all: every
//! `/admin/v1` path, its document included, answers 404 as if it were not there.
//! Scripts depend on these routes and shapes.

pub mod api;
pub mod document;
pub mod health;
pub mod state;
pub mod tags;

use std::sync::Arc;

use poem::{EndpointExt, IntoEndpoint, Route};
use poem_openapi::OpenApiService;

pub use state::OperatorState;

/// Largest operator request body, in bytes (the largest, a new user, is under 1 KiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Adds the operator API with its document, behind the token check, to `route`;
/// adds nothing when no token is configured.
pub fn attach_operator(route: Route, state: Arc<OperatorState>) -> Route {
    if state.admin_token.is_none() {
        return route;
    }
    let document = document::document();
    let service = OpenApiService::new(api::AdminApi, document::TITLE, env!("CARGO_PKG_VERSION"));
    let operator = Route::new()
        .at(
            ciq_http::routes::OPERATOR_DOCUMENT,
            poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json")
                    .body(document.clone())
            }),
        )
        .nest_no_strip(ciq_http::routes::OPERATOR_PREFIX, service.into_endpoint())
        .around(|endpoint, req| {
            ciq_http::body::cap_body(endpoint, req, MAX_BODY_BYTES, |max| {
                poem::IntoResponse::into_response(ciq_http::HttpError::payload_too_large(max))
            })
        })
        .around(api::guarded)
        .data(state);
    route.nest_no_strip(ciq_http::routes::OPERATOR_PREFIX, operator)
}

/// Adds `/healthz`, `/readyz` and `/metrics` to `route`: served by every instance,
/// without a token.
pub fn attach_probes(route: Route, state: Arc<OperatorState>) -> Route {
    let probes = Arc::new(
        OpenApiService::new(
            health::HealthApi,
            document::TITLE,
            env!("CARGO_PKG_VERSION"),
        )
        .into_endpoint()
        .data(state),
    );
    ["/healthz", "/readyz", "/metrics"]
        .into_iter()
        .fold(route, |route, path| {
            route.nest_no_strip(path, probes.clone())
        })
}
