//! Text fields of a request body that take a JSON string and nothing else.
//!
//! poem-openapi's `String` also takes a number or a boolean and turns it into text
//! (`"name": false` became the name `"false"`), so a document saying `type: string`
//! was not what was answered. [`Text`] refuses anything but a string, with the
//! parser's 400 naming the field.

use poem_openapi::registry::MetaSchema;
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON};
use serde_json::Value;

/// A string field of a request body (`type: string`); only a JSON string parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

crate::scalar_type!(Text, "string", MetaSchema::new("string"));

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl ParseFromJSON for Text {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Ok(Self(text)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for Text {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_json_string_is_text() {
        let text = Text::parse_from_json(Some(Value::String("Jane".into()))).unwrap();
        assert_eq!(text.0, "Jane");
        for other in [Value::Bool(false), Value::from(5), Value::Null] {
            assert!(
                Text::parse_from_json(Some(other.clone())).is_err(),
                "{other}"
            );
        }
    }
}
