//! The route table: every path the gateway serves, the methods it accepts there, and
//! the label its requests are counted under. Metrics labels and the `Allow` header
//! of a 405 both read it, so they cannot drift apart; a test of the gateway checks
//! that every documented operation is in it.

use poem::Response;
use poem::http::{HeaderValue, StatusCode, header};

/// `POST` — the reference's Create Lead endpoint.
pub const CREATE_LEAD: &str = "/api/external/leads/create";
/// `POST` — up to 100 leads at once.
pub const BATCH_LEADS: &str = "/api/external/leads/batch";
/// `POST` — create or update a lead by its `external_id`.
pub const UPSERT_LEAD: &str = "/api/external/leads/upsert";
/// `GET` — a page of leads.
pub const LEADS: &str = "/api/external/leads";
/// `GET` — the calling key and its account: the credentials test.
pub const ME: &str = "/api/external/me";
/// `GET` — the calling key's usage in buckets.
pub const USAGE: &str = "/api/external/usage";
/// `GET` — the calling key's request log.
pub const REQUESTS: &str = "/api/external/requests";
/// `GET`, `POST` — the account's webhook endpoints (subscriptions through the API).
pub const WEBHOOKS: &str = "/api/external/webhooks";
/// `GET` — the embed script, current version (older versions stay at their paths).
pub const EMBED_FORM: &str = "/embed/v1/form.js";
/// The public OpenAPI document.
pub const PUBLIC_DOCUMENT: &str = "/openapi.json";
/// Swagger UI of the public document.
pub const DOCS: &str = "/docs";
/// Prefix of the operator API.
pub const OPERATOR_PREFIX: &str = "/admin/v1";
/// The operator API's own OpenAPI document.
pub const OPERATOR_DOCUMENT: &str = "/admin/v1/openapi.json";
/// The account owner's sign-in page.
pub const LOGIN: &str = "/login";
/// Sign-out (a form post).
pub const LOGOUT: &str = "/logout";
/// Sign-out of every session of the account (a form post).
pub const LOGOUT_EVERYWHERE: &str = "/logout/everywhere";
/// Settings → Overview: where Settings opens.
pub const SETTINGS: &str = "/settings";
/// Settings → Account: the owner's password.
pub const SETTINGS_ACCOUNT: &str = "/settings/account";
/// Settings → API Key.
pub const SETTINGS_API_KEYS: &str = "/settings/api-keys";
/// Settings → Leads.
pub const SETTINGS_LEADS: &str = "/settings/leads";
/// Settings → Leads → Export CSV (the current filter, streamed).
pub const SETTINGS_LEADS_EXPORT: &str = "/settings/leads/export.csv";
/// Settings → Webhooks: the owner's endpoints.
pub const SETTINGS_WEBHOOKS: &str = "/settings/webhooks";
/// Settings → Leads → Import: the upload form and the latest imports.
pub const SETTINGS_LEADS_IMPORTS: &str = "/settings/leads/imports";

/// One served path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// The path; `:name` matches one segment, a trailing `*` any rest.
    pub pattern: &'static str,
    /// The methods served there, as the `Allow` header lists them.
    pub allow: &'static str,
    /// The metrics label of its requests (a few paths share one).
    pub label: &'static str,
}

const fn route(pattern: &'static str, allow: &'static str, label: &'static str) -> RouteSpec {
    RouteSpec {
        pattern,
        allow,
        label,
    }
}

/// Every path the gateway serves.
pub const ROUTES: &[RouteSpec] = &[
    route(CREATE_LEAD, "POST, OPTIONS", CREATE_LEAD),
    route(BATCH_LEADS, "POST, OPTIONS", BATCH_LEADS),
    route(UPSERT_LEAD, "POST", UPSERT_LEAD),
    route(LEADS, "GET", LEADS),
    route(ME, "GET", ME),
    route(USAGE, "GET", USAGE),
    route(REQUESTS, "GET", REQUESTS),
    route(WEBHOOKS, "GET, POST", WEBHOOKS),
    route(
        "/api/external/webhooks/:id",
        "GET, PATCH, DELETE",
        "/api/external/webhooks/{id}",
    ),
    route(
        "/api/external/leads/:id",
        "GET, PATCH, DELETE",
        "/api/external/leads/{id}",
    ),
    route("/healthz", "GET", "/healthz"),
    route("/readyz", "GET", "/readyz"),
    route("/metrics", "GET", "/metrics"),
    route(PUBLIC_DOCUMENT, "GET", PUBLIC_DOCUMENT),
    route("/docs", "GET", DOCS),
    route("/docs/*", "GET", DOCS),
    route(EMBED_FORM, "GET", "/embed"),
    route("/", "GET", "/"),
    route(LOGIN, "GET, POST", LOGIN),
    route(LOGOUT, "POST", LOGIN),
    route(LOGOUT_EVERYWHERE, "POST", LOGIN),
    route(SETTINGS, "GET", "/settings"),
    route(SETTINGS_ACCOUNT, "GET, POST", "/settings"),
    route(SETTINGS_API_KEYS, "GET, POST", "/settings"),
    route(
        "/settings/api-keys/:key_id/revoke",
        "GET, POST",
        "/settings",
    ),
    route("/settings/api-keys/:key_id/roll", "POST", "/settings"),
    route("/settings/api-keys/:key_id", "GET", "/settings"),
    route("/settings/api-keys/:key_id/usage.csv", "GET", "/settings"),
    route(
        "/settings/api-keys/:key_id/requests.csv",
        "GET",
        "/settings",
    ),
    route(SETTINGS_LEADS, "GET", "/settings"),
    route(SETTINGS_LEADS_EXPORT, "GET", "/settings"),
    // Before `/settings/leads/:lead_id`, which would match them too.
    route(SETTINGS_LEADS_IMPORTS, "GET, POST", "/settings"),
    route(
        "/settings/leads/imports/:import_id",
        "GET, POST",
        "/settings",
    ),
    route(
        "/settings/leads/imports/:import_id/failures.csv",
        "GET",
        "/settings",
    ),
    route("/settings/leads/:lead_id", "GET", "/settings"),
    route(SETTINGS_WEBHOOKS, "GET, POST", "/settings"),
    route("/settings/webhooks/:endpoint_id", "GET", "/settings"),
    route(
        "/settings/webhooks/:endpoint_id/deliveries/:delivery_id/replay",
        "POST",
        "/settings",
    ),
    route(
        "/settings/webhooks/:endpoint_id/:action",
        "POST",
        "/settings",
    ),
    // Last of Settings: any other path under it is an HTML 404.
    route("/settings/*", "GET", "/settings"),
    route(OPERATOR_DOCUMENT, "GET", "/admin"),
    route("/admin/v1/users", "POST", "/admin"),
    route("/admin/v1/users/:user_id/keys", "GET, POST", "/admin"),
    route("/admin/v1/keys/:key_id/revoke", "POST", "/admin"),
    route("/admin/v1/keys/:key_id/roll", "POST", "/admin"),
    route("/admin/v1/keys/:key_id/usage", "GET", "/admin"),
    route("/admin/v1/users/:user_id/usage", "GET", "/admin"),
];

/// Label of requests to paths that are not in the table: scanners probing random
/// paths cannot blow up the label set.
pub const OTHER: &str = "other";

impl RouteSpec {
    /// Whether `path` is this route.
    ///
    /// Segments are split as bytes: `str::split('/')` searched each pattern a character
    /// at a time, and every request runs this against the table's routes in order (13 %
    /// of a `/healthz`'s instructions, callgrind 2026-12-07). `/` is ASCII, so the
    /// segments are the same.
    pub fn matches(&self, path: &str) -> bool {
        let segments = |text: &'static [u8]| text.split(|&b| b == b'/');
        let mut pattern = segments(self.pattern.as_bytes());
        let mut given = path.as_bytes().split(|&b| b == b'/');
        loop {
            match (pattern.next(), given.next()) {
                (None, None) => return true,
                (Some(b"*"), Some(_)) => return true,
                (Some(p), Some(g)) if p.first() == Some(&b':') && !g.is_empty() => {}
                (Some(p), Some(g)) if p == g => {}
                _ => return false,
            }
        }
    }

    /// Whether `method` is served here.
    pub fn serves(&self, method: &str) -> bool {
        self.allow.split(", ").any(|m| m == method)
    }
}

/// The route `path` belongs to.
pub fn find(path: &str) -> Option<&'static RouteSpec> {
    ROUTES.iter().find(|r| r.matches(path))
}

/// The metrics label of a request whose path [`find`] resolved to `route` ([`OTHER`]
/// where none matched).
pub fn label(route: Option<&RouteSpec>) -> &'static str {
    route.map_or(OTHER, |r| r.label)
}

/// RFC 9110: a 405 says which methods the resource does accept (`route`, found by
/// [`find`] for the request's path; `GET` where no route matched).
pub fn add_allow(resp: &mut Response, route: Option<&RouteSpec>) {
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allow = route.map_or("GET", |r| r.allow);
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_match_one_segment_and_stars_the_rest() {
        assert_eq!(
            find("/settings/api-keys/0199/revoke").map(|r| r.allow),
            Some("GET, POST")
        );
        assert_eq!(find("/admin/v1/keys//revoke"), None);
        // Any other path under Settings is its HTML 404.
        assert_eq!(
            find("/settings/api-keys//revoke").map(|r| r.pattern),
            Some("/settings/*")
        );
        assert_eq!(label(find("/docs/swagger-ui.css")), DOCS);
        assert_eq!(label(find("/docs")), DOCS);
        assert_eq!(label(find("/logout")), LOGIN);
        assert_eq!(label(find("/admin/v1/users/x/keys")), "/admin");
        assert_eq!(label(find("/wp-login.php")), OTHER);
        assert_eq!(label(find("/api/external/leads/create/x")), OTHER);
        // Every segment counts: a trailing slash, an empty parameter, a longer or
        // shorter path, and text that is not ASCII.
        assert_eq!(label(find("/healthz/")), OTHER);
        assert_eq!(label(find("/api/external/leads/")), OTHER);
        assert_eq!(
            label(find("/api/external/leads/ünïcode")),
            "/api/external/leads/{id}"
        );
        assert_eq!(label(find("/api/external")), OTHER);
        assert_eq!(label(find("")), OTHER);
        assert_eq!(find("/").map(|r| r.pattern), Some("/"));
    }

    #[test]
    fn every_pattern_is_in_the_table_once() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(seen.insert(r.pattern), "{} twice", r.pattern);
            assert!(
                r.allow
                    .split(", ")
                    .all(|m| ["GET", "POST", "PATCH", "DELETE", "OPTIONS"].contains(&m))
            );
        }
    }
}
