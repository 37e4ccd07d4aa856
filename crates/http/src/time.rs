//! The one time format of every JSON answer: RFC 3339, UTC, milliseconds, `Z`
//! (`2025-08-13T00:00:00.000Z`), documented as `format: date-time`.

use chrono::{DateTime, SecondsFormat, Utc};
use poem_openapi::registry::MetaSchema;
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON};
use serde_json::Value;

/// An instant as every answer writes it; accepts any RFC 3339 offset when parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// The text form: `2025-08-13T00:00:00.000Z`.
    pub fn format(&self) -> String {
        format_time(self.0)
    }
}

/// `2025-08-13T00:00:00.000Z`.
pub fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An RFC 3339 query parameter `name`; a broken one is added to `broken` (and read as
/// absent), so every broken parameter of a request is named at once.
pub fn param(
    name: &str,
    value: Option<String>,
    broken: &mut Vec<crate::FieldError>,
) -> Option<DateTime<Utc>> {
    let value = value?;
    match DateTime::parse_from_rfc3339(value.trim()) {
        Ok(at) => Some(at.with_timezone(&Utc)),
        Err(_) => {
            broken.push(crate::FieldError::new(
                name,
                "must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z",
            ));
            None
        }
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(at: DateTime<Utc>) -> Self {
        Self(at)
    }
}

crate::scalar_type!(Timestamp, "string_date-time", {
    let mut schema = MetaSchema::new_with_format("string", "date-time");
    schema.example = Some(Value::String("2025-08-13T00:00:00.000Z".into()));
    schema
});

impl ParseFromJSON for Timestamp {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => DateTime::parse_from_rfc3339(&text)
                .map(|t| Self(t.with_timezone(&Utc)))
                .map_err(|_| ParseError::custom("must be an RFC 3339 time")),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for Timestamp {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.format()))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.format())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_carry_milliseconds_and_z() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00+02:00").unwrap();
        let t = Timestamp(at.with_timezone(&Utc));
        assert_eq!(
            t.to_json(),
            Some(Value::String("2026-12-01T08:00:00.000Z".into()))
        );
        assert_eq!(Timestamp::parse_from_json(t.to_json()).unwrap(), t);
        assert!(Timestamp::parse_from_json(Some(Value::String("yesterday".into()))).is_err());
    }
}
