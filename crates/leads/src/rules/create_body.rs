//! A create's body parsed straight into what the rules read: the lead's members by
//! slot, the names of members that belong nowhere, the honeypot — no map of the body
//! is built (a `serde_json::Value` object is an `IndexMap` hashing every key with
//! SipHash, and the rules then hashed each field's name again to find it).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{
    HONEYPOT, LEAD_FIELDS, LeadIn, LeadMembers, NewLead, Violation, beside_lead, honeypot_of,
    not_an_object, slot, validate_members,
};

/// The body of `POST /leads/create` as parsed by [`serde_json::from_slice`], checked by
/// [`CreateBody::validate`] with the rules of [`super::validate_create`] and the same
/// violations in the same order (a test holds the two together). Keys met twice keep
/// the last value, as a parsed object does.
pub struct CreateBody(Shape);

// Unboxed on purpose: made once per request, checked and dropped with no await between.
#[allow(clippy::large_enum_variant)]
enum Shape {
    /// Anything but a JSON object.
    NotObject,
    Object {
        /// Top-level members other than `lead` and `honeypot`, by name, first seen first.
        beside: Vec<String>,
        lead: LeadMember,
        /// `None` when absent (`null` is kept: the rule reads it as absent).
        honeypot: Option<Value>,
    },
}

/// What the body's `lead` member held.
#[allow(clippy::large_enum_variant)]
enum LeadMember {
    /// Absent or `null`.
    Missing,
    /// Not an object.
    Other,
    Object(ParsedLead),
}

/// A `lead` object's members: a value per field of [`LEAD_FIELDS`] and the names of
/// the members that are no field (their values are skipped, not kept).
struct ParsedLead {
    known: [Option<Value>; LEAD_FIELDS.len()],
    unknown: Vec<String>,
}

impl CreateBody {
    /// Every rule of a create, as [`super::validate_create`] checks a parsed body: the
    /// lead and the honeypot's text, or every broken rule.
    pub fn validate(&self) -> Result<(NewLead, Option<String>), Vec<Violation>> {
        let Shape::Object {
            beside,
            lead,
            honeypot,
        } = &self.0
        else {
            return Err(not_an_object());
        };
        let mut errors = beside_lead(beside.iter().map(String::as_str), &[]);
        let lead = match lead {
            LeadMember::Missing => LeadIn::Missing,
            LeadMember::Other => LeadIn::Other,
            LeadMember::Object(parsed) => LeadIn::Members(LeadMembers {
                known: parsed.known.each_ref().map(Option::as_ref),
                unknown: parsed.unknown.iter().map(String::as_str).collect(),
            }),
        };
        let members = lead.members(&mut errors)?;
        let trap = honeypot_of(honeypot.as_ref(), &mut errors);
        validate_members(&members, errors).map(|lead| (lead, trap))
    }
}

/// `name` pushed unless already there (a key sent twice is one member).
fn remember(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|known| known == name) {
        names.push(name.to_owned());
    }
}

/// The visitor of a value that is not what was wanted: it is read through (a sequence's
/// items skipped) and stands for "something else".
macro_rules! anything_else {
    ($other:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
            while items.next_element::<IgnoredAny>()?.is_some() {}
            Ok($other)
        }
    };
}

impl<'de> Deserialize<'de> for CreateBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a create's body")
            }
            anything_else!(Shape::NotObject);
            fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::NotObject)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                let mut beside = Vec::new();
                let mut lead = LeadMember::Missing;
                let mut honeypot = None;
                while let Some(key) = map.next_key::<TopKey>()? {
                    match key {
                        TopKey::Lead => lead = map.next_value()?,
                        TopKey::Honeypot => honeypot = Some(map.next_value()?),
                        TopKey::Other(name) => {
                            remember(&mut beside, &name);
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Shape::Object {
                    beside,
                    lead,
                    honeypot,
                })
            }
        }
        deserializer.deserialize_any(Top).map(CreateBody)
    }
}

/// A top-level member's name, read without allocating unless it is neither `lead` nor
/// `honeypot`.
enum TopKey {
    Lead,
    Honeypot,
    Other(String),
}

impl<'de> Deserialize<'de> for TopKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = TopKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member's name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<TopKey, E> {
                Ok(match name {
                    "lead" => TopKey::Lead,
                    HONEYPOT => TopKey::Honeypot,
                    other => TopKey::Other(other.to_owned()),
                })
            }
        }
        deserializer.deserialize_str(Name)
    }
}

/// A member of the lead object, by its place in [`LEAD_FIELDS`] or (unknown) its name.
enum LeadKey {
    Field(usize),
    Other(String),
}

impl<'de> Deserialize<'de> for LeadKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = LeadKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a lead field's name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<LeadKey, E> {
                Ok(match slot(name) {
                    Some(at) => LeadKey::Field(at),
                    None => LeadKey::Other(name.to_owned()),
                })
            }
        }
        deserializer.deserialize_str(Name)
    }
}

impl<'de> Deserialize<'de> for LeadMember {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Member;
        impl<'de> Visitor<'de> for Member {
            type Value = LeadMember;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the lead")
            }
            anything_else!(LeadMember::Other);
            fn visit_unit<E: de::Error>(self) -> Result<LeadMember, E> {
                Ok(LeadMember::Missing)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LeadMember, A::Error> {
                let mut lead = ParsedLead {
                    known: Default::default(),
                    unknown: Vec::new(),
                };
                while let Some(key) = map.next_key::<LeadKey>()? {
                    match key {
                        LeadKey::Field(at) => lead.known[at] = Some(map.next_value()?),
                        LeadKey::Other(name) => {
                            remember(&mut lead.unknown, &name);
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(LeadMember::Object(lead))
            }
        }
        deserializer.deserialize_any(Member)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Each body read both ways — parsed into a `Value` and checked by
    /// `validate_create`, and parsed into a `CreateBody` and checked — answers the same:
    /// the same lead and honeypot, or the same violations in the same order.
    #[test]
    fn the_parsed_body_is_checked_as_the_value_is() {
        let full = json!({"lead": {
            "name": " Jane ", "email": "jane@example.com", "phone": "+1 (555) 123-4567",
            "source": "Web", "industry": "Tech", "score": 7.0, "status": "qualified",
            "monthly_revenue": 50000.10, "budget": 10000, "description": "a\nb",
            "external_id": "crm-1",
            "attribution": {"utm_source": "news", "landing_page": "https://example.com/"},
            "consent": {"text": "Yes", "granted": true}
        }, "honeypot": ""});
        let bodies = [
            full.to_string(),
            r#"{"lead": {"name": "J", "email": "j@example.com", "source": "s", "industry": "i"}}"#
                .into(),
            // Every kind of broken rule at once, unknown members at both levels.
            r#"{"x": 1, "lead": {"name": 5, "email": "no", "phone": "12", "source": "",
                "score": 11, "status": "won", "budget": -1, "monthly_revenue": "1",
                "description": "\u0007", "colour": "red", "attribution": [],
                "consent": {"text": "t", "granted": "yes", "when": 1}, "colour": 2},
               "y": [1, {"z": 2}], "honeypot": 3, "x": 2}"#
                .into(),
            r#"{"lead": null, "other": true}"#.into(),
            r#"{"other": true}"#.into(),
            r#"{"lead": [1, 2, {"a": []}], "honeypot": "bot"}"#.into(),
            r#"{"lead": "text"}"#.into(),
            r#"{"lead": 7, "honeypot": null}"#.into(),
            // A key sent twice: the last value counts.
            r#"{"lead": 1, "lead": {"name": "J", "name": "K", "email": "k@example.com",
                "source": "s", "industry": "i"}, "honeypot": "a", "honeypot": "b"}"#
                .into(),
            "[1, 2]".into(),
            "\"lead\"".into(),
            "null".into(),
            "12.5".into(),
            "true".into(),
            // Escaped names are names like the others.
            r#"{"\u006cead": {"n\u0061me": "J", "email": "j@example.com", "source": "s",
                "industry": "i", "\u00e9": 1}}"#
                .into(),
        ];
        for body in bodies {
            let value: Value = serde_json::from_str(&body).unwrap();
            let parsed: CreateBody = serde_json::from_str(&body).unwrap();
            assert_eq!(
                parsed.validate(),
                super::super::validate_create(&value),
                "{body}"
            );
        }
    }

    /// Bad JSON is refused with serde_json's own message, as a `Value` parse refuses it.
    #[test]
    fn malformed_json_is_refused_with_the_parsers_message() {
        for body in [
            "",
            "{",
            r#"{"lead": {"name": "J",}}"#,
            r#"{"lead": {}} trailing"#,
            r#"{"lead": {"name": "\ud800"}}"#,
            r#"{"lead": [1, 2}"#,
        ] {
            let as_value = serde_json::from_str::<Value>(body).unwrap_err().to_string();
            let Err(parsed) = serde_json::from_str::<CreateBody>(body) else {
                panic!("{body} parsed");
            };
            assert_eq!(parsed.to_string(), as_value, "{body}");
        }
    }
}
