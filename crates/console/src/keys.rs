//! Settings → API Key: the owner's keys — generate one (shown once), revoke one after a
//! confirmation, roll one with an overlap — and the keys' history.

use std::sync::Arc;
use std::time::Duration;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, Route, get, handler, post};
use serde::Deserialize;
use uuid::Uuid;

use ciq_admin::keys::{self, Actor, NewKey};
use ciq_admin::{AdminError, SecretHasher, users};
use ciq_entity::api_key;
use ciq_entity::key_event::ActorSource;
use ciq_http::client::client_address;
use ciq_http::routes::SETTINGS_API_KEYS;

use crate::extract::{
    CsrfForm, InAccount, Owned, OwnedForm, PageError, SignedIn, SignedInForm, find_owned,
};
use crate::middleware::page;
use crate::session::CsrfOnly;
use crate::state::ConsoleState;
use crate::views::keys::ROLL_OVERLAPS;
use crate::views::{self, Flash};

/// The key pages' routes.
pub(crate) fn routes(route: Route, state: &Arc<ConsoleState>) -> Route {
    route
        .at(
            SETTINGS_API_KEYS,
            page(state, get(keys_page).post(generate)),
        )
        .at(
            format!("{SETTINGS_API_KEYS}/:key_id/revoke"),
            page(state, get(revoke_confirmation).post(revoke)),
        )
        .at(
            format!("{SETTINGS_API_KEYS}/:key_id/roll"),
            page(state, post(roll)),
        )
}

impl InAccount for api_key::Model {
    const PARAM: &'static str = "key_id";
    const NOT_FOUND: (&'static str, &'static str) =
        ("Key not found", "That key does not exist in your account.");

    async fn find_in_account(
        state: &ConsoleState,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<Option<Self>, PageError> {
        Ok(keys::find_key_in_account(&state.db, user_id, id).await?)
    }
}

/// The keys page for `req`; its lists are read where [`ConsoleState::lists_for`] says.
async fn render_keys(
    state: &ConsoleState,
    req: &Request,
    signed_in: &SignedIn,
    status: StatusCode,
    flash: Flash,
) -> Result<Response, PageError> {
    let (lists, user_id) = (state.lists_for(req), signed_in.session.user_id);
    let user = users::find_user(&state.db, &user_id.to_string()).await?;
    let listed = lists
        .read(|db| async move { keys::list_keys(&db, user_id).await })
        .await?;
    let history = lists
        .read(|db| async move { keys::key_history(&db, user_id, 15).await })
        .await?;
    let markup = views::keys::keys(
        &user,
        &listed,
        &history,
        &signed_in.session.csrf_token,
        &flash,
        (
            state.default_limit_per_window,
            state.default_visitor_limit_per_window,
        ),
    );
    Ok(views::page(status, markup))
}

/// `GET /settings/api-keys`.
#[handler]
async fn keys_page(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    signed_in: SignedIn,
) -> Result<Response, PageError> {
    render_keys(&state, req, &signed_in, StatusCode::OK, Flash::default()).await
}

#[derive(Deserialize)]
struct GenerateForm {
    csrf: String,
    name: String,
    expires_in_days: Option<u32>,
    scope_create: Option<String>,
    scope_read: Option<String>,
    scope_write: Option<String>,
    scope_webhooks: Option<String>,
    /// Web origins, one per line (or separated by spaces or commas).
    #[serde(default)]
    allowed_origins: String,
    /// Submissions per visitor per minute for a browser key; empty: the default.
    #[serde(default)]
    visitor_rate_limit: String,
    /// The challenge provider's name; empty: none.
    #[serde(default)]
    challenge: String,
    /// The provider's secret key (sealed when stored).
    #[serde(default)]
    challenge_secret: String,
}

impl CsrfForm for GenerateForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl GenerateForm {
    /// The form as it was sent, to fill it in again after a refusal (never the
    /// challenge's secret).
    fn draft(&self) -> views::keys::KeyDraft {
        views::keys::KeyDraft {
            name: self.name.clone(),
            expires_in_days: self.expires_in_days.unwrap_or(0),
            scopes: self.scopes(),
            allowed_origins: self.allowed_origins.clone(),
            visitor_rate_limit: self.visitor_rate_limit.clone(),
            challenge: self.challenge.clone(),
        }
    }

    /// The origins typed, one per entry.
    fn origins(&self) -> Vec<String> {
        typed_origins(&self.allowed_origins)
    }

    /// The ticked permissions.
    fn scopes(&self) -> Vec<ciq_admin::Scope> {
        [
            (&self.scope_create, ciq_admin::Scope::LeadsCreate),
            (&self.scope_read, ciq_admin::Scope::LeadsRead),
            (&self.scope_write, ciq_admin::Scope::LeadsWrite),
            (&self.scope_webhooks, ciq_admin::Scope::WebhooksManage),
        ]
        .into_iter()
        .filter(|(ticked, _)| ticked.is_some())
        .map(|(_, scope)| scope)
        .collect()
    }
}

/// Origins as an owner types them in a form: one per line, or separated by spaces or
/// commas (checked by the key rules afterwards).
pub(crate) fn typed_origins(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Who changes a key from Settings: the owner, from their address (the history shows
/// it).
pub(crate) fn settings_actor(req: &Request, state: &ConsoleState) -> Actor {
    Actor {
        source: ActorSource::Settings,
        address: Some(client_address(req, state.trust_forwarded_for)),
    }
}

/// The page's flash for a refused key form, naming the problem; an error that is no
/// problem of the form's is the store's.
fn refused_form(err: AdminError) -> Result<Flash, PageError> {
    match err {
        AdminError::Invalid { field, rule } => Ok(Flash::refused(format!(
            "{}: {rule}",
            field.replace('_', " ")
        ))),
        err @ AdminError::TooManyKeys(_) => Ok(Flash::refused(err.to_string())),
        AdminError::KeyNotFound(_) => Ok(Flash::refused("That key no longer exists.")),
        other => Err(other.into()),
    }
}

/// `POST /settings/api-keys`: generates a key (shown this once, 201), or names what is
/// wrong with the form (422).
/// A refused form is shown again as it was sent (but the challenge's secret).
#[handler]
async fn generate(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: SignedInForm<GenerateForm>,
) -> Result<Response, PageError> {
    let mut flash = generate_key(req, &state, &sent).await?;
    if flash.error.is_some() {
        flash.key_draft = Some(sent.form.draft());
    }
    render_keys(&state, req, &sent.signed_in, flash.status(), flash).await
}

/// The flash of a generate form: the new key, or what is wrong with the form.
async fn generate_key(
    req: &Request,
    state: &ConsoleState,
    sent: &SignedInForm<GenerateForm>,
) -> Result<Flash, PageError> {
    let form = &sent.form;
    let days = form.expires_in_days.unwrap_or(0);
    if !views::keys::EXPIRY_CHOICES
        .iter()
        .any(|(offered, _)| *offered == days)
    {
        return Ok(Flash::refused(
            "Expires: choose one of the periods offered.",
        ));
    }
    let expires_at =
        (days > 0).then(|| ciq_entity::now() + chrono::TimeDelta::days(i64::from(days)));
    let scopes = form.scopes();
    if scopes.is_empty() {
        return Ok(Flash::refused("Choose at least one thing the key may do."));
    }
    let visitor_rate_limit_per_minute = match form.visitor_rate_limit.trim() {
        "" => None,
        typed => match typed.parse::<u32>() {
            Ok(limit) => Some(limit),
            Err(_) => {
                return Ok(Flash::refused(
                    "Submissions per visitor: a whole number of submissions a minute, or empty for the default.",
                ));
            }
        },
    };
    let challenge = match form.challenge.as_str() {
        "" => Ok(None),
        name => match ciq_admin::ChallengeProvider::from_name(name) {
            Some(provider) => {
                ciq_admin::NewChallenge::checked(provider, &form.challenge_secret).map(Some)
            }
            None => Err(AdminError::Invalid {
                field: "challenge",
                rule: "choose one of the providers offered".into(),
            }),
        },
    };
    let challenge = match challenge {
        Ok(challenge) => challenge,
        Err(err) => return refused_form(err),
    };
    let new = NewKey {
        name: form.name.clone(),
        expires_at,
        scopes: ciq_admin::Scopes::of(&scopes),
        allowed_origins: form.origins(),
        visitor_rate_limit_per_minute,
        challenge,
        ..NewKey::default()
    };
    let created = keys::create_key_sealing(
        &state.db,
        &SecretHasher::default(),
        state.webhook_key.as_ref(),
        sent.session().user_id,
        new,
        &settings_actor(req, state),
    )
    .await;
    match created {
        Ok((row, plain)) => Ok(Flash {
            new_key: Some((row.name, plain.expose().to_owned())),
            ..Flash::default()
        }),
        Err(err) => refused_form(err),
    }
}

/// `GET /settings/api-keys/{id}/revoke`: "Revoke this key?".
#[handler]
async fn revoke_confirmation(owned: Owned<api_key::Model>) -> Response {
    let csrf = &owned.signed_in.session.csrf_token;
    views::page(
        StatusCode::OK,
        views::keys::confirm_revoke(&owned.row, csrf),
    )
}

/// `POST /settings/api-keys/{id}/revoke`: the key stops working within a second.
#[handler]
async fn revoke(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: OwnedForm<api_key::Model, CsrfOnly>,
) -> Result<Response, PageError> {
    let key = &sent.row;
    keys::revoke_key(&state.db, key.id, &settings_actor(req, &state)).await?;
    let flash = Flash {
        notice: Some(format!(
            "Revoked “{}” ({}…). It stops working within a second.",
            key.name, key.display_prefix
        )),
        ..Flash::default()
    };
    render_keys(&state, req, &sent.signed.signed_in, StatusCode::OK, flash).await
}

#[derive(Deserialize)]
struct RollForm {
    csrf: String,
    overlap_seconds: u64,
}

impl CsrfForm for RollForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /settings/api-keys/{id}/roll` (`overlap_seconds`, one of [`ROLL_OVERLAPS`]): a
/// new key now (shown once), the old one working for the overlap.
#[handler]
async fn roll(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: SignedInForm<RollForm>,
) -> Result<Response, PageError> {
    let overlap = sent.form.overlap_seconds;
    if !ROLL_OVERLAPS.iter().any(|(secs, _)| *secs == overlap) {
        let flash = Flash::refused("Choose when the old key should stop working.");
        return render_keys(&state, req, &sent.signed_in, flash.status(), flash).await;
    }
    // The overlap is checked first: a refused form names it whatever the key.
    let key: api_key::Model = find_owned(req, &state, sent.session().user_id).await?;
    let rolled = keys::roll_key(
        &state.db,
        &SecretHasher::default(),
        state.webhook_key.as_ref(),
        key.id,
        Duration::from_secs(overlap),
        &settings_actor(req, &state),
    )
    .await;
    let flash = match rolled {
        Ok((row, plain)) => Flash {
            new_key: Some((row.name, plain.expose().to_owned())),
            notice: Some(match overlap {
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
        Err(err) => refused_form(err)?,
    };
    render_keys(&state, req, &sent.signed_in, flash.status(), flash).await
}
