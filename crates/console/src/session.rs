//! Signing in and out: `GET /` (where to go), `GET/POST /login`, `POST /logout`,
//! `POST /logout/everywhere` (every session of the account ends). Failed sign-ins are
//! limited per (email, client address), per address and per email; a bounded number of
//! password checks run at once.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{EndpointExt, Request, Response, Route, get, handler, post};
use secrecy::ExposeSecret;
use serde::Deserialize;

use ciq_admin::sessions;
use ciq_admin::{AdminError, SecretHasher, users};
use ciq_http::client::client_address;
use ciq_http::routes::{LOGIN, LOGOUT, LOGOUT_EVERYWHERE, SETTINGS_API_KEYS};
use ciq_limiter::Bucket;

use crate::cookies::{LOGIN_CSRF_COOKIE, SESSION_COOKIE, cookie, set_cookie};
use crate::extract::{CsrfForm, PageError, SignedIn, SignedInForm, tokens_match};
use crate::middleware::{page, protect};
use crate::state::ConsoleState;
use crate::views;

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

/// The session pages' routes.
pub(crate) fn routes(route: Route, state: &Arc<ConsoleState>) -> Route {
    route
        .at(
            "/",
            get(home)
                .data(state.clone())
                .map_to_response()
                .after(protect),
        )
        .at(
            ciq_http::routes::SETTINGS_ACCOUNT,
            page(state, get(account_page).post(change_password)),
        )
        .at("/settings/*path", page(state, get(not_found)))
        .at(LOGIN, page(state, get(login_page).post(login)))
        .at(
            format!("{}/:token", ciq_admin::resets::RESET_PATH),
            page(state, get(reset_page).post(reset_password)),
        )
        .at(LOGOUT, page(state, post(logout)))
        .at(LOGOUT_EVERYWHERE, page(state, post(logout_everywhere)))
}

/// `GET /`: a person who opens the gateway's address learns where to go; a signed-in
/// owner goes on to their overview.
#[handler]
async fn home(signed_in: Option<SignedIn>) -> Response {
    if signed_in.is_some() {
        return views::redirect(ciq_http::routes::SETTINGS);
    }
    views::page(StatusCode::OK, views::session::home())
}

#[derive(Deserialize)]
struct LoginQuery {
    expired: Option<String>,
    /// Present after a password was chosen with a link.
    reset: Option<String>,
    /// The Settings page to come back to once signed in.
    next: Option<String>,
}

/// `GET /settings/…` that is no page: a page that says so (404), not the API's JSON.
#[handler]
async fn not_found() -> Response {
    views::page(
        StatusCode::NOT_FOUND,
        views::message(
            "Page not found",
            "There is no such page in Settings. It may have moved, or the link may be mistyped.",
        ),
    )
}

/// `GET /login` (`?expired=1`: the page says the session ended; `?next=`: the Settings
/// page to come back to).
#[handler]
async fn login_page(req: &Request, state: Data<&Arc<ConsoleState>>) -> Response {
    let query = req.params::<LoginQuery>().ok();
    let expired = query.as_ref().is_some_and(|q| q.expired.is_some());
    let notice = expired.then_some("Your session has ended. Please sign in again.");
    let reset = query.as_ref().is_some_and(|q| q.reset.is_some());
    let done = reset.then_some("Your password is set: sign in with it.");
    let back = query.as_ref().and_then(|q| q.next.as_deref());
    login_form(req, &state, StatusCode::OK, (notice, done), "", back)
}

/// The sign-in form with a fresh double-submit CSRF token (cookie and field).
fn login_form(
    req: &Request,
    state: &ConsoleState,
    status: StatusCode,
    (notice, done): (Option<&str>, Option<&str>),
    email: &str,
    back: Option<&str>,
) -> Response {
    let back = back.and_then(crate::extract::safe_return);
    signed_out_form(req, state, |csrf| {
        views::page(
            status,
            views::session::login(csrf, notice, done, email, back),
        )
    })
}

/// A page of a form sent before any session (sign-in, a password link) with a fresh
/// double-submit CSRF token: `page` gets the field's value, the cookie carries it too.
fn signed_out_form(
    req: &Request,
    state: &ConsoleState,
    page: impl FnOnce(&str) -> Response,
) -> Response {
    let csrf = sessions::new_token();
    let mut resp = page(&csrf);
    set_cookie(&mut resp, req, state, LOGIN_CSRF_COOKIE, &csrf, 3600);
    resp
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: secrecy::SecretString,
    csrf: String,
    /// The Settings page to come back to (see [`crate::extract::safe_return`]).
    #[serde(default)]
    next: String,
}

/// Counts one attempt of `email` from `address` in every sign-in bucket, atomically,
/// before the password is checked (concurrent guesses cannot all slip through one
/// remaining place). Refused by one bucket: what was counted is given back and the
/// 429 page is the answer.
async fn count_attempt<'a>(
    state: &ConsoleState,
    email: &'a str,
    address: &'a str,
) -> Result<Vec<Bucket<'a>>, Response> {
    let buckets = [
        (
            Bucket::LoginPair(email, address),
            LOGIN_ATTEMPTS_PER_PAIR,
            state.window,
        ),
        (
            Bucket::LoginAddress(address),
            LOGIN_ATTEMPTS_PER_ADDRESS,
            state.window,
        ),
        (
            Bucket::LoginEmail(email),
            LOGIN_ATTEMPTS_PER_EMAIL,
            state.window * LOGIN_EMAIL_CEILING_WINDOWS,
        ),
    ];
    let mut counted = Vec::with_capacity(buckets.len());
    for (bucket, limit, window) in buckets {
        let d = state.limiter.acquire(&bucket, limit, window).await;
        if !d.allowed {
            refund(state, &counted).await;
            let wait = d.reset_after_secs();
            return Err(views::come_back(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-in attempts",
                &format!("Please wait {wait} seconds before trying again."),
                wait,
            ));
        }
        counted.push(bucket);
    }
    Ok(counted)
}

/// Gives back the sign-in attempts counted in `buckets`.
async fn refund(state: &ConsoleState, buckets: &[Bucket<'_>]) {
    for bucket in buckets {
        state.limiter.refund(bucket).await;
    }
}

/// `POST /login` (`email`, `password`, `csrf` = the cookie's): a session and the keys
/// page, or the form again saying what was wrong.
#[handler]
async fn login(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    form: Form<LoginForm>,
) -> Result<Response, PageError> {
    let state: &ConsoleState = &state;
    let expected = cookie(req, state, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !tokens_match(&form.csrf, &expected) {
        return Err(PageError::CsrfRefused);
    }
    let email = form.email.trim().to_lowercase();
    // Too long to be an account's: refused before it is hashed or names a limiter bucket.
    if email.len() > ciq_entity::email::MAX_EMAIL_LEN
        || form.password.expose_secret().chars().count() > users::MAX_PASSWORD_LEN
    {
        let notice = Some("That email or password is longer than any account's.");
        return Ok(login_form(
            req,
            state,
            StatusCode::UNPROCESSABLE_ENTITY,
            (notice, None),
            "",
            Some(&form.next),
        ));
    }
    let address = ciq_http::client::throttle_group(&client_address(req, state.trust_forwarded_for));
    let counted = count_attempt(state, &email, &address).await?;
    // A bounded number of password checks at a time; more wait for nothing, they are
    // told to come back.
    let Ok(_slot) = state.sign_in_slots.try_acquire() else {
        refund(state, &counted).await;
        return Err(views::come_back(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many sign-ins right now",
            "Please try again in a moment.",
            1,
        )
        .into());
    };
    let hasher = SecretHasher::default();
    let checked = sessions::check_credentials(&state.db, &hasher, &email, &form.password).await;
    let user = match checked {
        Ok(user) => user,
        Err(err) => {
            refund(state, &counted).await;
            return Err(err.into());
        }
    };
    let Some(user) = user else {
        let notice = Some("That email and password do not match an account.");
        return Ok(login_form(
            req,
            state,
            StatusCode::UNAUTHORIZED,
            (notice, None),
            &email,
            Some(&form.next),
        ));
    };
    refund(state, &counted).await;
    let (token, _) = state
        .sessions
        .start(user.id, state.session_ttl)
        .await
        .map_err(PageError::store)?;
    // Back to the page asked for, if it is one of ours; else the keys.
    let back = crate::extract::safe_return(&form.next).unwrap_or(SETTINGS_API_KEYS);
    let mut resp = views::redirect(back);
    let ttl = state.session_ttl.as_secs();
    set_cookie(&mut resp, req, state, SESSION_COOKIE, &token, ttl);
    set_cookie(&mut resp, req, state, LOGIN_CSRF_COOKIE, "", 0);
    Ok(resp)
}

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    csrf: String,
}

impl CsrfForm for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The sign-in page, the session cookie removed.
fn signed_out(req: &Request, state: &ConsoleState) -> Response {
    let mut resp = views::redirect(LOGIN);
    set_cookie(&mut resp, req, state, SESSION_COOKIE, "", 0);
    resp
}

/// `POST /logout`: this session ends.
#[handler]
async fn logout(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: SignedInForm<CsrfOnly>,
) -> Result<Response, PageError> {
    state
        .sessions
        .end(&sent.signed_in.token)
        .await
        .map_err(PageError::store)?;
    Ok(signed_out(req, &state))
}

/// "Sign out everywhere": every session of the account ends, this one included.
#[handler]
async fn logout_everywhere(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: SignedInForm<CsrfOnly>,
) -> Result<Response, PageError> {
    sessions::end_all(&state.db, sent.session().user_id).await?;
    Ok(signed_out(req, &state))
}

#[derive(Deserialize)]
struct AccountQuery {
    changed: Option<String>,
}

/// `GET /settings/account` (`?changed=1`: the password was just changed).
#[handler]
async fn account_page(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    signed_in: SignedIn,
) -> Result<Response, PageError> {
    let user = signed_in.owner(&state).await?;
    let changed = req
        .params::<AccountQuery>()
        .is_ok_and(|q| q.changed.is_some());
    let markup = views::session::account(&user, &signed_in.session.csrf_token, None, changed);
    Ok(views::page(StatusCode::OK, markup))
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: String,
    current: secrecy::SecretString,
    new: secrecy::SecretString,
    repeat: secrecy::SecretString,
}

impl CsrfForm for PasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /settings/account`: changes the owner's password — the current one checked
/// (counted against the sign-in limits, like a sign-in), the new one twice and by the
/// rules — then every other session ends and this browser gets a fresh one.
#[handler]
async fn change_password(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: SignedInForm<PasswordForm>,
) -> Result<Response, PageError> {
    let state: &ConsoleState = &state;
    let user = sent.signed_in.owner(state).await?;
    let form = &sent.form;
    let csrf = &sent.signed_in.session.csrf_token;
    let refuse = |problem: &str| {
        views::page(
            StatusCode::UNPROCESSABLE_ENTITY,
            views::session::account(&user, csrf, Some(problem), false),
        )
    };
    if form.new.expose_secret() != form.repeat.expose_secret() {
        return Ok(refuse("The new password and its repetition differ."));
    }
    if let Err(AdminError::Invalid { rule, .. }) = users::check_password_rules(&form.new) {
        return Ok(refuse(&format!("New password: {rule}.")));
    }
    let address = ciq_http::client::throttle_group(&client_address(req, state.trust_forwarded_for));
    let counted = count_attempt(state, &user.email, &address).await?;
    let hasher = SecretHasher::default();
    let checked = sessions::check_credentials(&state.db, &hasher, &user.email, &form.current).await;
    match checked {
        Ok(Some(_)) => refund(state, &counted).await,
        Ok(None) => return Ok(refuse("The current password is not right.")),
        Err(err) => {
            refund(state, &counted).await;
            return Err(err.into());
        }
    }
    users::set_password(&state.db, &hasher, user.id, &form.new).await?;
    // Every session that began until now is over (`sessions_valid_after`, kept to the
    // millisecond): this browser's new one begins after it.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let (token, _) = state
        .sessions
        .start(user.id, state.session_ttl)
        .await
        .map_err(PageError::store)?;
    let mut resp = views::redirect(&format!("{}?changed=1", ciq_http::routes::SETTINGS_ACCOUNT));
    let ttl = state.session_ttl.as_secs();
    set_cookie(&mut resp, req, state, SESSION_COOKIE, &token, ttl);
    Ok(resp)
}

/// The page a link that does not work (any more) leads to.
fn dead_link() -> Response {
    views::page(
        StatusCode::NOT_FOUND,
        views::message(
            "This link does not work",
            "It was used already, a newer link replaced it, or its hour is over. Ask the \
             operator of this server for a new one.",
        ),
    )
}

/// `GET /reset-password/{token}`: the form to choose a password, while the link works.
#[handler]
async fn reset_page(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    token: poem::web::Path<String>,
) -> Result<Response, PageError> {
    let Some(user) = ciq_admin::resets::pending(&state.db, &token).await? else {
        return Ok(dead_link());
    };
    let action = req.uri().path().to_owned();
    Ok(signed_out_form(req, &state, |csrf| {
        views::page(
            StatusCode::OK,
            views::session::reset_password(csrf, &user.email, &action, None),
        )
    }))
}

/// The password link's form.
#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    csrf: String,
    new: secrecy::SecretString,
    repeat: secrecy::SecretString,
}

/// `POST /reset-password/{token}`: the password is set (twice the same, by the rules),
/// the link is used up, every session of the owner ends, and the sign-in page says so.
#[handler]
async fn reset_password(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    token: poem::web::Path<String>,
    form: Form<ResetForm>,
) -> Result<Response, PageError> {
    let state: &ConsoleState = &state;
    let expected = cookie(req, state, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !tokens_match(&form.csrf, &expected) {
        return Err(PageError::CsrfRefused);
    }
    let Some(user) = ciq_admin::resets::pending(&state.db, &token).await? else {
        return Ok(dead_link());
    };
    let action = req.uri().path().to_owned();
    let refuse = |problem: String| {
        signed_out_form(req, state, |csrf| {
            views::page(
                StatusCode::UNPROCESSABLE_ENTITY,
                views::session::reset_password(csrf, &user.email, &action, Some(&problem)),
            )
        })
    };
    if form.new.expose_secret() != form.repeat.expose_secret() {
        return Ok(refuse("The password and its repetition differ.".to_owned()));
    }
    let hasher = SecretHasher::default();
    match ciq_admin::resets::redeem(&state.db, &hasher, &token, &form.new).await {
        Ok(Some(_)) => {}
        Ok(None) => return Ok(dead_link()),
        Err(AdminError::Invalid { rule, .. }) => return Ok(refuse(format!("Password: {rule}."))),
        Err(err) => return Err(err.into()),
    }
    let mut resp = views::redirect(&format!("{LOGIN}?reset=1"));
    set_cookie(&mut resp, req, state, LOGIN_CSRF_COOKIE, "", 0);
    Ok(resp)
}
