//! Where a lead came from and what it agreed to: first-touch attribution (the page's
//! UTM parameters, ad click ids, page and referrer) and consent (the text the visitor
//! saw and whether they ticked it, with the gateway's own time and the visitor's
//! address).
//!
//! Both are set once, when the lead is created, and never change: an update carrying
//! either is refused. They are stored as JSON text, one column each, and read back into
//! these types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::violation::Violation;

/// The body field of the attribution object.
pub const ATTRIBUTION: &str = "attribution";
/// The body field of the consent object.
pub const CONSENT: &str = "consent";

/// Longest UTM value or click id, in characters.
pub const MAX_TAG_LEN: usize = 255;
/// Longest `page_url` or `referrer`, in characters.
pub const MAX_URL_LEN: usize = 2048;
/// Longest consent text, in characters.
pub const MAX_CONSENT_TEXT_LEN: usize = 2000;

/// Calls `$then! { … }` with every field of the attribution object: its description,
/// name and longest length (`/// doc… name: max,`). [`Attribution`] and ciq-api's
/// document object are both made from it.
#[macro_export]
macro_rules! attribution_fields {
    ($then:ident) => {
        $then! {
            /// The `utm_source` of the page the lead was submitted on (e.g. google).
            utm_source: $crate::attribution::MAX_TAG_LEN,
            /// The `utm_medium` (e.g. cpc, email).
            utm_medium: $crate::attribution::MAX_TAG_LEN,
            /// The `utm_campaign`.
            utm_campaign: $crate::attribution::MAX_TAG_LEN,
            /// The `utm_term` (the paid keyword).
            utm_term: $crate::attribution::MAX_TAG_LEN,
            /// The `utm_content` (which ad or link).
            utm_content: $crate::attribution::MAX_TAG_LEN,
            /// Google Ads click id.
            gclid: $crate::attribution::MAX_TAG_LEN,
            /// Meta (Facebook) click id.
            fbclid: $crate::attribution::MAX_TAG_LEN,
            /// Microsoft Advertising click id.
            msclkid: $crate::attribution::MAX_TAG_LEN,
            /// The page the form was on: an absolute http(s) URL.
            page_url: $crate::attribution::MAX_URL_LEN,
            /// The page the visitor came from (document.referrer): an absolute http(s) URL.
            referrer: $crate::attribution::MAX_URL_LEN,
        }
    };
}

/// Makes [`Attribution`] from [`attribution_fields!`].
macro_rules! attribution_struct {
    ($( $(#[doc = $doc:literal])* $field:ident : $max:expr, )*) => {
        /// First-touch attribution of a lead: every field optional, at least one given.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct Attribution {
            $( $(#[doc = $doc])* #[serde(default)] pub $field: Option<String>, )*
        }

        impl Attribution {
            /// Its fields' names, in order, with their longest length.
            pub const FIELDS: &'static [(&'static str, usize)] =
                &[$((stringify!($field), $max)),*];

            /// Each field's name and value, in [`Attribution::FIELDS`]' order.
            pub fn values(&self) -> [(&'static str, Option<&str>); Self::FIELDS.len()] {
                [$((stringify!($field), self.$field.as_deref())),*]
            }

            /// Sets the field `name` (one of [`Attribution::FIELDS`]); `false` when
            /// there is no such field.
            fn set(&mut self, name: &str, value: String) -> bool {
                match name {
                    $(stringify!($field) => self.$field = Some(value),)*
                    _ => return false,
                }
                true
            }
        }
    };
}

attribution_fields!(attribution_struct);

/// The fields that hold a URL (absolute, http or https).
const URL_FIELDS: [&str; 2] = ["page_url", "referrer"];

impl Attribution {
    /// The field of the attribution `name` is, as an export column and import mapping
    /// target: `utm_source`, …, `referrer`.
    pub fn is_field(name: &str) -> bool {
        Self::FIELDS.iter().any(|(field, _)| *field == name)
    }

    /// Whether no field has a value.
    pub fn is_empty(&self) -> bool {
        self.values().iter().all(|(_, v)| v.is_none())
    }

    /// The attribution as stored (JSON text).
    pub fn stored(&self) -> String {
        serde_json::to_string(self).expect("an attribution always serialises")
    }

    /// The attribution of a stored row (`None`: none, or text that is not one).
    pub fn from_stored(text: Option<&str>) -> Option<Self> {
        text.and_then(|t| serde_json::from_str(t).ok())
    }
}

/// Consent as a client submits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentGiven {
    /// The words the visitor agreed to (or did not), as the form showed them.
    pub text: String,
    /// Whether the visitor gave consent.
    pub granted: bool,
    /// The visitor's address, for a browser submission (set by the surface that
    /// received it; `None` for every other create, imports included).
    pub ip: Option<String>,
}

/// A lead's consent record: what was submitted, when the gateway received it and from
/// which address. Never changes once stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// The words the visitor agreed to (or did not).
    pub text: String,
    /// Whether the visitor gave consent.
    pub granted: bool,
    /// When the gateway received it (its own clock), RFC 3339 with milliseconds.
    #[serde(with = "millis")]
    pub granted_at: DateTime<Utc>,
    /// The visitor's address for a browser submission; `None` otherwise.
    pub ip: Option<String>,
}

impl Consent {
    /// The columns of a consent in an export, in order.
    pub const COLUMNS: [&'static str; 4] = [
        "consent_text",
        "consent_granted",
        "consent_granted_at",
        "consent_ip",
    ];

    /// The record of `given`, received at `at`.
    pub fn received(given: ConsentGiven, at: DateTime<Utc>) -> Self {
        Self {
            text: given.text,
            granted: given.granted,
            granted_at: at,
            ip: given.ip,
        }
    }

    /// The consent as stored (JSON text).
    pub fn stored(&self) -> String {
        serde_json::to_string(self).expect("a consent always serialises")
    }

    /// The consent of a stored row (`None`: none, or text that is not one).
    pub fn from_stored(text: Option<&str>) -> Option<Self> {
        text.and_then(|t| serde_json::from_str(t).ok())
    }
}

/// Times written as every answer writes them (RFC 3339, UTC, milliseconds, `Z`).
mod millis {
    use chrono::{DateTime, Utc};

    pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&crate::time::Millis(*t), s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// The `lead.attribution` of a body: `None` when absent, null or with no value; every
/// broken rule pushed on `errors`, each named `lead.attribution.<field>`.
pub fn validate_attribution(
    value: Option<&Value>,
    errors: &mut Vec<Violation>,
) -> Option<Attribution> {
    let object = object_of(value, ATTRIBUTION, errors)?;
    let mut attribution = Attribution::default();
    for (name, value) in object {
        let path = format!("lead.{ATTRIBUTION}.{name}");
        let Some(&(_, max)) = Attribution::FIELDS.iter().find(|(f, _)| f == name) else {
            let known: Vec<&str> = Attribution::FIELDS.iter().map(|(f, _)| *f).collect();
            errors.push(Violation::new(
                path,
                format!("is not a known field (known: {})", known.join(", ")),
            ));
            continue;
        };
        let Some(text) = text_of(value, &path, max, errors) else {
            continue;
        };
        if URL_FIELDS.contains(&name.as_str()) && !is_web_url(&text) {
            errors.push(Violation::new(
                path,
                "must be an absolute http:// or https:// URL",
            ));
            continue;
        }
        attribution.set(name, text);
    }
    (!attribution.is_empty()).then_some(attribution)
}

/// The `lead.consent` of a body: `None` when absent or null; every broken rule pushed
/// on `errors`, each named `lead.consent.<field>`.
pub fn validate_consent(
    value: Option<&Value>,
    errors: &mut Vec<Violation>,
) -> Option<ConsentGiven> {
    let object = object_of(value, CONSENT, errors)?;
    let before = errors.len();
    for name in object
        .keys()
        .filter(|k| !["text", "granted"].contains(&k.as_str()))
    {
        errors.push(Violation::new(
            format!("lead.{CONSENT}.{name}"),
            "is not a known field (known: text, granted)",
        ));
    }
    let text_path = format!("lead.{CONSENT}.text");
    let text = match object.get("text") {
        None | Some(Value::Null) => {
            errors.push(Violation::new(
                text_path,
                "is required: the words the visitor agreed to, as the form showed them",
            ));
            None
        }
        Some(value) => {
            let reported = errors.len();
            let text = text_of(value, &text_path, MAX_CONSENT_TEXT_LEN, errors);
            if text.is_none() && errors.len() == reported {
                errors.push(Violation::new(text_path, "must not be empty"));
            }
            text
        }
    };
    let granted = match object.get("granted") {
        Some(Value::Bool(granted)) => Some(*granted),
        None | Some(Value::Null) => {
            errors.push(Violation::new(
                format!("lead.{CONSENT}.granted"),
                "is required: true when the visitor gave consent, false when not",
            ));
            None
        }
        Some(_) => {
            errors.push(Violation::new(
                format!("lead.{CONSENT}.granted"),
                "must be true or false",
            ));
            None
        }
    };
    match (text, granted) {
        (Some(text), Some(granted)) if errors.len() == before => Some(ConsentGiven {
            text,
            granted,
            ip: None,
        }),
        _ => None,
    }
}

/// The rule an update breaks by carrying `field` (attribution or consent).
pub fn set_once(field: &str) -> Violation {
    Violation::new(
        format!("lead.{field}"),
        "is recorded when the lead is created and never changes; leave it out of updates",
    )
}

/// `value` as an object, `None` when absent or null (anything else is a broken rule).
fn object_of<'a>(
    value: Option<&'a Value>,
    field: &str,
    errors: &mut Vec<Violation>,
) -> Option<&'a Map<String, Value>> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::Object(object)) => Some(object),
        Some(_) => {
            errors.push(Violation::new(format!("lead.{field}"), "must be an object"));
            None
        }
    }
}

/// A trimmed string of at most `max` characters (as sent), with no control characters;
/// `None` for null or blank (a form sends "" for an empty input).
fn text_of(value: &Value, path: &str, max: usize, errors: &mut Vec<Violation>) -> Option<String> {
    let text = match value {
        Value::Null => return None,
        Value::String(text) => text,
        _ => {
            errors.push(Violation::new(path, "must be a string"));
            return None;
        }
    };
    if text.chars().count() > max {
        errors.push(Violation::new(
            path,
            format!("must be at most {max} characters"),
        ));
        return None;
    }
    let text = text.trim();
    if text.chars().any(char::is_control) {
        errors.push(Violation::new(path, "must not contain control characters"));
        return None;
    }
    (!text.is_empty()).then(|| text.to_owned())
}

/// Whether `text` is an absolute http(s) URL with a host.
fn is_web_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn attribution(value: Value) -> (Option<Attribution>, Vec<(String, String)>) {
        let mut errors = Vec::new();
        let got = validate_attribution(Some(&value), &mut errors);
        (
            got,
            errors.into_iter().map(|v| (v.field, v.message)).collect(),
        )
    }

    #[test]
    fn attribution_takes_known_fields_trimmed_and_refuses_the_rest_by_name() {
        let (got, errors) = attribution(json!({
            "utm_source": " google ", "utm_campaign": "spring", "gclid": "",
            "page_url": "https://shop.example/contact?utm_source=google",
        }));
        assert!(errors.is_empty(), "{errors:?}");
        let got = got.unwrap();
        assert_eq!(got.utm_source.as_deref(), Some("google"));
        assert_eq!(got.gclid, None);
        assert_eq!(
            got.page_url.as_deref(),
            Some("https://shop.example/contact?utm_source=google")
        );
        let (_, errors) = attribution(json!({
            "utm_source": 5, "colour": "red", "referrer": "javascript:alert(1)",
            "utm_term": "x".repeat(256), "page_url": "/contact",
        }));
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "lead.attribution.utm_source",
                "lead.attribution.colour",
                "lead.attribution.referrer",
                "lead.attribution.utm_term",
                "lead.attribution.page_url"
            ]
        );
        assert!(errors[2].1.contains("http"), "{errors:?}");
        assert_eq!(attribution(json!({"utm_source": "  "})).0, None);
        assert_eq!(
            attribution(json!("google")).1,
            [("lead.attribution".into(), "must be an object".into())]
        );
    }

    #[test]
    fn consent_needs_its_text_and_a_boolean() {
        let mut errors = Vec::new();
        let given = validate_consent(
            Some(&json!({"text": "I agree to be contacted.", "granted": true})),
            &mut errors,
        );
        assert_eq!(
            given,
            Some(ConsentGiven {
                text: "I agree to be contacted.".into(),
                granted: true,
                ip: None
            })
        );
        let given = validate_consent(
            Some(&json!({"text": "", "granted": "yes", "at": "now"})),
            &mut errors,
        );
        assert_eq!(given, None);
        let fields: Vec<&str> = errors.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "lead.consent.at",
                "lead.consent.text",
                "lead.consent.granted"
            ]
        );
    }

    #[test]
    fn a_stored_consent_reads_back_as_it_was() {
        let at = DateTime::<Utc>::from_timestamp_millis(1_764_547_200_123).unwrap();
        let consent = Consent {
            text: "Yes".into(),
            granted: false,
            granted_at: at,
            ip: Some("203.0.113.9".into()),
        };
        let stored = consent.stored();
        assert!(stored.contains("\"granted_at\":\"2025-12-01T00:00:00.123Z\""));
        assert_eq!(Consent::from_stored(Some(&stored)), Some(consent));
    }
}
