//! What a Settings handler starts from, as poem extractors, and the one error type its
//! `?` returns: a page that needs a signed-in owner takes [`SignedIn`]; a form post
//! takes [`SignedInForm`] (its CSRF token checked against the session's); a page about
//! one row of the account takes [`Owned`] or [`OwnedForm`], which find the row *in the
//! owner's account* — another account's id, a missing one and one that is not an id are
//! the same "not found" page, as svix's permission extractors answer.

use std::collections::HashMap;
use std::sync::Arc;

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::Form;
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use ciq_admin::sessions::{self, Session};
use ciq_entity::user;
use ciq_http::routes::LOGIN;

use crate::cookies::{SESSION_COOKIE, cookie};
use crate::state::ConsoleState;
use crate::views;

/// Why a Settings request is answered with another page than the one it asked for.
/// Handlers return `Result<Response, PageError>` and use `?`.
#[derive(Debug)]
pub enum PageError {
    /// No session cookie: to the sign-in page, which comes back to the page asked for
    /// (a Settings page asked for with GET) once signed in.
    SignedOut(Option<String>),
    /// The session ended or expired: to the sign-in page, which says so (and comes
    /// back as for [`PageError::SignedOut`]).
    SessionEnded(Option<String>),
    /// A form whose CSRF token is not the session's (403).
    CsrfRefused,
    /// No such row in the owner's account (404): the page's title and text.
    NotFound(&'static str, &'static str),
    /// The store failed: 503 with `Retry-After`, the cause logged by the access log
    /// (never shown).
    Store(String),
    /// Another page, already made (a 429 or a busy 503 of the sign-in, …).
    Page(Box<Response>),
}

impl PageError {
    /// The store failed with `err` (any error that is only ever the store's).
    pub fn store(err: impl std::fmt::Display) -> Self {
        Self::Store(err.to_string())
    }

    /// The "not found" page of a row of type `T`.
    pub fn not_found<T: InAccount>() -> Self {
        Self::NotFound(T::NOT_FOUND.0, T::NOT_FOUND.1)
    }
}

impl From<sea_orm::DbErr> for PageError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::store(err)
    }
}

impl From<ciq_admin::AdminError> for PageError {
    fn from(err: ciq_admin::AdminError) -> Self {
        Self::store(err)
    }
}

impl From<Response> for PageError {
    fn from(resp: Response) -> Self {
        Self::Page(Box::new(resp))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::SignedOut(back) => views::redirect(&login_url(false, back.as_deref())),
            Self::SessionEnded(back) => views::redirect(&login_url(true, back.as_deref())),
            Self::CsrfRefused => views::page(
                StatusCode::FORBIDDEN,
                views::message(
                    "This form has expired",
                    "For your safety the form could not be accepted. Go back, reload the page and try again.",
                ),
            ),
            Self::NotFound(title, text) => {
                views::page(StatusCode::NOT_FOUND, views::message(title, text))
            }
            Self::Store(cause) => {
                let mut resp = views::page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    views::message(
                        "Temporarily unavailable",
                        "We could not reach the account store. Please try again in a moment.",
                    ),
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                // Logged once, by the access log, with the request's id.
                resp.extensions_mut()
                    .insert(ciq_http::error::ErrorCause(format!("settings: {cause}")));
                resp
            }
            Self::Page(resp) => *resp,
        }
    }
}

impl From<PageError> for poem::Error {
    fn from(err: PageError) -> Self {
        poem::Error::from_response(err.into_response())
    }
}

/// The console's state, which every page route carries.
pub(crate) fn state(req: &Request) -> &Arc<ConsoleState> {
    req.data::<Arc<ConsoleState>>()
        .expect("every Settings route carries the console's state")
}

/// The signed-in owner: their session (and its cookie's token).
pub struct SignedIn {
    /// The session cookie's token.
    pub token: String,
    /// The live session.
    pub session: Session,
}

impl SignedIn {
    /// The signed-in owner's account row (name and email for the page header).
    pub async fn owner(&self, state: &ConsoleState) -> Result<user::Model, PageError> {
        Ok(ciq_admin::users::find_user(&state.db, &self.session.user_id.to_string()).await?)
    }
}

/// Where a sign-in may send the owner back to: a Settings page of this gateway (a path,
/// never another origin: no `//`, no backslash, no control characters), at most 2 000
/// characters.
pub fn safe_return(path: &str) -> Option<&str> {
    let settings = ciq_http::routes::SETTINGS;
    let under_settings = path
        .strip_prefix(settings)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']));
    (under_settings
        && path.len() <= 2_000
        && !path.contains("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control))
    .then_some(path)
}

/// The sign-in page's address: saying the session ended when `expired`, coming back
/// to `back` (a [`safe_return`] path) afterwards.
pub fn login_url(expired: bool, back: Option<&str>) -> String {
    let mut query = Vec::new();
    if expired {
        query.push("expired=1".to_owned());
    }
    if let Some(back) = back.and_then(safe_return) {
        let encoded: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
        query.push(format!("next={encoded}"));
    }
    if query.is_empty() {
        LOGIN.to_owned()
    } else {
        format!("{LOGIN}?{}", query.join("&"))
    }
}

/// The page a signed-out request asked for, to come back to: a GET's path and query
/// (a form post is not repeated).
fn asked_page(req: &Request) -> Option<String> {
    (req.method() == poem::http::Method::GET)
        .then(|| req.uri().path_and_query().map(|p| p.as_str().to_owned()))
        .flatten()
        .filter(|p| safe_return(p).is_some())
}

impl<'a> FromRequest<'a> for SignedIn {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = state(req);
        let Some(token) = cookie(req, state, SESSION_COOKIE) else {
            return Err(PageError::SignedOut(asked_page(req)).into());
        };
        match sessions::live(&state.sessions, &state.db, &token).await {
            Ok(Some(session)) => Ok(Self { token, session }),
            Ok(None) => Err(PageError::SessionEnded(asked_page(req)).into()),
            Err(err) => Err(PageError::from(err).into()),
        }
    }
}

/// A form that carries a CSRF token.
pub trait CsrfForm {
    /// The token the form was sent with (empty when it had none).
    fn csrf(&self) -> &str;
}

impl CsrfForm for HashMap<String, String> {
    fn csrf(&self) -> &str {
        self.get("csrf").map_or("", String::as_str)
    }
}

/// A form post of the signed-in owner, its CSRF token the session's. The form is read
/// first (a body that is no such form is refused as before any session is looked up).
pub struct SignedInForm<F> {
    /// Who sent it.
    pub signed_in: SignedIn,
    /// What was sent.
    pub form: F,
}

impl<F> SignedInForm<F> {
    /// The sender's session.
    pub fn session(&self) -> &Session {
        &self.signed_in.session
    }
}

/// Whether a presented token is the expected one (never for an empty one), in constant
/// time.
pub(crate) fn tokens_match(presented: &str, expected: &str) -> bool {
    !presented.is_empty() && ciq_admin::hashing::secrets_equal(presented, expected)
}

impl<'a, F: DeserializeOwned + CsrfForm + Send> FromRequest<'a> for SignedInForm<F> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let Form(form) = Form::<F>::from_request(req, body).await?;
        let signed_in = SignedIn::from_request(req, body).await?;
        if !tokens_match(form.csrf(), &signed_in.session.csrf_token) {
            return Err(PageError::CsrfRefused.into());
        }
        Ok(Self { signed_in, form })
    }
}

/// A row that belongs to one account, found only within it.
pub trait InAccount: Sized + Send {
    /// The path parameter that names it.
    const PARAM: &'static str;
    /// The "not found" page's title and text.
    const NOT_FOUND: (&'static str, &'static str);
    /// The row `id` of `user_id`'s account, if there is one.
    fn find_in_account(
        state: &ConsoleState,
        user_id: Uuid,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<Self>, PageError>> + Send;
}

/// The row named by the path's [`InAccount::PARAM`] in `user_id`'s account, or the
/// "not found" page.
pub(crate) async fn find_owned<T: InAccount>(
    req: &Request,
    state: &ConsoleState,
    user_id: Uuid,
) -> Result<T, PageError> {
    let not_found = PageError::not_found::<T>;
    let id = req
        .raw_path_param(T::PARAM)
        .and_then(|id| id.parse::<Uuid>().ok())
        .ok_or_else(not_found)?;
    T::find_in_account(state, user_id, id)
        .await?
        .ok_or_else(not_found)
}

/// A page about one row of the signed-in owner's account.
pub struct Owned<T> {
    /// The owner.
    pub signed_in: SignedIn,
    /// Their row.
    pub row: T,
}

impl<'a, T: InAccount> FromRequest<'a> for Owned<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let signed_in = SignedIn::from_request(req, body).await?;
        let row = find_owned(req, state(req), signed_in.session.user_id).await?;
        Ok(Self { signed_in, row })
    }
}

/// A form post about one row of the signed-in owner's account (CSRF checked first).
pub struct OwnedForm<T, F> {
    /// The owner and the form.
    pub signed: SignedInForm<F>,
    /// Their row.
    pub row: T,
}

impl<T, F> OwnedForm<T, F> {
    /// The sender's session.
    pub fn session(&self) -> &Session {
        self.signed.session()
    }
}

impl<'a, T: InAccount, F: DeserializeOwned + CsrfForm + Send> FromRequest<'a> for OwnedForm<T, F> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let signed = SignedInForm::<F>::from_request(req, body).await?;
        let row = find_owned(req, state(req), signed.session().user_id).await?;
        Ok(Self { signed, row })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_comes_back_only_to_settings_pages_of_this_gateway() {
        for good in [
            "/settings",
            "/settings/api-keys/x?range=7d",
            "/settings?a=1",
        ] {
            assert_eq!(safe_return(good), Some(good));
        }
        for bad in [
            "//evil.example/settings",
            "/settings//evil.example",
            "/settingsx",
            "https://evil.example/settings",
            "/settings/\\evil",
            "/login",
            "/settings/\n",
        ] {
            assert_eq!(safe_return(bad), None, "{bad}");
        }
        assert_eq!(
            login_url(true, Some("/settings/leads?status=new")),
            "/login?expired=1&next=%2Fsettings%2Fleads%3Fstatus%3Dnew"
        );
        assert_eq!(login_url(false, Some("//evil.example")), "/login");
    }
}
