//! The lead as the domain hands it out: one shape, read from its row, that every
//! rendering of a lead starts from — the API object, the webhook payload, the Settings
//! pages and the CSV export.
//!
//! Its fields are written once, in [`lead_fields!`]: the [`Lead`] struct is made from
//! that list here, and ciq-api makes its document's object from the same list, so a new
//! field is the migration, the entity, this file and the rules.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use ciq_entity::lead::{self, LeadStatus};

use crate::money::Money;
use crate::rules::NewLead;

/// Who a lead is written for: the account and the key that authenticated the
/// request. It comes from the verified key, never from the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadOwner {
    /// The tenant.
    pub user_id: Uuid,
    /// The key that creates the lead; `None` when the owner imports it in Settings.
    pub api_key_id: Option<Uuid>,
}

/// A lead's id, its account's and its key's (for [`lead_fields!`]' callers).
pub type Id = Uuid;
/// A moment, in UTC (for [`lead_fields!`]' callers).
pub type Time = DateTime<Utc>;

/// Calls `$then! { … }` with every field of a stored lead, in the API's order: each
/// field's description (as the public document gives it), name and type
/// (`/// doc… name: Type,`). The list the [`Lead`] struct and ciq-api's lead object
/// are both made from.
#[macro_export]
macro_rules! lead_fields {
    ($then:ident) => {
        $then! {
            /// Lead id.
            id: $crate::lead::Id,
            /// The account the lead belongs to: the owner of the API key used.
            user_id: $crate::lead::Id,
            /// Lead's full name.
            name: String,
            /// Lead's email address.
            email: String,
            /// E.164 digits without +, or null.
            phone: Option<String>,
            /// Lead source.
            source: String,
            /// Industry/vertical.
            industry: String,
            /// Lead quality score (1-10), or null.
            score: Option<i32>,
            /// new, contacted, qualified or lost.
            status: $crate::LeadStatus,
            /// Estimated monthly revenue, or null.
            monthly_revenue: Option<$crate::Money>,
            /// Lead's budget, or null.
            budget: Option<$crate::Money>,
            /// Additional notes, or null.
            description: Option<String>,
            /// Your own id for the lead, unique in your account, or null.
            external_id: Option<String>,
            /// The key that created the lead; null for a lead its owner imported from a CSV
            /// file in Settings.
            api_key_id: Option<$crate::lead::Id>,
            /// When the lead was stored: RFC 3339, UTC, milliseconds, e.g. 2025-08-13T00:00:00.000Z.
            created_at: $crate::lead::Time,
            /// When the lead last changed (its creation time until then).
            updated_at: $crate::lead::Time,
            /// null for a normal lead; for a lead quarantined as spam, why (`honeypot`,
            /// `link_in_name`, `links_in_description`, `blocked_email`,
            /// `challenge_unverified`) and when. Create and batch answers always show null.
            spam: Option<$crate::Spam>,
            /// Where the lead came from (UTM parameters, ad click ids, the form's page and
            /// referrer), as sent when it was created; null when it came without.
            attribution: Option<$crate::Attribution>,
            /// What the visitor agreed to, as sent when the lead was created, with the
            /// gateway's `granted_at` and the visitor's `ip` (null unless a browser key
            /// sent it); null when it came without. Never changes.
            consent: Option<$crate::Consent>,
        }
    };
}

/// Makes [`Lead`] from [`lead_fields!`].
macro_rules! view {
    ($( $(#[doc = $doc:literal])* $field:ident : $ty:ty, )*) => {
        /// A stored lead, as the domain sees it, and its one serialised shape: serialised,
        /// it is the lead object of the API (field for field, in the API's order), which
        /// the webhook payload carries and the Settings pages and export show.
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
        pub struct Lead {
            $(
                $(#[doc = $doc])*
                #[serde(serialize_with = "shown")]
                pub $field: $ty,
            )*
        }

        impl Lead {
            /// The names of its fields, in the order it serialises them.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Room for one lead's JSON ([`Lead::write_json`]) without attribution or
            /// consent (about 550 bytes): what a buffer of leads reserves per lead, so
            /// it seldom grows (each growth copies what was written).
            pub const JSON_CAPACITY: usize = 768;

            /// Appends the lead's JSON object to `out`: byte for byte what `serde_json`
            /// writes for it (a test holds the two together), with each field's name
            /// written as the program was built with it rather than scanned for
            /// characters to escape once per lead (a page of 50 leads writes 950 names:
            /// 3 % of the gateway's CPU per page, perf 2026-12-07), and ids and times,
            /// which never need escaping, written without the scan too
            /// ([`Shown::write_json`]).
            pub fn write_json(&self, out: &mut Vec<u8>) {
                let start = out.len();
                $(
                    out.extend_from_slice(concat!(",\"", stringify!($field), "\":").as_bytes());
                    Shown::write_json(&self.$field, out);
                )*
                // The first name's comma opens the object.
                out[start] = b'{';
                out.push(b'}');
            }
        }
    };
}

lead_fields!(view);

/// How a field's value is written in the lead's serialised shape (times with
/// milliseconds and `Z`; everything else as serde writes it).
trait Shown {
    fn show<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;

    /// Appends the value as JSON to `out`, as [`Shown::show`] writes it with
    /// `serde_json` (by default, by doing so).
    fn write_json(&self, out: &mut Vec<u8>) {
        self.show(&mut serde_json::Serializer::new(out))
            .expect("a lead's field always serialises, and a Vec takes every write");
    }
}

/// [`Shown`], for `serialize_with`.
fn shown<T: Shown, S: serde::Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    value.show(s)
}

macro_rules! shown_as_serde {
    ($($ty:ty),*) => {$(
        impl Shown for $ty {
            fn show<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serde::Serialize::serialize(self, s)
            }
        }
    )*};
}
shown_as_serde!(
    String,
    i32,
    Money,
    crate::Spam,
    crate::Attribution,
    crate::Consent
);

/// Appends `text` as a JSON string to `out`, as serde writes it when it holds nothing
/// to escape (no `"`, `\\` or control character: the caller knows it cannot).
pub(crate) fn write_unescaped(out: &mut Vec<u8>, text: &str) {
    debug_assert!(!text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20));
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

impl Shown for LeadStatus {
    fn show<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(self, s)
    }

    /// Its name, lower-case letters: nothing to escape.
    fn write_json(&self, out: &mut Vec<u8>) {
        write_unescaped(out, self.as_str());
    }
}

impl Shown for Uuid {
    fn show<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(self, s)
    }

    /// Hyphenated hex digits: nothing to escape (150 ids a page went through serde's
    /// escaping scan: 9 % of a page's instructions, callgrind 2026-12-07).
    fn write_json(&self, out: &mut Vec<u8>) {
        write_unescaped(
            out,
            self.hyphenated().encode_lower(&mut Uuid::encode_buffer()),
        );
    }
}

impl Shown for DateTime<Utc> {
    fn show<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&crate::time::Millis(*self), s)
    }

    /// Digits and `-:.TZ` (and a sign beyond year 9999): nothing to escape.
    fn write_json(&self, out: &mut Vec<u8>) {
        crate::time::with_shown(*self, |text| write_unescaped(out, text));
    }
}

impl<T: Shown> Shown for Option<T> {
    fn show<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Some(value) => value.show(s),
            None => s.serialize_none(),
        }
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Some(value) => value.write_json(out),
            None => out.extend_from_slice(b"null"),
        }
    }
}

impl Lead {
    /// A lead of `owner`, made now from the reference's minimal body (name, email,
    /// source, industry; everything else empty): for examples and tests, which then
    /// change what they need (`Lead { score: Some(9), ..Lead::example(owner) }`).
    pub fn example(owner: LeadOwner) -> Self {
        let body = serde_json::json!({"lead": {
            "name": "Jane Doe", "email": "jane@example.com",
            "source": "Website", "industry": "Technology",
        }});
        let new = crate::rules::validate_submission(&body).expect("the example follows the rules");
        row_of(owner, new, ciq_entity::now()).into()
    }

    /// Each field's name and value as text, as the lead serialises them (numbers as
    /// the API writes them, `None` for null), in [`Lead::columns`]' order: what a
    /// rendering that shows every field (a page, an export) iterates, so a new field
    /// shows without being named there. Attribution and consent are spread into their
    /// own fields (`utm_source`, …, `consent_text`, …).
    pub fn texts(&self) -> Vec<(&'static str, Option<String>)> {
        let serde_json::Value::Object(mut shown) =
            serde_json::to_value(self).expect("a lead always serialises")
        else {
            unreachable!("a struct serialises as an object")
        };
        let text = |value: Option<serde_json::Value>| match value {
            Some(serde_json::Value::String(text)) => Some(text),
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(value.to_string()),
        };
        let mut texts = Vec::with_capacity(Self::columns().len());
        for &field in Self::FIELDS {
            let value = shown.remove(field);
            match spread(field) {
                Some(parts) => {
                    let mut object = match value {
                        Some(serde_json::Value::Object(object)) => object,
                        _ => serde_json::Map::new(),
                    };
                    for &(column, part) in parts {
                        texts.push((column, text(object.remove(part))));
                    }
                }
                None => texts.push((field, text(value))),
            }
        }
        texts
    }

    /// The names [`Lead::texts`] gives, in order: [`Lead::FIELDS`] with attribution and
    /// consent spread into their own fields (what an export's header names).
    pub fn columns() -> &'static [&'static str] {
        static COLUMNS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
            Lead::FIELDS
                .iter()
                .flat_map(|&field| match spread(field) {
                    Some(parts) => parts.iter().map(|(column, _)| *column).collect(),
                    None => vec![field],
                })
                .collect()
        });
        &COLUMNS
    }
}

/// Whether a stored row is quarantined as spam: it has both a reason and a time (what
/// [`Lead::from`] makes its `spam`).
pub(crate) fn is_quarantined(row: &lead::Model) -> bool {
    row.spam_reason.is_some() && row.spam_at.is_some()
}

impl From<lead::Model> for Lead {
    fn from(row: lead::Model) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            api_key_id: row.api_key_id,
            name: row.name,
            email: row.email,
            phone: row.phone,
            source: row.source,
            industry: row.industry,
            score: row.score,
            status: row.status,
            monthly_revenue: row.monthly_revenue_cents.map(|cents| Money { cents }),
            budget: row.budget_cents.map(|cents| Money { cents }),
            description: row.description,
            created_at: row.created_at,
            external_id: row.external_id,
            updated_at: row.updated_at.unwrap_or(row.created_at),
            // The rule `is_quarantined` states for a row.
            spam: match (row.spam_reason, row.spam_at) {
                (Some(reason), Some(at)) => Some(crate::Spam { reason, at }),
                _ => None,
            },
            attribution: crate::Attribution::from_stored(row.attribution.as_deref()),
            consent: crate::Consent::from_stored(row.consent.as_deref()),
        }
    }
}

/// The columns a nested field of the lead is spread into, and the part of the object
/// each one holds (`None`: the field is one column).
fn spread(field: &str) -> Option<&'static [(&'static str, &'static str)]> {
    static ATTRIBUTION: std::sync::LazyLock<Vec<(&'static str, &'static str)>> =
        std::sync::LazyLock::new(|| {
            crate::Attribution::FIELDS
                .iter()
                .map(|(field, _)| (*field, *field))
                .collect()
        });
    const CONSENT: [(&str, &str); 4] = [
        (crate::Consent::COLUMNS[0], "text"),
        (crate::Consent::COLUMNS[1], "granted"),
        (crate::Consent::COLUMNS[2], "granted_at"),
        (crate::Consent::COLUMNS[3], "ip"),
    ];
    match field {
        crate::attribution::ATTRIBUTION => Some(&ATTRIBUTION),
        crate::attribution::CONSENT => Some(&CONSENT),
        _ => None,
    }
}

/// The row of a new lead: a fresh UUIDv7, stored and last changed at `now`.
pub(crate) fn row_of(owner: LeadOwner, new: NewLead, now: DateTime<Utc>) -> lead::Model {
    lead::Model {
        id: Uuid::now_v7(),
        user_id: owner.user_id,
        api_key_id: owner.api_key_id,
        name: new.name,
        email: new.email,
        phone: new.phone,
        source: new.source,
        industry: new.industry,
        score: new.score,
        status: new.status,
        monthly_revenue_cents: new.monthly_revenue.map(|m| m.cents),
        budget_cents: new.budget.map(|m| m.cents),
        description: new.description,
        created_at: now,
        external_id: new.external_id,
        updated_at: Some(now),
        spam_reason: new.spam.map(|reason| reason.as_str().to_owned()),
        spam_at: new.spam.map(|_| now),
        attribution: new.attribution.as_ref().map(crate::Attribution::stored),
        consent: new
            .consent
            .map(|given| crate::Consent::received(given, now).stored()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lead_serialises_as_the_api_writes_it() {
        let at = DateTime::<Utc>::from_timestamp_millis(1_764_547_200_123).unwrap();
        let lead = Lead {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            name: "Jane Doe".into(),
            email: "jane@example.com".into(),
            phone: None,
            source: "API".into(),
            industry: "Technology".into(),
            score: Some(7),
            status: LeadStatus::Qualified,
            monthly_revenue: Some(Money { cents: 5_000_010 }),
            budget: Some(Money { cents: 1_000_000 }),
            description: None,
            external_id: Some("crm-1".into()),
            api_key_id: None,
            created_at: at,
            updated_at: at,
            spam: None,
            attribution: None,
            consent: None,
        };
        let json = serde_json::to_value(&lead).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "user_id",
                "name",
                "email",
                "phone",
                "source",
                "industry",
                "score",
                "status",
                "monthly_revenue",
                "budget",
                "description",
                "external_id",
                "api_key_id",
                "created_at",
                "updated_at",
                "spam",
                "attribution",
                "consent"
            ]
        );
        assert_eq!(json["status"], "qualified");
        assert_eq!(json["monthly_revenue"].to_string(), "50000.1");
        assert_eq!(json["budget"].to_string(), "10000");
        assert_eq!(json["created_at"], "2025-12-01T00:00:00.123Z");
        assert_eq!(json["phone"], serde_json::Value::Null);
    }

    /// `write_json` writes what serde writes for a lead, byte for byte: every field
    /// empty, every field set (a time in every nested object, text that must be
    /// escaped), and after other bytes in the buffer.
    #[test]
    fn a_lead_written_directly_is_what_serde_writes() {
        let owner = LeadOwner {
            user_id: Uuid::now_v7(),
            api_key_id: Some(Uuid::now_v7()),
        };
        let at = DateTime::<Utc>::from_timestamp_millis(1_764_547_200_123).unwrap();
        let bare = Lead {
            phone: None,
            description: None,
            api_key_id: None,
            ..Lead::example(owner)
        };
        let full = Lead {
            name: "Zoë \"Z\" O'Neil\\\u{7}".into(),
            phone: Some("15551234567".into()),
            score: Some(9),
            monthly_revenue: Some(Money { cents: 5_000_010 }),
            budget: Some(Money { cents: -1 }),
            description: Some("line\nbreak\ttab — ünïcode 🙂".into()),
            external_id: Some("crm-1".into()),
            spam: Some(crate::Spam {
                reason: "honeypot".into(),
                at,
            }),
            attribution: Some(crate::Attribution {
                utm_source: Some("news</letter>".into()),
                ..Default::default()
            }),
            consent: Some(crate::Consent {
                text: "Yes, \"email\" me".into(),
                granted: true,
                granted_at: at,
                ip: Some("203.0.113.9".into()),
            }),
            created_at: at,
            updated_at: at + chrono::TimeDelta::milliseconds(5),
            ..Lead::example(owner)
        };
        let every_status = LeadStatus::ALL.map(|status| Lead {
            status,
            ..bare.clone()
        });
        for lead in [bare, full].into_iter().chain(every_status) {
            let mut written = b"[1,".to_vec();
            lead.write_json(&mut written);
            let expected = format!("[1,{}", serde_json::to_string(&lead).unwrap());
            assert_eq!(String::from_utf8(written).unwrap(), expected);
        }
    }
}
