//! The create request's body, read and checked by us rather than by the framework,
//! so that each failure is answered in our shape with the rate-limit headers, in a
//! fixed order: 415 (content type), 413 (size), 400 (JSON), 422 (field rules).

use std::sync::Arc;

use poem::{Request, RequestBody};
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use ciq_http::HttpError;
use ciq_leads::NewLead;
use ciq_leads::rules::CreateBody;

use super::{CreateLeadRequest, field_errors};
use crate::state::ApiState;

/// The body of a create request, or why it cannot be used. Extracting it never
/// fails, so the handler decides the response (and its headers) in every case.
pub struct LeadSubmission(Result<Submitted, HttpError>);

/// A body that passed every rule.
pub struct Submitted {
    /// The validated lead.
    pub lead: NewLead,
    /// The body's top-level `honeypot`, if it carried one.
    pub honeypot: Option<String>,
    /// The body as sent (valid JSON), for [`Submitted::fingerprint`].
    body: Vec<u8>,
}

impl Submitted {
    /// BLAKE2s (hex) of the body in canonical form (object keys sorted), so that an
    /// `Idempotency-Key` retry is recognised whatever the key order or spacing.
    /// Computed only for requests that carry such a key.
    pub fn fingerprint(&self) -> String {
        let body: serde_json::Value =
            serde_json::from_slice(&self.body).expect("the body was parsed before");
        ciq_leads::idempotency::fingerprint(ciq_leads::idempotency::Operation::Create, &body)
    }
}

impl LeadSubmission {
    /// The validated lead and its fingerprint, or the error to answer with.
    pub fn into_submitted(self) -> Result<Submitted, HttpError> {
        self.0
    }

    /// The body read and checked, as the extractor reads it (never a failure: see
    /// [`LeadSubmission`]); for the create answered outside the OpenAPI service.
    pub(crate) async fn extract(request: &Request, body: &mut RequestBody) -> Self {
        Self(Self::read(request, body).await)
    }

    /// Read, parsed straight into what the rules read ([`CreateBody`]: no map of the
    /// body is built) and checked.
    async fn read(request: &Request, body: &mut RequestBody) -> Result<Submitted, HttpError> {
        let bytes = read_body(request, body, create_limit(request)).await?;
        let parsed: CreateBody = parsed(&bytes)?;
        let (lead, honeypot) = parsed
            .validate()
            .map_err(|violations| HttpError::validation_failed(field_errors(violations)))?;
        Ok(Submitted {
            lead,
            honeypot,
            body: bytes,
        })
    }
}

/// A lead body read and parsed by us, in a fixed order of checks: 415 (content type),
/// 413 (size, the create limit), 400 (JSON). The rules of its fields are the caller's.
async fn read_json(
    request: &Request,
    body: &mut RequestBody,
) -> Result<serde_json::Value, HttpError> {
    read_json_within(request, body, create_limit(request)).await
}

/// The largest create (or update) body this gateway reads.
fn create_limit(request: &Request) -> usize {
    request
        .data::<Arc<ApiState>>()
        .map_or(crate::state::DEFAULT_MAX_BODY_BYTES, |s| s.max_body_bytes)
}

/// [`read_json`] with a limit of `limit` bytes (the batch has its own).
pub async fn read_json_within(
    request: &Request,
    body: &mut RequestBody,
    limit: usize,
) -> Result<serde_json::Value, HttpError> {
    parsed(&read_body(request, body, limit).await?)
}

/// The bytes of a JSON body, in the fixed order of checks: 415 (content type), 413
/// (over `limit` bytes), 400 (empty).
pub(crate) async fn read_body(
    request: &Request,
    body: &mut RequestBody,
    limit: usize,
) -> Result<Vec<u8>, HttpError> {
    let content_type = request.content_type();
    if !content_type.is_some_and(is_json) {
        return Err(HttpError::unsupported_media_type(content_type));
    }
    let declared = request
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if ciq_http::body::refused_unread(declared.map(|d| d as u64), limit) {
        // Far too large to be worth reading: answer now (the connection closes).
        return Err(HttpError::payload_too_large(limit));
    }
    let body = body
        .take()
        .map_err(|_| HttpError::invalid_json("the request body was already read"))?;
    let bytes = read_limited(body, limit, declared).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::invalid_json(
            "the request body is empty; send a JSON object",
        ));
    }
    Ok(bytes)
}

/// `bytes` parsed as JSON into `T`, or 400 with the parser's reason.
///
/// Checked as UTF-8 once, whole, then parsed as text: parsing a byte slice, serde_json
/// checks every string on its own (a call per string, 5 % of a batch's instructions).
/// Bytes that are not UTF-8 are parsed as bytes, so the refusal is the parser's own,
/// with its position.
pub(crate) fn parsed<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
    .map_err(|err| HttpError::invalid_json(format!("the request body is not valid JSON: {err}")))
}

/// The body of an update, or why it cannot be used; like [`LeadSubmission`], it never
/// fails to extract, so the handler answers every case with the rate-limit headers.
pub struct PatchSubmission(Result<ciq_leads::rules::LeadPatch, HttpError>);

impl PatchSubmission {
    /// The checked update, or the error to answer with.
    pub fn into_patch(self) -> Result<ciq_leads::rules::LeadPatch, HttpError> {
        self.0
    }
}

impl<'a> ApiExtractor<'a> for PatchSubmission {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Json<super::PatchLeadRequest> as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some(
                "The fields to change, wrapped in `lead`; `null` empties an optional one.",
            ),
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: <Json<super::PatchLeadRequest> as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let patch = match read_json(request, body).await {
            Ok(value) => ciq_leads::rules::validate_patch(&value)
                .map_err(|violations| HttpError::validation_failed(field_errors(violations))),
            Err(err) => Err(err),
        };
        Ok(Self(patch))
    }
}

/// Reads at most `limit` bytes (see [`ciq_http::body::read_at_most`]); past it, 413.
async fn read_limited(
    body: poem::Body,
    limit: usize,
    declared: Option<usize>,
) -> Result<Vec<u8>, HttpError> {
    use ciq_http::body::{ReadRefusal, read_at_most};
    match read_at_most(body, limit, declared.map(|d| d as u64)).await {
        Ok(bytes) => Ok(bytes),
        Err(ReadRefusal::TooLarge) => Err(HttpError::payload_too_large(limit)),
        Err(ReadRefusal::Io(err)) => Err(HttpError::invalid_json(format!(
            "could not read the request body: {err}"
        ))),
    }
}

/// `application/json`, with or without parameters such as `charset=utf-8`.
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

impl<'a> ApiExtractor<'a> for LeadSubmission {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Json<CreateLeadRequest> as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some("The lead to create, wrapped in `lead`."),
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: <Json<CreateLeadRequest> as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self::extract(request, body).await)
    }
}

#[cfg(test)]
mod tests {
    use super::{is_json, parsed};

    #[test]
    fn bodies_parse_as_their_bytes_do_and_bytes_that_are_not_utf8_are_refused_as_such() {
        use serde_json::Value;
        let escaped =
            r#"{"lead": {"name": "José \u00e9 \ud83d\ude00 \"q\"", "n": [1, 2.5, null]}}"#;
        for body in [escaped, "  {\"a\": \"\u{1F600}\", \"b\": {\"c\": true}}  "] {
            let from_bytes: Value = serde_json::from_slice(body.as_bytes()).unwrap();
            assert_eq!(
                parsed::<Value>(body.as_bytes()).unwrap(),
                from_bytes,
                "{body}"
            );
        }
        for body in [
            &b"{\"lead\": {\"name\": \"\xff\"}}"[..],
            b"{\"lead\": {\"name\": \"caf\xc3\"}}",
            b"\xef\xbb\xbf{}",
            b"{\"lead\": \"\\ud800\"}",
            b"{\"lead\": [1, 2}",
        ] {
            let reason = serde_json::from_slice::<Value>(body).unwrap_err();
            let err = parsed::<Value>(body).unwrap_err();
            assert_eq!(err.code, ciq_http::ErrorCode::InvalidJson, "{body:?}");
            assert_eq!(
                err.message,
                format!("the request body is not valid JSON: {reason}"),
                "{body:?}"
            );
        }
    }

    #[test]
    fn json_content_types_are_recognised() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("Application/JSON"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
