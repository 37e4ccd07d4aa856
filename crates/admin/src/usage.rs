//! Usage as every surface answers it (the integrators' API, the operator API, the
//! CLI): the bucket object, and the window parameters (`interval`, `from`, `to`) read
//! so that every broken one is named.

use chrono::{DateTime, Utc};
use poem_openapi::Object;

use ciq_http::{FieldError, HttpError, Timestamp};
use ciq_usage::Counts;
use ciq_usage::query::{Interval, Window};

/// One bucket of a key's (or an account's) usage; empty buckets are left out. The
/// API, the operator API and the CLI's `keys usage --json` answer the same objects.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct UsageBucket {
    /// The bucket's first instant (UTC, on the minute, hour or day).
    pub start: Timestamp,
    /// Answers 2xx.
    pub success: u64,
    /// Answers 4xx other than 429 (bad input, scope, origin, not found).
    pub client_error: u64,
    /// Answers 429 (the key's limit, a visitor's limit, or a bad-key allowance).
    pub rate_limited: u64,
    /// Answers 5xx.
    pub server_error: u64,
    /// Leads stored, spam included (a batch of 100 counts 100).
    pub leads_created: u64,
    /// Leads stored as spam.
    pub spam: u64,
    /// Answers that belonged in the request log but were not written (past 10 a
    /// second for the key).
    pub dropped: u64,
}

impl UsageBucket {
    /// The bucket starting at `start` with `counts`.
    pub fn new(start: DateTime<Utc>, counts: Counts) -> Self {
        Self {
            start: start.into(),
            success: counts.success,
            client_error: counts.client_error,
            rate_limited: counts.rate_limited,
            server_error: counts.server_error,
            leads_created: counts.leads_created,
            spam: counts.spam,
            dropped: counts.dropped,
        }
    }

    /// The buckets of a read, oldest first.
    pub fn list(buckets: Vec<(DateTime<Utc>, Counts)>) -> Vec<Self> {
        buckets
            .into_iter()
            .map(|(start, counts)| Self::new(start, counts))
            .collect()
    }
}

/// What the documents say of the window parameters (`interval`, `from`, `to`), for
/// every operation that takes them: the rules a schema can state.
pub fn window_parameter_schemas() -> [(&'static str, serde_json::Value); 3] {
    let time = serde_json::json!({"type": "string", "format": "date-time"});
    [
        (
            "interval",
            serde_json::json!({"type": "string", "enum": ["minute", "hour", "day"],
                "default": "minute"}),
        ),
        ("from", time.clone()),
        ("to", time),
    ]
}

/// Sets the window parameters' schemas ([`window_parameter_schemas`]) on the `get` of
/// `path` in `doc`.
pub fn document_window_parameters(doc: &mut serde_json::Value, path: &str) {
    let Some(params) = doc["paths"][path]["get"]["parameters"].as_array_mut() else {
        return;
    };
    for (name, schema) in window_parameter_schemas() {
        for param in params.iter_mut().filter(|p| p["name"] == name) {
            param["schema"] = schema.clone();
        }
    }
}

/// The window asked for by `interval` (`minute` when absent), `from` and `to` (RFC
/// 3339), checked now: 422 naming each broken parameter, then the window's own rules
/// (see [`Window::new`]).
pub fn window(
    interval: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<Window, HttpError> {
    let mut broken = Vec::new();
    let interval = match interval.as_deref().map(str::trim) {
        None | Some("") => Some(Interval::Minute),
        Some(name) => {
            let interval = Interval::parse(name);
            if interval.is_none() {
                broken.push(FieldError::new("interval", "must be minute, hour or day"));
            }
            interval
        }
    };
    let from = ciq_http::time::param("from", from, &mut broken);
    let to = ciq_http::time::param("to", to, &mut broken);
    match interval {
        Some(interval) if broken.is_empty() => Ok(Window::new(interval, from, to, Utc::now())?),
        _ => Err(HttpError::validation_failed(broken)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_broken_window_parameter_is_named() {
        let err = window(Some("week".into()), Some("yesterday".into()), None).unwrap_err();
        let fields: Vec<&str> = err.details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["interval", "from"]);
        let err = window(
            None,
            Some("2026-12-05T10:00:00Z".into()),
            Some("2026-12-05T09:00:00Z".into()),
        )
        .unwrap_err();
        assert_eq!(err.details[0].field, "from");
        let ok = window(Some("day".into()), None, None).unwrap();
        assert_eq!(ok.interval, Interval::Day);
    }
}
