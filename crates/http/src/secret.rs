//! Secrets that arrive in a JSON body (passwords): parsed straight into a
//! [`SecretString`], so that no `Debug` of the request object, no log line and no
//! error message can show them.

use poem_openapi::registry::MetaSchema;
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON};
use secrecy::SecretString;
use serde_json::Value;

/// A secret string field of a request body, documented as `format: password`.
#[derive(Debug, Clone)]
pub struct SecretField(pub SecretString);

crate::scalar_type!(
    SecretField,
    "string_password",
    MetaSchema::new_with_format("string", "password")
);

impl ParseFromJSON for SecretField {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Ok(Self(SecretString::from(text))),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for SecretField {
    /// Never the secret: request objects are only ever parsed, and anything that
    /// writes one back out gets a placeholder.
    fn to_json(&self) -> Option<Value> {
        Some(Value::String("[REDACTED]".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_secret_field_never_prints_or_serialises_its_value() {
        let field =
            SecretField::parse_from_json(Some(Value::String("hunter2-hunter2".into()))).unwrap();
        assert_eq!(field.0.expose_secret(), "hunter2-hunter2");
        assert!(!format!("{field:?}").contains("hunter2"));
        assert!(!field.to_json().unwrap().to_string().contains("hunter2"));
    }
}
