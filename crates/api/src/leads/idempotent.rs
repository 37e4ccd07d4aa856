//! The `Idempotency-Key` steps every creating operation (create, batch, upsert) shares:
//! read the header raw, validate and claim the key before any lead work, free it when
//! nothing was stored, and mark a replayed answer.

use poem::Request;
use poem_openapi::payload::Response;

use ciq_http::HttpError;
use ciq_leads::idempotency;

use super::field_errors;
use crate::state::ApiState;

/// The header's raw bytes: the typed parameter (kept for the document) would turn a key
/// that is not visible ASCII into "no key", and a retry into a duplicate.
pub fn raw_key(req: &Request) -> Option<Vec<u8>> {
    req.headers()
        .get(idempotency::HEADER)
        .map(|v| v.as_bytes().to_vec())
}

/// What the request's key says.
pub enum Keyed {
    /// Go ahead; remember the answer under this key (`None`: the request has none).
    Fresh(Option<String>),
    /// Answered before: send this stored body again.
    Replay(String),
    /// Answered 202 while the store was down, and still in the outage spool: send this
    /// queued body again. Only a create is spooled, and fingerprints differ by
    /// operation, so only a create meets it.
    Queued(String),
}

/// The validated `Idempotency-Key` of a request (422 naming the header), if it has one.
pub fn validated(raw: Option<Vec<u8>>) -> Result<Option<String>, HttpError> {
    raw.map(|raw| {
        idempotency::validate_key(&raw)
            .map_err(|v| HttpError::validation_failed(field_errors(vec![v])))
    })
    .transpose()
}

/// Validates `raw` (422 naming the header) and claims it for the body with
/// `fingerprint` (computed only when there is a key): 422 `idempotency_key_reused`,
/// 409 `idempotency_key_in_use`, 410 `lead_deleted`, 503 while the store is gone.
pub async fn claim(
    state: &ApiState,
    user_id: uuid::Uuid,
    raw: Option<Vec<u8>>,
    fingerprint: impl FnOnce() -> String,
) -> Result<Keyed, HttpError> {
    let Some(key) = validated(raw)? else {
        return Ok(Keyed::Fresh(None));
    };
    // Boxed: most requests carry no key, and inline the claim's store and spool look-ups
    // made every create's future (moved through each of poem's layers) 11 KB larger.
    Box::pin(claim_key(state, user_id, key, fingerprint())).await
}

/// [`claim`] of a validated `key`.
async fn claim_key(
    state: &ApiState,
    user_id: uuid::Uuid,
    key: String,
    fingerprint: String,
) -> Result<Keyed, HttpError> {
    // Answered 202 during an outage and not drained yet: the spool holds the answer
    // (once drained, the store does). Asked only while the spool may hold entries; a
    // spool that does not answer holds nothing this request could be given.
    if let Some(spool) = state.spool.as_ref().filter(|spool| spool.maybe_pending())
        && let Ok(Some(held)) = spool.held(user_id, &key, &fingerprint).await
    {
        return match held {
            ciq_spool::Held::Replay(body) => Ok(Keyed::Queued(body)),
            ciq_spool::Held::Reused => Err(ciq_leads::LeadError::IdempotencyKeyReused.into()),
        };
    }
    let claimed = state
        .leads
        .claim(user_id, &key, &fingerprint, state.idempotency_retention)
        .await?;
    Ok(match claimed {
        idempotency::Claim::Fresh => Keyed::Fresh(Some(key)),
        idempotency::Claim::Replay(body) => Keyed::Replay(body),
    })
}

/// Frees the key of a request that stored nothing, so that the client's retry can run.
pub async fn release(state: &ApiState, user_id: uuid::Uuid, key: Option<&str>) {
    if let Some(key) = key {
        let _ = state.leads.forget(user_id, key).await;
    }
}

/// `response` with `Idempotent-Replayed: true` when it replays an earlier answer.
pub fn marked<T>(response: Response<T>, replayed: bool) -> Response<T> {
    if replayed {
        response.header("idempotent-replayed", "true")
    } else {
        response
    }
}

/// A remembered answer read back as the operation's answer type (500 when it cannot be:
/// a fault of ours).
pub fn stored<T: poem_openapi::types::ParseFromJSON>(body: &str) -> Result<T, HttpError> {
    T::parse_from_json(serde_json::from_str(body).ok()).map_err(|err| {
        HttpError::from(ciq_leads::LeadError::StoredAnswerUnreadable(
            err.into_message(),
        ))
    })
}
