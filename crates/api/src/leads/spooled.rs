//! Creates accepted while the store is down: a client that says it takes a queued
//! answer (`Prefer: respond-async`) gets 202 with the lead's final id and `created_at`
//! once the lead waits in the outage spool; every other client gets 503 as before.

use std::sync::Arc;

use poem::Request;
use poem_openapi::Object;

use ciq_http::HttpError;
use ciq_leads::LeadError;
use ciq_leads::spooled::{RememberedAnswer, SpooledRequest};
use ciq_spool::{Spool, SpoolError, Written};

use super::{Lead, LeadCreated};
use crate::auth::Caller;
use crate::state::ApiState;

/// The `Preference-Applied` header a queued answer carries (RFC 7240).
pub const PREFERENCE_APPLIED: &str = "preference-applied";

/// Body of a create answered while the store is down: the lead is queued, and will be
/// stored exactly as shown (same `id`, same `created_at`) when the store is back.
#[derive(Debug, Clone, Object)]
pub struct LeadQueued {
    /// Always `true`.
    pub success: bool,
    /// Always `true`: the lead is accepted and waits to be stored; `GET` on it answers
    /// 404 until then.
    pub queued: bool,
    /// The lead as it will be stored.
    pub lead: Lead,
}

/// Whether `req` says its client takes a queued answer: a `Prefer` header with the
/// `respond-async` preference (RFC 7240; any case, among others, with or without
/// parameters).
pub fn wanted(req: &Request) -> bool {
    req.headers()
        .get_all(poem::http::header::HeaderName::from_static("prefer"))
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|preference| {
            preference
                .split([';', '='])
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case("respond-async"))
        })
}

/// The spool, when a create of `req` may wait in it should the store be down: its
/// client takes a queued answer and the spool accepts entries (Redis cannot evict them).
pub fn usable<'a>(state: &'a ApiState, req: &Request) -> Option<&'a Arc<Spool>> {
    let spool = state.spool.as_ref()?;
    (spool.accepting() && wanted(req)).then_some(spool)
}

/// Spools one create of `caller`: its `row` (made by `ciq_leads::store::prepare`, its
/// lead validated and judged, without an `external_id`) and its `Idempotency-Key` and
/// fingerprint. The answer, and whether it is a replay: a retry with the same key and
/// body replays the first answer; with another body it is 422; a full spool, or a Redis
/// that does not answer, is 503.
pub(crate) async fn create(
    spool: &Spool,
    caller: &Caller,
    row: ciq_entity::lead::Model,
    idempotency: Option<(String, String)>,
) -> Result<(super::Answer, bool), HttpError> {
    use poem_openapi::types::ToJSON;
    let shown = super::quarantine::as_submitted(ciq_leads::Lead::from(row.clone()));
    let remembered = idempotency.map(|(key, fingerprint)| RememberedAnswer {
        key,
        fingerprint,
        status: 201,
        body: LeadCreated {
            success: true,
            lead: shown.clone(),
        }
        .to_json_string(),
        held: Vec::new(),
    });
    let queued = LeadQueued {
        success: true,
        queued: true,
        lead: shown,
    };
    let request = SpooledRequest {
        user_id: caller.key.user_id,
        rows: vec![row],
        browser: caller.visitor.is_some(),
        remembered,
    };
    Ok(
        match write(spool, &request, &queued.to_json_string()).await? {
            None => (super::Answer::Queued(Box::new(queued)), false),
            Some(body) => (
                super::Answer::Queued(Box::new(super::idempotent::stored(&body)?)),
                true,
            ),
        },
    )
}

/// Writes `request` to the spool, answered with `queued_body`: `None` once it is
/// spooled, or the body to replay when its `Idempotency-Key` was spooled before with
/// the same body. 422 when the key was spooled with another body; 503 when the spool is
/// full or Redis does not take it.
pub(crate) async fn write(
    spool: &Spool,
    request: &SpooledRequest,
    queued_body: &str,
) -> Result<Option<String>, HttpError> {
    match spool.write(request, queued_body).await {
        Ok(Written::Queued(entry)) => {
            let leads: Vec<String> = request.rows.iter().map(|row| row.id.to_string()).collect();
            tracing::info!(%entry, leads = %leads.join(","), "store down: spooled");
            Ok(None)
        }
        Ok(Written::Replay(body)) => Ok(Some(body)),
        Ok(Written::Reused) => Err(LeadError::IdempotencyKeyReused.into()),
        Ok(Written::Full) => Err(unavailable("the outage spool is full")),
        Err(err @ (SpoolError::Redis(_) | SpoolError::Unreplicated)) => {
            tracing::warn!(error = %err, "store down and the request could not be spooled");
            Err(unavailable(
                "the store is unreachable and the outage spool did not take the request",
            ))
        }
    }
}

/// The 503 of a request the spool could not take (as without a spool).
pub(crate) fn unavailable(why: &str) -> HttpError {
    HttpError::from(LeadError::Unavailable(why.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::wanted;

    fn with_prefer(values: &[&str]) -> poem::Request {
        let mut req = poem::Request::builder();
        for value in values {
            req = req.header("Prefer", *value);
        }
        req.finish()
    }

    #[test]
    fn respond_async_is_read_among_other_preferences_in_any_case() {
        assert!(wanted(&with_prefer(&["respond-async"])));
        assert!(wanted(&with_prefer(&["wait=10, Respond-Async"])));
        assert!(wanted(&with_prefer(&[
            "return=minimal",
            "respond-async; x=1"
        ])));
        assert!(!wanted(&with_prefer(&[])));
        assert!(!wanted(&with_prefer(&["return=representation"])));
        assert!(!wanted(&with_prefer(&["respond-asynchronously"])));
        assert!(!wanted(&with_prefer(&["x=respond-async"])));
    }
}
