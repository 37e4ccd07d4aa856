//! The HTTP API of the ConvertIQ gateway.
//!
//! - [`leads`]: `POST /api/external/leads/create`, as the reference promises it.
//! - [`health`]: `/healthz`, `/readyz`.
//! - [`error`]: the one error shape every failure is answered in.
//! - [`openapi`]: the OpenAPI document (`/openapi.json`) and Swagger UI (`/docs`).
//! - [`metrics`]: Prometheus metrics (`/metrics`).

pub mod admin;
pub mod auth;
pub mod error;
pub mod health;
pub mod leads;
pub mod metrics;
pub mod openapi;
pub mod request_id;
pub mod settings;
pub mod state;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::Tags;

pub use state::{AppState, LimitSettings};

/// Operation groups in the document.
#[derive(Tags)]
pub enum ApiTags {
    /// Create leads in your ConvertIQ account.
    Leads,
    /// Liveness and readiness probes.
    Health,
    /// Operator API: users and keys (`Authorization: Bearer $CIQ_ADMIN_TOKEN`).
    Admin,
}

/// Every route of the gateway, with the error shape applied to all of them.
pub fn routes(state: Arc<AppState>) -> impl Endpoint + use<> {
    metrics::handle();
    let service = openapi::service();
    let document = openapi::document();
    let swagger = openapi::swagger_ui(&service, &document);
    settings::attach(Route::new())
        .at(
            "/openapi.json",
            poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json")
                    .body(document.clone())
            }),
        )
        .nest("/docs", swagger)
        .nest("/", service)
        // A request without a key never reaches the key checker (the framework refuses
        // it first); count it against its address here, like any other bad key.
        .around(|endpoint, mut req| async move {
            if req.uri().path() != leads::CREATE_PATH {
                return endpoint.call(req).await;
            }
            let state = req
                .data::<Arc<AppState>>()
                .expect("the application state is attached")
                .clone();
            // Group commit gathers the rows of creates in flight: say one may follow
            // before the key check, the limiter and validation take their time.
            req.extensions_mut()
                .insert(Arc::new(state.lead_writer.announce()));
            let keyless = req
                .headers()
                .get("x-api-key")
                .is_none_or(|v| v.as_bytes().iter().all(u8::is_ascii_whitespace));
            if keyless {
                auth::record_failure(&state, &req).await?;
            }
            endpoint.call(req).await
        })
        .around(admin::guarded)
        .data(state)
        .catch_all_error(|err| async move { error::render_framework_error(err) })
        .around(allow_header)
        .around(metrics::track)
        .around(request_id::track)
}

/// RFC 9110: a 405 says which methods the resource does accept.
async fn allow_header<E: Endpoint>(
    endpoint: Arc<E>,
    req: poem::Request,
) -> poem::Result<poem::Response> {
    let path = req.uri().path().to_owned();
    let mut resp = poem::IntoResponse::into_response(endpoint.call(req).await?);
    if resp.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED {
        let allow = if path == leads::CREATE_PATH
            || path.starts_with("/admin/v1/keys/")
            || path == "/admin/v1/users"
            || path == "/logout"
        {
            "POST"
        } else if path.starts_with("/admin/v1/users/")
            || path.starts_with("/settings/")
            || path == "/login"
        {
            "GET, POST"
        } else {
            "GET"
        };
        resp.headers_mut().insert(
            poem::http::header::ALLOW,
            poem::http::HeaderValue::from_static(allow),
        );
    }
    Ok(resp)
}
