//! Bodies parsed straight into what the rules read: a lead's members by slot, the names
//! of members that belong nowhere, the honeypot — no map of the body is built (a
//! `serde_json::Value` object is an `IndexMap` hashing every key with SipHash, and the
//! rules then hashed each field's name again to find it).

use std::fmt;

use serde::Deserialize;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{
    HONEYPOT, LEAD_FIELDS, LeadIn, LeadMembers, NewLead, Violation, beside_lead, not_an_object,
    validate_members, validate_wrapped,
};

/// A body `{"<M::NAME>": …, "honeypot": …}` as parsed by [`serde_json::from_slice`]
/// (any JSON parses: what is not an object is [`Envelope::is_object`] false). Keys met
/// twice keep the last value, as a parsed object does.
pub struct Envelope<M>(Shape<M>);

/// The body of `POST /leads/create`, checked by [`CreateBody::validate`].
pub type CreateBody = Envelope<LeadObject>;

/// The member an [`Envelope`] carries beside the honeypot.
pub trait Member: for<'de> Deserialize<'de> {
    /// Its name in the body.
    const NAME: &'static str;
}

enum Shape<M> {
    /// Anything but a JSON object.
    NotObject,
    Object {
        /// Top-level members other than the envelope's and `honeypot`, by name, first
        /// seen first.
        beside: Vec<String>,
        /// `None` when absent.
        member: Option<M>,
        /// `None` when absent (`null` is kept: the rule reads it as absent).
        honeypot: Option<Value>,
    },
}

impl<M> Envelope<M> {
    /// Whether the body was a JSON object.
    pub fn is_object(&self) -> bool {
        matches!(self.0, Shape::Object { .. })
    }

    /// The names of the top-level members that are neither the envelope's nor
    /// `honeypot`, first seen first.
    pub fn beside(&self) -> &[String] {
        match &self.0 {
            Shape::Object { beside, .. } => beside,
            Shape::NotObject => &[],
        }
    }

    /// The envelope's member, if the body had it.
    pub fn member(&self) -> Option<&M> {
        match &self.0 {
            Shape::Object { member, .. } => member.as_ref(),
            Shape::NotObject => None,
        }
    }

    /// The `honeypot` member's value, if the body had one.
    pub fn honeypot(&self) -> Option<&Value> {
        match &self.0 {
            Shape::Object { honeypot, .. } => honeypot.as_ref(),
            Shape::NotObject => None,
        }
    }
}

impl CreateBody {
    /// Every rule of a create, as [`super::validate_create`] checks a parsed body (the
    /// same violations in the same order; a test holds the two together): the lead and
    /// the honeypot's text, or every broken rule.
    pub fn validate(&self) -> Result<(NewLead, Option<String>), Vec<Violation>> {
        if !self.is_object() {
            return Err(not_an_object());
        }
        let errors = beside_lead(self.beside().iter().map(String::as_str), &[]);
        let lead = self.member().map_or(LeadIn::Missing, LeadObject::lead_in);
        validate_wrapped(lead, Some(self.honeypot()), errors)
    }
}

/// A lead object as parsed (a create's `lead`, a batch's item), or what stood in its
/// place; checked by [`LeadObject::validate`].
pub struct LeadObject(LeadMember);

impl Member for LeadObject {
    const NAME: &'static str = "lead";
}

impl LeadObject {
    /// Every rule of a create's lead, as [`super::validate_lead`] checks a parsed
    /// value: paths read `lead.…`, and `null` or anything but an object is `lead`'s
    /// own violation.
    pub fn validate(&self) -> Result<NewLead, Vec<Violation>> {
        let mut errors = Vec::new();
        let members = self.lead_in().members(&mut errors)?;
        validate_members(&members, errors)
    }

    fn lead_in(&self) -> LeadIn<'_> {
        match &self.0 {
            LeadMember::Missing => LeadIn::Missing,
            LeadMember::Other => LeadIn::Other,
            LeadMember::Object(parsed) => LeadIn::Members(LeadMembers {
                known: parsed.known.each_ref().map(Option::as_ref),
                unknown: parsed.unknown.iter().map(String::as_str).collect(),
            }),
        }
    }
}

impl<'de> Deserialize<'de> for LeadObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        LeadMember::deserialize(deserializer).map(LeadObject)
    }
}

/// A batch's `leads` member: an array of lead objects, or something else.
pub enum LeadList {
    /// Not an array.
    NotArray,
    /// The array's items, in order.
    Items(Vec<LeadObject>),
}

impl LeadList {
    /// Items a list is given room for before its first is read: the most a batch
    /// takes (ciq-api's `MAX_BATCH_LEADS`; more grow the list as usual).
    pub const RESERVED: usize = 100;
}

impl Member for LeadList {
    const NAME: &'static str = "leads";
}

/// What a `lead` member held.
// Unboxed on purpose: a create's is made once, checked and dropped with no await between;
// a batch's items are boxed by their Vec.
#[allow(clippy::large_enum_variant)]
enum LeadMember {
    /// `null`.
    Missing,
    /// Not an object.
    Other,
    Object(ParsedLead),
}

/// A `lead` object's members: a value per field of [`LEAD_FIELDS`] and the names of
/// the members that are no field (their values are parsed and dropped).
struct ParsedLead {
    known: [Option<Value>; LEAD_FIELDS.len()],
    unknown: Vec<String>,
}

/// A value the rules do not read, parsed all the same — as a `Value`, so that a body is
/// refused as malformed exactly where parsing it into a `Value` refuses it (serde's
/// `IgnoredAny` lets through text that is not UTF-8, a lone surrogate escape, a number
/// out of range) and the idempotency fingerprint, which parses the body into a `Value`,
/// can always read it. Only bodies with members that belong nowhere pay for it.
type Skipped = Value;

/// `name` pushed unless already there (a key sent twice is one member).
fn remember(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|known| known == name) {
        names.push(name.to_owned());
    }
}

/// The visitor of a value that is not what was wanted: it is read through (a sequence's
/// items parsed and dropped, unless `scalars` only) and stands for "something else".
macro_rules! anything_else {
    ($other:expr; scalars) => {
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
    };
    ($other:expr) => {
        anything_else!($other; scalars);
        fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
            while items.next_element::<Skipped>()?.is_some() {}
            Ok($other)
        }
    };
}

/// A member's name: its place among the names a seed knows, or (unknown) the name
/// itself — read without allocating unless unknown.
enum Key {
    Known(usize),
    Other(String),
}

/// Reads a [`Key`] among `.0`'s names.
struct Names<'a>(&'a [&'a str]);

impl<'de> DeserializeSeed<'de> for Names<'_> {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Names<'_> {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member's name")
    }
    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
        Ok(match self.0.iter().position(|known| *known == name) {
            Some(at) => Key::Known(at),
            None => Key::Other(name.to_owned()),
        })
    }
}

impl<'de, M: Member> Deserialize<'de> for Envelope<M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Body<M>(PhantomData<M>);
        impl<'de, M: Member> Visitor<'de> for Body<M> {
            type Value = Shape<M>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a body with {}", M::NAME)
            }
            anything_else!(Shape::NotObject);
            fn visit_unit<E: de::Error>(self) -> Result<Shape<M>, E> {
                Ok(Shape::NotObject)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape<M>, A::Error> {
                let mut beside = Vec::new();
                let mut member = None;
                let mut honeypot = None;
                let names = [M::NAME, HONEYPOT];
                while let Some(key) = map.next_key_seed(Names(&names))? {
                    match key {
                        Key::Known(0) => member = Some(map.next_value()?),
                        Key::Known(_) => honeypot = Some(map.next_value()?),
                        Key::Other(name) => {
                            remember(&mut beside, &name);
                            map.next_value::<Skipped>()?;
                        }
                    }
                }
                Ok(Shape::Object {
                    beside,
                    member,
                    honeypot,
                })
            }
        }
        deserializer
            .deserialize_any(Body(PhantomData))
            .map(Envelope)
    }
}

impl<'de> Deserialize<'de> for LeadList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = LeadList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the leads")
            }
            anything_else!(LeadList::NotArray; scalars);
            fn visit_unit<E: de::Error>(self) -> Result<LeadList, E> {
                Ok(LeadList::NotArray)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LeadList, A::Error> {
                while map.next_entry::<Skipped, Skipped>()?.is_some() {}
                Ok(LeadList::NotArray)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<LeadList, A::Error> {
                // serde_json tells no length: without room made first, a batch of 100
                // items (~1.4 KB each) was moved six times as it grew (3 % of its work).
                let mut leads =
                    Vec::with_capacity(items.size_hint().unwrap_or(LeadList::RESERVED).min(128));
                while let Some(lead) = items.next_element()? {
                    leads.push(lead);
                }
                Ok(LeadList::Items(leads))
            }
        }
        deserializer.deserialize_any(List)
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
                while let Some(key) = map.next_key_seed(Names(LEAD_FIELDS))? {
                    match key {
                        Key::Known(at) => lead.known[at] = Some(map.next_value()?),
                        Key::Other(name) => {
                            remember(&mut lead.unknown, &name);
                            map.next_value::<Skipped>()?;
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

    /// A batch's items — every shape a `lead` can take, and a list that is no array —
    /// are checked as `validate_lead` checks each item's value.
    #[test]
    fn a_batchs_items_are_checked_as_their_values_are() {
        let items = json!([
            {"name": "J", "email": "j@example.com", "source": "s", "industry": "i",
             "score": 3, "budget": 1.5, "attribution": {"gclid": "x"}},
            {"name": "", "email": "no", "phone": 5, "other": 1, "other": 2},
            null, "text", 7, [1, {"a": 2}], {}
        ]);
        let body = json!({"leads": items.clone(), "honeypot": "h", "extra": 1});
        let parsed: Envelope<LeadList> = serde_json::from_str(&body.to_string()).unwrap();
        let Some(LeadList::Items(parsed_items)) = parsed.member() else {
            panic!("the leads are an array");
        };
        let values = items.as_array().unwrap();
        assert_eq!(parsed_items.len(), values.len());
        for (item, value) in parsed_items.iter().zip(values) {
            assert_eq!(
                item.validate(),
                super::super::validate_lead(value),
                "{value}"
            );
        }
        assert_eq!(parsed.beside(), ["extra"]);
        assert_eq!(parsed.honeypot(), Some(&json!("h")));
        for leads in ["{\"a\": [1]}", "\"x\"", "null", "3", "true"] {
            let body = format!("{{\"leads\": {leads}}}");
            let parsed: Envelope<LeadList> = serde_json::from_str(&body).unwrap();
            assert!(
                matches!(parsed.member(), Some(LeadList::NotArray)),
                "{body}"
            );
        }
        let parsed: Envelope<LeadList> = serde_json::from_str("[{\"leads\": []}]").unwrap();
        assert!(!parsed.is_object() && parsed.member().is_none());
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
            // Where nothing reads the value, it is still JSON to be refused.
            r#"{"x": "\ud800", "lead": {}}"#,
            r#"{"lead": {"other": "\udc00"}}"#,
            r#"{"lead": {}, "x": 1e400}"#,
            r#"{"lead": [1e999]}"#,
            r#"{"leads": {"a": -1e400}}"#,
            r#"{"leads": [{"other": [1e400]}]}"#,
        ] {
            let as_value = serde_json::from_str::<Value>(body).unwrap_err().to_string();
            let Err(parsed) = serde_json::from_str::<CreateBody>(body) else {
                panic!("{body} parsed");
            };
            assert_eq!(parsed.to_string(), as_value, "{body}");
            let Err(batch) = serde_json::from_str::<Envelope<LeadList>>(body) else {
                panic!("{body} parsed as a batch");
            };
            assert_eq!(batch.to_string(), as_value, "{body}");
        }
        // Text that is not UTF-8, in a member nothing reads.
        for body in [
            &b"{\"x\": \"\xff\", \"lead\": {}}"[..],
            b"{\"lead\": {\"o\": \"\xc3\"}}",
        ] {
            let as_value = serde_json::from_slice::<Value>(body)
                .unwrap_err()
                .to_string();
            let Err(parsed) = serde_json::from_slice::<CreateBody>(body) else {
                panic!("{body:?} parsed");
            };
            assert_eq!(parsed.to_string(), as_value);
        }
    }
}
