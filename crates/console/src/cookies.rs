//! The Settings cookies: HttpOnly, SameSite=Lax, and over TLS `Secure` with the
//! `__Host-` prefix, so a cookie set over plain HTTP or by a sibling domain can never
//! stand in for one of ours.

use poem::http::{HeaderValue, header};
use poem::{Request, Response};

use crate::state::ConsoleState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "ciq_session";
/// Name of the pre-sign-in CSRF cookie (double submit: the sign-in form carries it too).
pub const LOGIN_CSRF_COOKIE: &str = "ciq_login_csrf";
/// The cookie that says "this browser wrote within the replica's lag bound": while it
/// lasts, its Settings lists come from the primary, so a page after a change shows it.
pub const WROTE_COOKIE: &str = "ciq_wrote";

/// Whether the browser reached us over TLS (through a trusted proxy that says so).
pub(crate) fn over_tls(req: &Request, state: &ConsoleState) -> bool {
    ciq_http::client::over_tls(req, state.trust_forwarded_for)
}

/// A cookie's name as this request must see it: over TLS with the `__Host-` prefix
/// (the browser then only keeps it if it is `Secure`, for this host, on `/`).
fn cookie_name(req: &Request, state: &ConsoleState, base: &str) -> String {
    if over_tls(req, state) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// The value of our cookie `base` in the request, if it came with one.
pub(crate) fn cookie(req: &Request, state: &ConsoleState, base: &str) -> Option<String> {
    let name = cookie_name(req, state, base);
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Sets our cookie `name` on `resp` for `max_age` seconds (0 removes it).
pub(crate) fn set_cookie(
    resp: &mut Response,
    req: &Request,
    state: &ConsoleState,
    name: &str,
    value: &str,
    max_age: u64,
) {
    let secure = if over_tls(req, state) { "; Secure" } else { "" };
    let name = cookie_name(req, state, name);
    let cookie =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    resp.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("cookie values are base62"),
    );
}
