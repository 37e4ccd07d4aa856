//! Which events of its types an endpoint receives: a filter on the attributes every event
//! carries (the lead's scalar fields, flat). Fields are ANDed, and so are the operators of
//! one field: `{"source": {"eq": "Website Form"}, "score": {"gte": 5}}`.
//!
//! A filter is checked once when it is set ([`Filter::parse`], every broken rule named by
//! its path, `filter.score.gte`), stored as canonical JSON ([`Filter::canonical`]: keys
//! sorted, `in` values as a sorted set) so two equal filters are equal text, and evaluated
//! in the one fan-out ([`Filter::matches`]). Text compares ignoring case.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Scalar values an event carries for filters, by name (`source`, `score`, …).
pub type Attributes = serde_json::Map<String, serde_json::Value>;

/// How a field's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Text, compared ignoring case.
    Text,
    /// A number.
    Number,
}

/// The fields a filter may test, and their kinds.
pub const FIELDS: [(&str, &str); 11] = [
    ("source", "text"),
    ("industry", "text"),
    ("status", "text"),
    ("score", "number"),
    ("monthly_revenue", "number"),
    ("budget", "number"),
    ("external_id", "text"),
    ("email_domain", "text"),
    ("attribution.utm_source", "text"),
    ("attribution.utm_medium", "text"),
    ("attribution.utm_campaign", "text"),
];

/// The operators, in the order a rule is written in words.
pub const OPERATORS: [&str; 5] = ["eq", "in", "gte", "lte", "exists"];

/// Longest text a filter compares with, in characters.
pub const MAX_TEXT_LEN: usize = 255;

/// Whether `field` holds numbers (`false`: text); `None` when a filter cannot test it.
pub fn is_number_field(field: &str) -> Option<bool> {
    kind_of(field).map(|kind| kind == Kind::Number)
}

/// Most values of one `in`.
pub const MAX_IN_VALUES: usize = 50;

fn kind_of(field: &str) -> Option<Kind> {
    FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, k)| match *k {
            "number" => Kind::Number,
            _ => Kind::Text,
        })
}

/// One broken rule of a filter: its path (`filter.score.gte`) and the rule in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Where in the body.
    pub field: String,
    /// The rule.
    pub message: String,
}

impl FilterError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One operator of a field, checked.
#[derive(Debug, Clone, PartialEq)]
enum Test {
    Eq(Value),
    In(Vec<Value>),
    Gte(f64),
    Lte(f64),
    Exists(bool),
}

/// A checked filter: per field, its operators (all must hold).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    tests: BTreeMap<String, BTreeMap<&'static str, Test>>,
    /// A stored filter this version cannot read: it lets no event through.
    unreadable: bool,
}

impl Filter {
    /// Checks the body's `filter` (an object, or null for none): `Ok(None)` when there
    /// is no filter (null or `{}`), every broken rule otherwise, named by its path.
    pub fn parse(value: &Value) -> Result<Option<Self>, Vec<FilterError>> {
        let object = match value {
            Value::Null => return Ok(None),
            Value::Object(object) => object,
            _ => {
                return Err(vec![FilterError::new(
                    "filter",
                    "must be an object of fields, e.g. {\"score\": {\"gte\": 5}}",
                )]);
            }
        };
        let mut errors = Vec::new();
        let mut filter = Filter::default();
        for (field, rule) in object {
            let path = format!("filter.{field}");
            let Some(kind) = kind_of(field) else {
                let known: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
                errors.push(FilterError::new(
                    path,
                    format!(
                        "is not a field a filter can test (fields: {})",
                        known.join(", ")
                    ),
                ));
                continue;
            };
            match parse_rule(&path, kind, rule) {
                Ok(tests) => {
                    filter.tests.insert(field.clone(), tests);
                }
                Err(mut broken) => errors.append(&mut broken),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok((!filter.tests.is_empty()).then_some(filter))
    }

    /// The stored filter `text` (canonical JSON written by [`Filter::canonical`]);
    /// `None` when there is none. A stored filter that no longer reads (a field this
    /// version does not know) matches nothing, and says why in the log.
    pub fn stored(text: Option<&str>) -> Option<Self> {
        let text = text?;
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(err) => {
                tracing::warn!(error = %err, "a stored webhook filter is not JSON: it matches nothing");
                return Some(Self::nothing());
            }
        };
        match Self::parse(&value) {
            Ok(filter) => filter,
            Err(errors) => {
                tracing::warn!(
                    ?errors,
                    "a stored webhook filter does not read: it matches nothing"
                );
                Some(Self::nothing())
            }
        }
    }

    /// A filter no event passes.
    fn nothing() -> Self {
        Self {
            unreadable: true,
            ..Self::default()
        }
    }

    /// The filter as JSON: fields and operators in sorted order, `in` values sorted
    /// without repeats (and text lower-cased), so equal filters are equal text.
    pub fn canonical(&self) -> Value {
        let mut object = Map::new();
        for (field, tests) in &self.tests {
            let mut rule = Map::new();
            for (op, test) in tests {
                let value = match test {
                    Test::Eq(v) => v.clone(),
                    Test::In(values) => Value::Array(values.clone()),
                    Test::Gte(n) | Test::Lte(n) => number(*n),
                    Test::Exists(b) => Value::Bool(*b),
                };
                rule.insert((*op).to_owned(), value);
            }
            object.insert(field.clone(), Value::Object(rule));
        }
        Value::Object(object)
    }

    /// [`Filter::canonical`] as stored text.
    pub fn canonical_text(&self) -> String {
        self.canonical().to_string()
    }

    /// Whether an event with `attributes` passes. An attribute that is absent or null
    /// passes only `exists: false`.
    pub fn matches(&self, attributes: &Attributes) -> bool {
        !self.unreadable
            && self.tests.iter().all(|(field, tests)| {
                let value = attributes.get(field).filter(|v| !v.is_null());
                tests.values().all(|test| test.holds(value))
            })
    }

    /// The rule in words, for people: `source is Website Form and score ≥ 5`.
    pub fn in_words(&self) -> String {
        let mut parts = Vec::new();
        for (field, tests) in &self.tests {
            let name = field.replace("attribution.", "").replace('_', " ");
            for test in tests.values() {
                parts.push(match test {
                    Test::Eq(v) => format!("{name} is {}", shown(v)),
                    Test::In(values) => format!(
                        "{name} is one of {}",
                        values.iter().map(shown).collect::<Vec<_>>().join(", ")
                    ),
                    Test::Gte(n) => format!("{name} ≥ {}", shown(&number(*n))),
                    Test::Lte(n) => format!("{name} ≤ {}", shown(&number(*n))),
                    Test::Exists(true) => format!("{name} is set"),
                    Test::Exists(false) => format!("{name} is empty"),
                });
            }
        }
        parts.join(" and ")
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `n` as JSON: a whole number without `.0`.
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

impl Test {
    fn holds(&self, value: Option<&Value>) -> bool {
        match self {
            Test::Exists(wanted) => value.is_some() == *wanted,
            Test::Eq(expected) => value.is_some_and(|v| same(v, expected)),
            Test::In(values) => value.is_some_and(|v| values.iter().any(|e| same(v, e))),
            Test::Gte(bound) => value.and_then(Value::as_f64).is_some_and(|n| n >= *bound),
            Test::Lte(bound) => value.and_then(Value::as_f64).is_some_and(|n| n <= *bound),
        }
    }
}

/// Whether an event's value equals a filter's (text ignoring case, numbers by value).
fn same(value: &Value, expected: &Value) -> bool {
    match (value, expected) {
        (Value::String(a), Value::String(b)) => a.to_lowercase() == *b,
        (a, b) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    }
}

/// One field's operators, checked for its kind.
fn parse_rule(
    path: &str,
    kind: Kind,
    rule: &Value,
) -> Result<BTreeMap<&'static str, Test>, Vec<FilterError>> {
    let Value::Object(ops) = rule else {
        return Err(vec![FilterError::new(
            path,
            format!("must be an object of operators ({})", OPERATORS.join(", ")),
        )]);
    };
    if ops.is_empty() {
        return Err(vec![FilterError::new(
            path,
            format!("needs an operator ({})", OPERATORS.join(", ")),
        )]);
    }
    let mut errors = Vec::new();
    let mut tests = BTreeMap::new();
    for (op, value) in ops {
        let at = format!("{path}.{op}");
        let Some(&op) = OPERATORS.iter().find(|o| **o == op) else {
            errors.push(FilterError::new(
                at,
                format!("is not an operator (operators: {})", OPERATORS.join(", ")),
            ));
            continue;
        };
        let test = match op {
            "eq" => scalar(&at, kind, value).map(Test::Eq),
            "in" => match value {
                Value::Array(values) if values.is_empty() || values.len() > MAX_IN_VALUES => Err(
                    FilterError::new(&at, format!("must hold 1 to {MAX_IN_VALUES} values")),
                ),
                Value::Array(values) => values
                    .iter()
                    .map(|v| scalar(&at, kind, v))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|mut values| {
                        values.sort_by_key(Value::to_string);
                        values.dedup();
                        Test::In(values)
                    }),
                _ => Err(FilterError::new(&at, "must be an array of values")),
            },
            "gte" | "lte" => match (kind, value.as_f64()) {
                (Kind::Number, Some(n)) => Ok(if op == "gte" {
                    Test::Gte(n)
                } else {
                    Test::Lte(n)
                }),
                (Kind::Number, None) => Err(FilterError::new(&at, "must be a number")),
                (Kind::Text, _) => Err(FilterError::new(
                    &at,
                    "compares numbers only; this field is text (use eq or in)",
                )),
            },
            _ => match value {
                Value::Bool(b) => Ok(Test::Exists(*b)),
                _ => Err(FilterError::new(&at, "must be true or false")),
            },
        };
        match test {
            Ok(test) => {
                tests.insert(op, test);
            }
            Err(err) => errors.push(err),
        }
    }
    if errors.is_empty() {
        Ok(tests)
    } else {
        Err(errors)
    }
}

/// A value `eq` and `in` compare with: text (trimmed, 1 to 255 characters, lower-cased)
/// for a text field, a number for a number field.
fn scalar(at: &str, kind: Kind, value: &Value) -> Result<Value, FilterError> {
    match (kind, value) {
        (Kind::Text, Value::String(text)) => {
            // The length as sent; then trimmed, it must hold something and no control
            // character (the document's pattern says the same).
            let trimmed = text.trim();
            if trimmed.is_empty() || text.chars().count() > MAX_TEXT_LEN {
                Err(FilterError::new(
                    at,
                    format!("must be text of 1 to {MAX_TEXT_LEN} characters"),
                ))
            } else if trimmed.chars().any(char::is_control) {
                Err(FilterError::new(at, "must not contain control characters"))
            } else {
                Ok(Value::String(trimmed.to_lowercase()))
            }
        }
        (Kind::Text, _) => Err(FilterError::new(at, "must be text")),
        (Kind::Number, Value::Number(n)) => Ok(number(n.as_f64().unwrap_or(f64::NAN))),
        (Kind::Number, _) => Err(FilterError::new(at, "must be a number")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn attrs(value: Value) -> Attributes {
        value.as_object().unwrap().clone()
    }

    fn filter(value: Value) -> Filter {
        Filter::parse(&value).unwrap().unwrap()
    }

    #[test]
    fn every_operator_matches_and_misses() {
        let lead = attrs(
            json!({"source": "Website Form", "score": 7, "status": "new",
            "monthly_revenue": 1200.5, "attribution.utm_source": "google", "external_id": null}),
        );
        let cases = [
            (json!({"source": {"eq": "website form"}}), true),
            (json!({"source": {"eq": "Trade fair"}}), false),
            (json!({"status": {"in": ["new", "contacted"]}}), true),
            (json!({"status": {"in": ["lost"]}}), false),
            (json!({"score": {"gte": 7}}), true),
            (json!({"score": {"gte": 8}}), false),
            (json!({"score": {"lte": 7, "gte": 5}}), true),
            (json!({"monthly_revenue": {"lte": 1000}}), false),
            (json!({"external_id": {"exists": false}}), true),
            (json!({"external_id": {"exists": true}}), false),
            (json!({"budget": {"gte": 0}}), false),
            (json!({"attribution.utm_source": {"eq": "Google"}}), true),
            (
                json!({"source": {"eq": "Website Form"}, "score": {"gte": 8}}),
                false,
            ),
        ];
        for (rule, expected) in cases {
            assert_eq!(filter(rule.clone()).matches(&lead), expected, "{rule}");
        }
        // A deleted lead's event has no attributes: only an empty filter passes it.
        assert!(!filter(json!({"score": {"exists": true}})).matches(&Attributes::new()));
    }

    #[test]
    fn broken_rules_are_named_by_their_path() {
        let errors = Filter::parse(&json!({
            "colour": {"eq": "red"}, "score": {"gte": "high", "between": [1, 2]},
            "source": {"gte": 3}, "status": {"in": []}, "industry": 5, "budget": {},
        }))
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "filter.colour",
                "filter.score.gte",
                "filter.score.between",
                "filter.source.gte",
                "filter.status.in",
                "filter.industry",
                "filter.budget"
            ],
            "in the body's order"
        );
        assert_eq!(Filter::parse(&json!({})).unwrap(), None);
        assert_eq!(Filter::parse(&Value::Null).unwrap(), None);
        assert!(Filter::parse(&json!(["score"])).is_err());
    }

    #[test]
    fn equal_filters_are_equal_text_and_read_back() {
        let a = filter(json!({"status": {"in": ["new", "Lost", "new"]}, "score": {"gte": 5.0}}));
        let b = filter(json!({"score": {"gte": 5}, "status": {"in": ["lost", "new"]}}));
        assert_eq!(a.canonical_text(), b.canonical_text());
        assert_eq!(
            a.canonical_text(),
            r#"{"score":{"gte":5},"status":{"in":["lost","new"]}}"#
        );
        assert_eq!(Filter::stored(Some(&a.canonical_text())), Some(a.clone()));
        assert_eq!(a.in_words(), "score ≥ 5 and status is one of lost, new");
        assert!(
            !Filter::stored(Some("{\"planet\":{\"eq\":\"mars\"}}"))
                .unwrap()
                .matches(&attrs(json!({"source": "x"})))
        );
    }
}
