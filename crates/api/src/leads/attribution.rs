//! The document's attribution and consent objects, made from the domain's lists.

use poem_openapi::Object;

use ciq_http::Timestamp;

use super::DocumentField;

/// Makes [`AttributionFields`] from [`ciq_leads::attribution_fields!`].
macro_rules! attribution_object {
    ($( $(#[doc = $doc:literal])* $field:ident : $max:expr, )*) => {
        /// Where a lead came from, as its web form saw it: every field optional, unknown
        /// fields refused. UTM values and click ids take up to 255 characters,
        /// `page_url` and `referrer` are absolute http(s) URLs of up to 2048 (the embed
        /// script fills all of it from the page). Recorded when the lead is created,
        /// never changed.
        #[derive(Debug, Clone, Object)]
        #[oai(deny_unknown_fields)]
        pub struct AttributionFields {
            $( $(#[doc = $doc])* pub $field: Option<String>, )*
        }

        impl From<ciq_leads::Attribution> for AttributionFields {
            fn from(a: ciq_leads::Attribution) -> Self {
                Self { $( $field: a.$field, )* }
            }
        }
    };
}

ciq_leads::attribution_fields!(attribution_object);

impl DocumentField for ciq_leads::Attribution {
    // Boxed: most leads have none, and the answers that carry a lead stay small.
    type Shown = Box<AttributionFields>;
    type Changed = Option<Box<AttributionFields>>;
    fn shown(self) -> Box<AttributionFields> {
        Box::new(self.into())
    }
}

/// Consent as a form submits it: the words the visitor saw beside the checkbox and
/// whether they ticked it. The gateway records when it received it and, for a browser
/// key, the visitor's address.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ConsentInput {
    /// The consent text as the form showed it (one line, 1 to 2000 characters).
    pub text: String,
    /// `true` when the visitor gave consent, `false` when they did not.
    pub granted: bool,
}

impl DocumentField for ciq_leads::ConsentGiven {
    type Shown = Box<ConsentInput>;
    type Changed = Option<Box<ConsentInput>>;
    fn shown(self) -> Box<ConsentInput> {
        Box::new(ConsentInput {
            text: self.text,
            granted: self.granted,
        })
    }
}

/// A lead's consent record, as stored when the lead was created; never changes.
#[derive(Debug, Clone, Object)]
pub struct ConsentRecord {
    /// The consent text as the form showed it.
    pub text: String,
    /// Whether the visitor gave consent.
    pub granted: bool,
    /// When the gateway received the lead (its clock, not the visitor's).
    pub granted_at: Timestamp,
    /// The visitor's address when a browser key sent the lead; null for every other
    /// create (server keys, imports).
    pub ip: Option<String>,
}

impl DocumentField for ciq_leads::Consent {
    type Shown = Box<ConsentRecord>;
    type Changed = Option<Box<ConsentRecord>>;
    fn shown(self) -> Box<ConsentRecord> {
        Box::new(ConsentRecord {
            text: self.text,
            granted: self.granted,
            granted_at: self.granted_at.into(),
            ip: self.ip,
        })
    }
}
