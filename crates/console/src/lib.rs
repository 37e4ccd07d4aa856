//! The account owners' surface, "Settings": their own pages, server-rendered, usable
//! without JavaScript (a little script only adds the copy buttons).
//!
//! One module per resource, each with its routes and handlers, its markup in
//! [`views`]: [`session`] (`/`, sign-in and out), [`dashboard`] (`/settings`, the
//! overview), [`keys`] (`/settings/api-keys…`),
//! [`leads`] (`/settings/leads…`, the export), [`imports`] (`/settings/leads/imports…`),
//! [`webhooks`] (`/settings/webhooks…`), [`usage`] (a key's page: its usage and request
//! log, `/settings/api-keys/{id}…`). What every page shares is apart:
//! [`middleware`] (the store's bound, body caps, no caching or framing), [`cookies`],
//! and [`extract`] — the extractors a handler starts from (`SignedIn`, `SignedInForm`
//! with its CSRF token checked, `Owned` rows found in the owner's account) and the
//! `PageError` its `?` returns.
//!
//! Sessions live in an HttpOnly, SameSite=Lax cookie (over TLS: `Secure` and named
//! with the `__Host-` prefix); every form carries a CSRF token (the session's, or a
//! double-submit cookie before sign-in). Failed sign-ins are limited per email and per
//! client address.

pub mod cookies;
pub mod dashboard;
pub mod extract;
pub mod imports;
pub mod keys;
pub mod leads;
pub mod middleware;
pub mod session;
pub mod state;
pub mod usage;
pub mod views;
pub mod webhooks;

use std::sync::Arc;

use poem::Route;

pub use cookies::{LOGIN_CSRF_COOKIE, SESSION_COOKIE};
pub use middleware::MAX_FORM_BYTES;
pub use session::{
    LOGIN_ATTEMPTS_PER_ADDRESS, LOGIN_ATTEMPTS_PER_EMAIL, LOGIN_ATTEMPTS_PER_PAIR,
    LOGIN_EMAIL_CEILING_WINDOWS,
};
pub use state::ConsoleState;

/// Adds the account owners' routes to `route`.
pub fn attach(route: Route, state: Arc<ConsoleState>) -> Route {
    let route = session::routes(route, &state);
    let route = dashboard::routes(route, &state);
    let route = keys::routes(route, &state);
    let route = usage::routes(route, &state);
    let route = leads::routes(route, &state);
    let route = imports::routes(route, &state);
    webhooks::routes(route, &state)
}
