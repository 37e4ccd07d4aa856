//! The account owners' surface, "Settings → API Key": their own pages,
//! server-rendered, usable without JavaScript (a little script only adds the copy
//! button).
//!
//! - `GET /`: where to go (the API documentation, the Settings pages)
//! - `GET /settings`: leads to `/settings/api-keys`
//! - `GET/POST /login`, `POST /logout`, `POST /logout/everywhere` (every session of
//!   the account ends)
//! - `GET /settings/api-keys`: keys, generate form, history
//! - `POST /settings/api-keys`: generate (the key is shown on the answer, once)
//! - `GET/POST /settings/api-keys/{id}/revoke`: confirm, then revoke
//! - `POST /settings/api-keys/{id}/roll`: new key now, old one for the chosen overlap
//! - `GET /settings/leads…`: the leads, their export and CSV imports ([`leads`], [`imports`])
//! - `GET/POST /settings/webhooks…`: endpoints, delivery log, replay ([`webhooks`])
//!
//! Sessions live in an HttpOnly, SameSite=Lax cookie (over TLS: `Secure` and named
//! with the `__Host-` prefix); every form
//! carries a CSRF token (the session's, or a double-submit cookie before sign-in).
//! Failed sign-ins are limited per email and per client address.

pub mod imports;
pub mod leads;
pub mod pages;
pub mod state;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Form, Path};
use poem::{Endpoint, EndpointExt, Request, Response, Route, get, handler, post};
use serde::Deserialize;
use uuid::Uuid;

use ciq_admin::keys::{self, Actor, NewKey};
use ciq_admin::sessions::{self, Session};
use ciq_admin::{AdminError, SecretHasher, users};
use ciq_entity::key_event::ActorSource;
use ciq_http::client::client_address;
use ciq_http::routes::{
    LOGIN, LOGOUT, LOGOUT_EVERYWHERE, SETTINGS_API_KEYS, SETTINGS_LEADS, SETTINGS_LEADS_EXPORT,
    SETTINGS_LEADS_IMPORTS, SETTINGS_WEBHOOKS,
};
use ciq_limiter::Bucket;
use secrecy::ExposeSecret;

use pages::{Flash, ROLL_OVERLAPS};
pub use state::ConsoleState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "ciq_session";
/// Name of the pre-sign-in CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "ciq_login_csrf";
/// Sign-in attempts allowed per (email, client address) per window; a successful one
/// is given back.
pub const LOGIN_ATTEMPTS_PER_PAIR: u32 = 5;
/// Sign-in attempts allowed per client address (IPv6: per /64) per window, whatever
/// the emails.
pub const LOGIN_ATTEMPTS_PER_ADDRESS: u32 = 20;
/// The slower ceiling for one email from every address together, per
/// [`LOGIN_EMAIL_CEILING_WINDOWS`] windows: a distributed guesser gets no more, while
/// the owner, signing in from an address of their own, is not locked out by the
/// per-pair limit of somebody else's.
pub const LOGIN_ATTEMPTS_PER_EMAIL: u32 = 50;
/// How many windows the per-email ceiling spans (15 minutes with the 60 s window).
pub const LOGIN_EMAIL_CEILING_WINDOWS: u32 = 15;
/// Largest form body accepted, in bytes: the largest form (sign-in: a 254-character
/// email, a 128-character password, a token) is well under 1 KiB.
pub const MAX_FORM_BYTES: usize = 8 * 1024;

/// Adds the account owners' routes to `route`.
pub fn attach(route: Route, state: Arc<ConsoleState>) -> Route {
    let breaker = state.breaker.clone();
    let page_within =
        |endpoint: poem::RouteMethod, max_bytes: usize, too_large: fn(usize) -> Response| {
            let breaker = breaker.clone();
            endpoint
                .around(move |endpoint, req| {
                    let breaker = breaker.clone();
                    async move {
                        // Every page needs the account store: no wait while it is gone.
                        match breaker.guard(endpoint.call(req)).await {
                            Err(down) => Ok(store_trouble(AdminError::Database(
                                sea_orm::DbErr::Custom(down.to_string()),
                            ))),
                            Ok(answer) => answer.map(poem::IntoResponse::into_response),
                        }
                    }
                })
                // Outside the breaker's guard: a slow upload is the client's time, not
                // the store's.
                .around(move |endpoint, req| {
                    ciq_http::body::cap_body(endpoint, req, max_bytes, too_large)
                })
                .around({
                    let state = state.clone();
                    move |endpoint, req| marking_writes(endpoint, req, state.clone())
                })
                .map_to_response()
                .after(protect)
                .data(state.clone())
        };
    let page = |endpoint| page_within(endpoint, MAX_FORM_BYTES, form_too_large);
    route
        .at("/", get(home).map_to_response().after(protect))
        .at("/settings", page(get(settings_index)))
        .at(LOGIN, page(get(login_page).post(login)))
        .at(LOGOUT, page(post(logout)))
        .at(LOGOUT_EVERYWHERE, page(post(logout_everywhere)))
        .at(SETTINGS_API_KEYS, page(get(keys_page).post(generate)))
        .at(
            "/settings/api-keys/:key_id/revoke",
            page(get(revoke_confirmation).post(revoke)),
        )
        .at("/settings/api-keys/:key_id/roll", page(post(roll)))
        .at(SETTINGS_LEADS, page(get(leads::list_page)))
        .at(SETTINGS_LEADS_EXPORT, page(get(leads::export_csv)))
        .at(
            SETTINGS_LEADS_IMPORTS,
            poem::RouteMethod::new()
                .get(page(get(imports::imports_page)))
                .post(page_within(
                    post(imports::upload),
                    imports::MAX_UPLOAD_BYTES,
                    imports::file_too_large,
                )),
        )
        .at(
            "/settings/leads/imports/:import_id",
            page(get(imports::import_page).post(imports::save_import)),
        )
        .at(
            "/settings/leads/imports/:import_id/failures.csv",
            page(get(imports::failures_csv)),
        )
        .at("/settings/leads/:lead_id", page(get(leads::detail_page)))
        .at(
            SETTINGS_WEBHOOKS,
            page(get(webhooks::list_page).post(webhooks::create)),
        )
        .at(
            "/settings/webhooks/:endpoint_id",
            page(get(webhooks::log_page)),
        )
        .at(
            "/settings/webhooks/:endpoint_id/deliveries/:delivery_id/replay",
            page(post(webhooks::replay)),
        )
        .at(
            "/settings/webhooks/:endpoint_id/:action",
            page(post(webhooks::act)),
        )
}

/// `GET /`: a person who opens the gateway's address learns where to go.
#[handler]
async fn home() -> Response {
    html(StatusCode::OK, pages::home())
}

/// `GET /settings`: the only Settings section is the API keys.
#[handler]
async fn settings_index() -> Response {
    redirect(SETTINGS_API_KEYS)
}

/// Pages that may show a key, a CSRF token or account data are never cached and
/// never framed.
async fn protect(result: poem::Result<Response>) -> poem::Result<Response> {
    result.map(|mut resp| {
        let headers = resp.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static(pages::content_security_policy()),
        );
        headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
        resp
    })
}

/// A cookie's name as this request must see it: over TLS with the `__Host-` prefix
/// (the browser then only keeps it if it is `Secure`, for this host, on `/`), so a
/// cookie set over plain HTTP or by a sibling domain can never stand in for it.
fn cookie_name(req: &Request, state: &ConsoleState, base: &str) -> String {
    if over_tls(req, state) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// The cookie that says "this browser wrote within the replica's lag bound": while it
/// lasts, its Settings lists come from the primary, so a page after a change shows it.
const WROTE_COOKIE: &str = "ciq_wrote";

/// Runs a page; when it took a form (a POST answered below 400) and a read replica is
/// configured, marks the browser as having just written, for as long as the replica
/// may lag.
async fn marking_writes<E: Endpoint>(
    endpoint: E,
    req: Request,
    state: Arc<ConsoleState>,
) -> poem::Result<Response> {
    let mut mark = Response::default();
    if let Some(fresh_for) = state.reads.fresh_for()
        && req.method() == poem::http::Method::POST
    {
        set_cookie(
            &mut mark,
            &req,
            &state,
            WROTE_COOKIE,
            "1",
            fresh_for.as_secs(),
        );
    }
    let mut resp = poem::IntoResponse::into_response(endpoint.call(req).await?);
    if resp.status().as_u16() < 400 {
        for cookie in mark.headers().get_all(header::SET_COOKIE) {
            resp.headers_mut()
                .append(header::SET_COOKIE, cookie.clone());
        }
    }
    Ok(resp)
}

impl ConsoleState {
    /// Where this request's lists are read: the read replica while it is fit, except
    /// for a POST (its page shows what it just wrote) and for a browser that wrote
    /// within the replica's lag bound (the `ciq_wrote` cookie): those read the primary.
    fn lists_for(&self, req: &Request) -> ciq_store::Reads {
        if req.method() == poem::http::Method::GET && cookie(req, self, WROTE_COOKIE).is_none() {
            self.reads.clone()
        } else {
            ciq_store::Reads::primary_only(self.db.clone())
        }
    }
}

fn cookie(req: &Request, state: &ConsoleState, base: &str) -> Option<String> {
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

/// Whether the browser reached us over TLS (through a trusted proxy that says so).
fn over_tls(req: &Request, state: &ConsoleState) -> bool {
    ciq_http::client::over_tls(req, state.trust_forwarded_for)
}

fn set_cookie(
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

fn html(status: StatusCode, body: maud::Markup) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .body(body.into_string())
}

fn redirect(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .finish()
}

fn tokens_match(presented: &str, expected: &str) -> bool {
    !presented.is_empty() && ciq_admin::hashing::secrets_equal(presented, expected)
}

fn store_trouble(err: impl std::fmt::Display) -> Response {
    let mut resp = html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::message(
            "Temporarily unavailable",
            "We could not reach the account store. Please try again in a moment.",
        ),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    // Logged once, by the access log, with the request's id.
    resp.extensions_mut()
        .insert(ciq_http::error::ErrorCause(format!("settings: {err}")));
    resp
}

/// The signed-in owner, or the response to send instead (sign-in page).
async fn signed_in(req: &Request, state: &ConsoleState) -> Result<(String, Session), Response> {
    let Some(token) = cookie(req, state, SESSION_COOKIE) else {
        return Err(redirect(LOGIN));
    };
    match sessions::live(&state.sessions, &state.db, &token).await {
        Ok(Some(session)) => Ok((token, session)),
        Ok(None) => Err(redirect("/login?expired=1")),
        Err(err) => Err(store_trouble(err)),
    }
}

/// The signed-in owner of a form post whose CSRF token matches the session's, or the
/// response to send instead.
async fn signed_in_form(
    req: &Request,
    state: &ConsoleState,
    csrf: &str,
) -> Result<Session, Response> {
    let (_, session) = signed_in(req, state).await?;
    if tokens_match(csrf, &session.csrf_token) {
        Ok(session)
    } else {
        Err(csrf_refused())
    }
}

fn key_not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        pages::message("Key not found", "That key does not exist in your account."),
    )
}

/// 201 when the page shows a new key, 422 when a form was refused, 200 otherwise.
fn flash_status(flash: &Flash) -> StatusCode {
    if flash.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else if flash.new_key.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

fn form_too_large(max: usize) -> Response {
    html(
        StatusCode::PAYLOAD_TOO_LARGE,
        pages::message(
            "That form was too large",
            &format!("A form may carry at most {max} bytes. Go back and try again."),
        ),
    )
}

fn csrf_refused() -> Response {
    html(
        StatusCode::FORBIDDEN,
        pages::message(
            "This form has expired",
            "For your safety the form could not be accepted. Go back, reload the page and try again.",
        ),
    )
}

// ---- sign-in -------------------------------------------------------------------

#[derive(Deserialize)]
struct LoginQuery {
    expired: Option<String>,
}

#[handler]
async fn login_page(req: &Request, state: Data<&Arc<ConsoleState>>) -> Response {
    let expired = req
        .params::<LoginQuery>()
        .is_ok_and(|q| q.expired.is_some());
    login_form(
        req,
        &state,
        StatusCode::OK,
        expired.then_some("Your session has ended. Please sign in again."),
        "",
    )
}

fn login_form(
    req: &Request,
    state: &ConsoleState,
    status: StatusCode,
    notice: Option<&str>,
    email: &str,
) -> Response {
    let csrf = sessions::new_token();
    let mut resp = html(status, pages::login(&csrf, notice, email));
    set_cookie(&mut resp, req, state, LOGIN_CSRF_COOKIE, &csrf, 3600);
    resp
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: secrecy::SecretString,
    csrf: String,
}

#[handler]
async fn login(req: &Request, state: Data<&Arc<ConsoleState>>, form: Form<LoginForm>) -> Response {
    let state: &ConsoleState = &state;
    let expected = cookie(req, state, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !tokens_match(&form.csrf, &expected) {
        return csrf_refused();
    }
    let email = form.email.trim().to_lowercase();
    // Too long to be an account's: refused before it is hashed or names a limiter bucket.
    if email.len() > ciq_entity::email::MAX_EMAIL_LEN
        || form.password.expose_secret().chars().count() > users::MAX_PASSWORD_LEN
    {
        return login_form(
            req,
            state,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("That email or password is longer than any account's."),
            "",
        );
    }
    let address = ciq_http::client::throttle_group(&client_address(req, state.trust_forwarded_for));
    let buckets = [
        (
            Bucket::LoginPair(&email, &address),
            LOGIN_ATTEMPTS_PER_PAIR,
            state.window,
        ),
        (
            Bucket::LoginAddress(&address),
            LOGIN_ATTEMPTS_PER_ADDRESS,
            state.window,
        ),
        (
            Bucket::LoginEmail(&email),
            LOGIN_ATTEMPTS_PER_EMAIL,
            state.window * LOGIN_EMAIL_CEILING_WINDOWS,
        ),
    ];
    // Counted before the password is checked, atomically, so concurrent guesses cannot
    // all slip through one remaining place; given back when it was the right password.
    let mut counted = Vec::with_capacity(buckets.len());
    for (bucket, limit, window) in &buckets {
        let d = state.limiter.acquire(bucket, *limit, *window).await;
        if !d.allowed {
            refund(state, &counted).await;
            let mut resp = html(
                StatusCode::TOO_MANY_REQUESTS,
                pages::message(
                    "Too many sign-in attempts",
                    &format!(
                        "Please wait {} seconds before trying again.",
                        d.reset_after_secs()
                    ),
                ),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(d.reset_after_secs()));
            return resp;
        }
        counted.push(*bucket);
    }
    // A bounded number of password checks at a time; more wait for nothing, they are
    // told to come back.
    let Ok(_slot) = state.sign_in_slots.try_acquire() else {
        refund(state, &counted).await;
        let mut resp = html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::message(
                "Too many sign-ins right now",
                "Please try again in a moment.",
            ),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    };
    let user = match sessions::check_credentials(
        &state.db,
        &SecretHasher::default(),
        &email,
        &form.password,
    )
    .await
    {
        Ok(user) => user,
        Err(err) => {
            refund(state, &counted).await;
            return store_trouble(err);
        }
    };
    let Some(user) = user else {
        return login_form(
            req,
            state,
            StatusCode::UNAUTHORIZED,
            Some("That email and password do not match an account."),
            &email,
        );
    };
    refund(state, &counted).await;
    match state.sessions.start(user.id, state.session_ttl).await {
        Ok((token, _)) => {
            let mut resp = redirect(SETTINGS_API_KEYS);
            set_cookie(
                &mut resp,
                req,
                state,
                SESSION_COOKIE,
                &token,
                state.session_ttl.as_secs(),
            );
            set_cookie(&mut resp, req, state, LOGIN_CSRF_COOKIE, "", 0);
            resp
        }
        Err(err) => store_trouble(err),
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: String,
}

#[handler]
async fn logout(req: &Request, state: Data<&Arc<ConsoleState>>, form: Form<CsrfOnly>) -> Response {
    let (token, session) = match signed_in(req, &state).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    if !tokens_match(&form.csrf, &session.csrf_token) {
        return csrf_refused();
    }
    if let Err(err) = state.sessions.end(&token).await {
        return store_trouble(err);
    }
    let mut resp = redirect(LOGIN);
    set_cookie(&mut resp, req, &state, SESSION_COOKIE, "", 0);
    resp
}

/// Gives back the sign-in attempts counted in `buckets`.
async fn refund(state: &ConsoleState, buckets: &[Bucket<'_>]) {
    for bucket in buckets {
        state.limiter.refund(bucket).await;
    }
}

/// "Sign out everywhere": every session of the account ends, this one included.
#[handler]
async fn logout_everywhere(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    form: Form<CsrfOnly>,
) -> Response {
    let session = match signed_in_form(req, &state, &form.csrf).await {
        Ok(session) => session,
        Err(resp) => return resp,
    };
    if let Err(err) = sessions::end_all(&state.db, session.user_id).await {
        return store_trouble(err);
    }
    let mut resp = redirect(LOGIN);
    set_cookie(&mut resp, req, &state, SESSION_COOKIE, "", 0);
    resp
}

// ---- keys ----------------------------------------------------------------------

/// The keys page for `req`; its lists are read where [`ConsoleState::lists_for`] says.
async fn render_keys(
    state: &ConsoleState,
    req: &Request,
    session: &Session,
    status: StatusCode,
    flash: Flash,
) -> Response {
    let (lists, user_id) = (state.lists_for(req), session.user_id);
    let user = match users::find_user(&state.db, &session.user_id.to_string()).await {
        Ok(user) => user,
        Err(err) => return store_trouble(err),
    };
    let listed = match lists
        .read(|db| async move { keys::list_keys(&db, user_id).await })
        .await
    {
        Ok(listed) => listed,
        Err(err) => return store_trouble(err),
    };
    let history = match lists
        .read(|db| async move { keys::key_history(&db, user_id, 15).await })
        .await
    {
        Ok(history) => history,
        Err(err) => return store_trouble(err),
    };
    html(
        status,
        pages::keys(
            &user,
            &listed,
            &history,
            &session.csrf_token,
            &flash,
            state.default_limit_per_window,
        ),
    )
}

#[handler]
async fn keys_page(req: &Request, state: Data<&Arc<ConsoleState>>) -> Response {
    match signed_in(req, &state).await {
        Ok((_, session)) => {
            render_keys(&state, req, &session, StatusCode::OK, Flash::default()).await
        }
        Err(resp) => resp,
    }
}

#[derive(Deserialize)]
struct GenerateForm {
    csrf: String,
    name: String,
    expires_in_days: Option<u32>,
    scope_create: Option<String>,
    scope_read: Option<String>,
    scope_write: Option<String>,
    /// Web origins, one per line (or separated by spaces or commas).
    #[serde(default)]
    allowed_origins: String,
}

impl GenerateForm {
    /// The origins typed, one per entry.
    fn origins(&self) -> Vec<String> {
        self.allowed_origins
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The ticked permissions.
    fn scopes(&self) -> Vec<ciq_admin::Scope> {
        [
            (&self.scope_create, ciq_admin::Scope::LeadsCreate),
            (&self.scope_read, ciq_admin::Scope::LeadsRead),
            (&self.scope_write, ciq_admin::Scope::LeadsWrite),
        ]
        .into_iter()
        .filter(|(ticked, _)| ticked.is_some())
        .map(|(_, scope)| scope)
        .collect()
    }
}

fn settings_actor(req: &Request, state: &ConsoleState) -> Actor {
    Actor {
        source: ActorSource::Settings,
        address: Some(client_address(req, state.trust_forwarded_for)),
    }
}

/// The page's answer to a refused form: a flash naming the problem, or the store
/// trouble page when it was no problem of the form's.
fn refused_form(err: AdminError) -> Result<Flash, Box<Response>> {
    match form_problem(err) {
        Ok(problem) => Ok(Flash {
            error: Some(problem),
            ..Flash::default()
        }),
        Err(err) => Err(Box::new(store_trouble(err))),
    }
}

fn form_problem(err: AdminError) -> Result<String, AdminError> {
    match err {
        AdminError::Invalid { field, rule } => Ok(format!("{}: {rule}", field.replace('_', " "))),
        err @ AdminError::TooManyKeys(_) => Ok(err.to_string()),
        AdminError::KeyNotFound(_) => Ok("That key no longer exists.".into()),
        other => Err(other),
    }
}

#[handler]
async fn generate(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    form: Form<GenerateForm>,
) -> Response {
    let session = match signed_in_form(req, &state, &form.csrf).await {
        Ok(session) => session,
        Err(resp) => return resp,
    };
    let expires_at = form
        .expires_in_days
        .filter(|d| *d > 0)
        .map(|d| ciq_entity::now() + chrono::TimeDelta::days(i64::from(d)));
    let scopes = form.scopes();
    if scopes.is_empty() {
        let flash = Flash {
            error: Some("Choose at least one thing the key may do.".into()),
            ..Flash::default()
        };
        return render_keys(
            &state,
            req,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            flash,
        )
        .await;
    }
    let new = NewKey {
        name: form.name.clone(),
        expires_at,
        scopes: ciq_admin::Scopes::of(&scopes),
        allowed_origins: form.origins(),
        ..NewKey::default()
    };
    let created = keys::create_key(
        &state.db,
        &SecretHasher::default(),
        session.user_id,
        new,
        &settings_actor(req, &state),
    )
    .await;
    let flash = match created {
        Ok((row, plain)) => Flash {
            new_key: Some((row.name, plain.expose().to_owned())),
            ..Flash::default()
        },
        Err(err) => match refused_form(err) {
            Ok(flash) => flash,
            Err(resp) => return *resp,
        },
    };
    render_keys(&state, req, &session, flash_status(&flash), flash).await
}

/// The key, if it belongs to the signed-in owner: one owner never sees or touches
/// another's keys (a foreign id is "not found").
async fn own_key(
    state: &ConsoleState,
    session: &Session,
    key_id: Uuid,
) -> Result<Option<ciq_entity::api_key::Model>, AdminError> {
    match keys::find_key(&state.db, key_id).await {
        Ok(key) if key.user_id == session.user_id => Ok(Some(key)),
        Ok(_) | Err(AdminError::KeyNotFound(_)) => Ok(None),
        Err(err) => Err(err),
    }
}

#[handler]
async fn revoke_confirmation(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    Path(key_id): Path<Uuid>,
) -> Response {
    let (_, session) = match signed_in(req, &state).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    match own_key(&state, &session, key_id).await {
        Ok(Some(key)) => html(
            StatusCode::OK,
            pages::confirm_revoke(&key, &session.csrf_token),
        ),
        Ok(None) => key_not_found(),
        Err(err) => store_trouble(err),
    }
}

#[handler]
async fn revoke(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    Path(key_id): Path<Uuid>,
    form: Form<CsrfOnly>,
) -> Response {
    let session = match signed_in_form(req, &state, &form.csrf).await {
        Ok(session) => session,
        Err(resp) => return resp,
    };
    let key = match own_key(&state, &session, key_id).await {
        Ok(Some(key)) => key,
        Ok(None) => {
            return key_not_found();
        }
        Err(err) => return store_trouble(err),
    };
    if let Err(err) = keys::revoke_key(&state.db, key.id, &settings_actor(req, &state)).await {
        return store_trouble(err);
    }
    let flash = Flash {
        notice: Some(format!(
            "Revoked “{}” ({}…). It stops working within a second.",
            key.name, key.display_prefix
        )),
        ..Flash::default()
    };
    render_keys(&state, req, &session, StatusCode::OK, flash).await
}

#[derive(Deserialize)]
struct RollForm {
    csrf: String,
    overlap_seconds: u64,
}

#[handler]
async fn roll(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    Path(key_id): Path<Uuid>,
    form: Form<RollForm>,
) -> Response {
    let session = match signed_in_form(req, &state, &form.csrf).await {
        Ok(session) => session,
        Err(resp) => return resp,
    };
    if !ROLL_OVERLAPS
        .iter()
        .any(|(secs, _)| *secs == form.overlap_seconds)
    {
        let flash = Flash {
            error: Some("Choose when the old key should stop working.".into()),
            ..Flash::default()
        };
        return render_keys(
            &state,
            req,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            flash,
        )
        .await;
    }
    let key = match own_key(&state, &session, key_id).await {
        Ok(Some(key)) => key,
        Ok(None) => {
            return key_not_found();
        }
        Err(err) => return store_trouble(err),
    };
    let rolled = keys::roll_key(
        &state.db,
        &SecretHasher::default(),
        key.id,
        Duration::from_secs(form.overlap_seconds),
        &settings_actor(req, &state),
    )
    .await;
    let flash = match rolled {
        Ok((row, plain)) => Flash {
            new_key: Some((row.name, plain.expose().to_owned())),
            notice: Some(match form.overlap_seconds {
                0 => format!(
                    "Rolled “{}”: the old key ({}…) has stopped working.",
                    key.name, key.display_prefix
                ),
                _ => format!(
                    "Rolled “{}”: the old key ({}…) keeps working until its new expiry shown below.",
                    key.name, key.display_prefix
                ),
            }),
            ..Flash::default()
        },
        Err(err) => match refused_form(err) {
            Ok(flash) => flash,
            Err(resp) => return *resp,
        },
    };
    render_keys(&state, req, &session, flash_status(&flash), flash).await
}
