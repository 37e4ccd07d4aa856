//! Money as the document and the answers show it: a JSON number, non-negative, at
//! most two decimal places (the rule is stated in words, not as `multipleOf: 0.01`,
//! which JSON Schema validators apply in binary floating point and so reject 19.99).

use poem_openapi::registry::MetaSchema;
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON};
use serde_json::Value;

use ciq_leads::Money;
use ciq_leads::money::{MAX_CENTS, parse_money};

/// An exact amount with at most two decimal places, e.g. `50000` or `19.99`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(pub Money);

ciq_http::scalar_type!(Amount, "money", {
    let mut schema = MetaSchema::new("number");
    schema.minimum = Some(0.0);
    schema.maximum = Some(MAX_CENTS as f64 / 100.0);
    schema.description =
        Some("Non-negative, at most 2 decimal places (e.g. 19.99), stored exactly.");
    schema
});

impl ParseFromJSON for Amount {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        parse_money(&value.unwrap_or_default())
            .map(Self)
            .map_err(ParseError::custom)
    }
}

impl ToJSON for Amount {
    fn to_json(&self) -> Option<Value> {
        Some(Value::Number(self.0.to_number()))
    }
}
