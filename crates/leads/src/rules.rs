//! The Field Reference of the external API, enforced.
//!
//! The body is checked by hand rather than by a derive so that *every* broken rule
//! is reported at once, each with its path (`lead.email`) and the rule in words, and
//! so that unknown fields are refused by name instead of silently dropped.

use serde_json::{Map, Value};

use ciq_entity::email::{MAX_EMAIL_LEN, is_valid_email};
use ciq_entity::lead::{self, LeadStatus};
use sea_orm::sea_query::{Expr, SimpleExpr};

use crate::attribution::{ATTRIBUTION, CONSENT, set_once, validate_attribution, validate_consent};
use crate::money::{Money, parse_money};

pub use crate::violation::Violation;

mod parsed;
pub use parsed::{CreateBody, Envelope, LeadList, LeadObject};

/// Longest `external_id`, in characters.
pub const MAX_EXTERNAL_ID_LEN: usize = 255;

/// The longest text each field takes, in characters: the validator and the
/// document both read this table (a field with no entry takes no text).
pub const MAX_LENGTHS: [(&str, usize); 7] = [
    ("name", MAX_NAME_LEN),
    ("email", MAX_EMAIL_LEN),
    ("phone", MAX_PHONE_INPUT_LEN),
    ("source", MAX_SOURCE_LEN),
    ("industry", MAX_INDUSTRY_LEN),
    ("description", MAX_DESCRIPTION_LEN),
    ("external_id", MAX_EXTERNAL_ID_LEN),
];

/// Longest phone as sent, separators included (the digits are checked after).
pub const MAX_PHONE_INPUT_LEN: usize = 32;

/// Longest `name`, in characters.
pub const MAX_NAME_LEN: usize = 200;
/// Longest `source`, in characters.
pub const MAX_SOURCE_LEN: usize = 100;
/// Longest `industry`, in characters.
pub const MAX_INDUSTRY_LEN: usize = 100;
/// Longest `description`, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 5000;
/// Fewest digits in a phone number.
pub const MIN_PHONE_DIGITS: usize = 8;
/// Most digits in a phone number (E.164).
pub const MAX_PHONE_DIGITS: usize = 15;
/// The phone rule as a regular expression (for the documents' `pattern`, which
/// anchors it and allows surrounding white space): an optional `+`, then
/// [`MIN_PHONE_DIGITS`] to [`MAX_PHONE_DIGITS`] ASCII digits not starting with 0, with
/// spaces, dashes, dots and parentheses anywhere among them.
pub fn phone_pattern() -> String {
    format!(
        r"\+?[ ().-]*[1-9](?:[ ().-]*[0-9]){{{},{}}}[ ().-]*",
        MIN_PHONE_DIGITS - 1,
        MAX_PHONE_DIGITS - 1
    )
}

/// Lowest and highest score.
pub const SCORE_RANGE: std::ops::RangeInclusive<i64> = 1..=10;

/// Calls `$then! { … }` with every field a client may send in `lead`, in the
/// reference's order: its description on create (as the public document gives it),
/// name, type as sent, and its description in an update
/// (`/// doc… name: Type => "update doc",`). ciq-api makes its document's create and
/// update objects from this list, and [`LEAD_FIELDS`] is made from it.
#[macro_export]
macro_rules! submitted_fields {
    ($then:ident) => {
        $then! {
            /// Lead's full name.
            name: String => "Lead's full name.",
            /// Lead's email address.
            email: String => "Lead's email address.",
            /// Recommended. E.164 format without + (e.g., 15551234567): 8 to 15 digits, not
            /// starting with 0. A leading +, spaces, dashes, dots and parentheses are removed
            /// first; the bare digits are stored and returned.
            phone: Option<String> => "E.164 digits (see create); null empties it.",
            /// Lead source (e.g., "Website", "API").
            source: String => "Lead source.",
            /// Industry/vertical.
            industry: String => "Industry/vertical.",
            /// Lead quality score (1-10), a whole number.
            score: Option<i32> => "Lead quality score (1-10); null empties it.",
            /// new, contacted, qualified, lost. Defaults to new.
            status: Option<$crate::LeadStatus> => "new, contacted, qualified, lost.",
            /// Estimated monthly revenue: non-negative, at most 2 decimal places, stored exactly.
            monthly_revenue: Option<$crate::Money> => "Estimated monthly revenue; null empties it.",
            /// Lead's budget: non-negative, at most 2 decimal places, stored exactly.
            budget: Option<$crate::Money> => "Lead's budget; null empties it.",
            /// Additional notes (newlines allowed).
            description: Option<String> => "Additional notes; null empties them.",
            /// Your own id for the lead (1 to 255 characters), unique in your account: a second
            /// lead with it is refused with 409 `duplicate_lead` naming the first.
            external_id: Option<String> =>
                "Your own id for the lead, unique in your account; null empties it.",
            /// Where the lead came from: UTM parameters, ad click ids, the form's page and
            /// its referrer (each optional; unknown fields refused). Recorded when the lead
            /// is created and never changed.
            attribution: Option<$crate::Attribution> =>
                "Not accepted: attribution is recorded when the lead is created (422).",
            /// What the visitor agreed to: the text the form showed and whether they
            /// ticked it. The gateway adds `granted_at` (its clock) and `ip` (the visitor's
            /// address, for a browser key). Recorded when the lead is created and never
            /// changed.
            consent: Option<$crate::ConsentGiven> =>
                "Not accepted: consent is recorded when the lead is created (422).",
        }
    };
}

/// Makes [`LEAD_FIELDS`] from [`submitted_fields!`].
macro_rules! field_names {
    ($( $(#[doc = $doc:literal])* $field:ident : $ty:ty => $changed:literal, )*) => {
        /// The fields of `lead`, in the reference's order.
        pub const LEAD_FIELDS: &[&str] = &[$(stringify!($field)),*];
    };
}

submitted_fields!(field_names);

/// A lead field's value typed as text (a form's input, a CSV cell) as the JSON the
/// rules read: a number for the score and the money fields when it reads as one (else
/// the text, which their rule then names), the status in lower case, text otherwise.
pub fn typed_value(field: &str, text: &str) -> Value {
    match field {
        "score" | "monthly_revenue" | "budget" => {
            serde_json::from_str::<serde_json::Number>(text.trim())
                .map(Value::Number)
                .unwrap_or_else(|_| Value::String(text.to_owned()))
        }
        "status" => Value::String(text.to_lowercase()),
        _ => Value::String(text.to_owned()),
    }
}

/// A lead that passed every rule, normalised (trimmed strings, bare phone digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLead {
    /// Full name, trimmed, 1–200 characters.
    pub name: String,
    /// Email address, trimmed, as the rule accepts it.
    pub email: String,
    /// E.164 digits without `+` (separators removed).
    pub phone: Option<String>,
    /// Where the lead came from, trimmed, 1–100 characters.
    pub source: String,
    /// Industry or vertical, trimmed, 1–100 characters.
    pub industry: String,
    /// Score 1–10.
    pub score: Option<i32>,
    /// Status (`new` when the body has none).
    pub status: LeadStatus,
    /// Monthly revenue, exact to the cent.
    pub monthly_revenue: Option<Money>,
    /// Budget, exact to the cent.
    pub budget: Option<Money>,
    /// Notes, newlines kept.
    pub description: Option<String>,
    /// The client's own id for the lead, unique per account.
    pub external_id: Option<String>,
    /// Why the lead is to be stored as spam (set by [`crate::spam::judge`]'s caller for a
    /// browser submission); `None` for a normal lead.
    pub spam: Option<crate::SpamReason>,
    /// First-touch attribution, if the body had any.
    pub attribution: Option<crate::Attribution>,
    /// Consent as submitted (its `ip` set by the surface for a browser submission).
    pub consent: Option<crate::ConsentGiven>,
}

/// `{"lead": lead}`, the body the rules read, with `lead` moved in (`json!` would
/// serialise it into a copy).
pub fn lead_body(lead: Value) -> Value {
    Value::Object(serde_json::Map::from_iter([("lead".to_owned(), lead)]))
}

/// Checks a parsed body `{"lead": {...}}` against every rule; returns the lead or
/// all broken rules.
pub fn validate_submission(body: &Value) -> Result<NewLead, Vec<Violation>> {
    validate_lead_body(body, false).map(|(lead, _)| lead)
}

/// [`validate_submission`] for the `lead` object itself (a batch's item): its field
/// paths still read `lead.…`.
pub fn validate_lead(lead: &Value) -> Result<NewLead, Vec<Violation>> {
    let mut errors = Vec::new();
    let members = LeadIn::of(Some(lead)).members(&mut errors)?;
    validate_members(&members, errors)
}

/// [`validate_submission`] for a create, whose body may also carry a top-level
/// `honeypot` (a web form's hidden input): the lead and the honeypot's value (`None`
/// when absent or null). A honeypot that is not a string breaks a rule like any field.
pub fn validate_create(body: &Value) -> Result<(NewLead, Option<String>), Vec<Violation>> {
    validate_lead_body(body, true)
}

/// The top-level `honeypot` of a create or batch body, given its value (`None` when
/// absent): `None` when absent or null, its text when a string; anything else is a
/// broken rule pushed on `errors`.
pub fn honeypot_of(value: Option<&Value>, errors: &mut Vec<Violation>) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            errors.push(Violation::new(
                HONEYPOT,
                "must be a string (the value of the form's hidden honeypot input)",
            ));
            None
        }
    }
}

/// The name of the top-level honeypot field of create and batch bodies.
pub const HONEYPOT: &str = "honeypot";

/// The refusal of a body that is not a JSON object.
fn not_an_object() -> Vec<Violation> {
    vec![Violation::new(
        "body",
        "must be a JSON object of the form {\"lead\": {...}}",
    )]
}

/// The refusal of each top-level member beside `lead` (and a create's honeypot).
fn beside_lead<'k>(keys: impl Iterator<Item = &'k str>, allowed: &[&str]) -> Vec<Violation> {
    keys.filter(|k| !allowed.contains(k))
        .map(|key| {
            Violation::new(
                key,
                "is not a known field; the lead's fields go inside \"lead\"",
            )
        })
        .collect()
}

fn validate_lead_body(
    body: &Value,
    honeypot_allowed: bool,
) -> Result<(NewLead, Option<String>), Vec<Violation>> {
    let Value::Object(top) = body else {
        return Err(not_an_object());
    };
    let allowed: &[&str] = if honeypot_allowed {
        &["lead", HONEYPOT]
    } else {
        &["lead"]
    };
    let errors = beside_lead(top.keys().map(String::as_str), allowed);
    let honeypot = honeypot_allowed.then(|| top.get(HONEYPOT));
    validate_wrapped(LeadIn::of(top.get("lead")), honeypot, errors)
}

/// Every rule of a body around a lead, `errors` holding what the body itself broke so
/// far: the lead's, and the honeypot's when the body may carry one (`Some`, its value
/// if present).
fn validate_wrapped(
    lead: LeadIn<'_>,
    honeypot: Option<Option<&Value>>,
    mut errors: Vec<Violation>,
) -> Result<(NewLead, Option<String>), Vec<Violation>> {
    let members = lead.members(&mut errors)?;
    let trap = honeypot.and_then(|value| honeypot_of(value, &mut errors));
    validate_members(&members, errors).map(|lead| (lead, trap))
}

/// What a body's `lead` member holds, as the rules read it.
enum LeadIn<'a> {
    /// Absent or `null`.
    Missing,
    /// Not an object.
    Other,
    /// An object's members.
    Members(LeadMembers<'a>),
}

impl<'a> LeadIn<'a> {
    fn of(value: Option<&'a Value>) -> Self {
        match value {
            None | Some(Value::Null) => LeadIn::Missing,
            Some(Value::Object(lead)) => LeadIn::Members(LeadMembers::of(lead)),
            Some(_) => LeadIn::Other,
        }
    }

    /// The members, or every rule broken so far with the `lead` member's own first.
    fn members(self, errors: &mut Vec<Violation>) -> Result<LeadMembers<'a>, Vec<Violation>> {
        let rule = match self {
            LeadIn::Members(members) => return Ok(members),
            LeadIn::Missing => "is required",
            LeadIn::Other => "must be an object",
        };
        errors.insert(0, Violation::new("lead", rule));
        Err(std::mem::take(errors))
    }
}

/// The members of a `lead` object found by name without hashing: a slot per field of
/// [`LEAD_FIELDS`] (`null` kept: an update reads it as "empty this") and the names of
/// the members that are no field, in the order sent.
struct LeadMembers<'a> {
    known: [Option<&'a Value>; LEAD_FIELDS.len()],
    unknown: Vec<&'a str>,
}

impl<'a> LeadMembers<'a> {
    fn of(lead: &'a Map<String, Value>) -> Self {
        let mut members = LeadMembers {
            known: [None; LEAD_FIELDS.len()],
            unknown: Vec::new(),
        };
        for (name, value) in lead {
            match slot(name) {
                Some(at) => members.known[at] = Some(value),
                None => members.unknown.push(name),
            }
        }
        members
    }

    /// The member `field` (one of [`LEAD_FIELDS`]), `null` included.
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.known[slot(field).expect("a lead field")]
    }

    fn contains(&self, field: &str) -> bool {
        self.get(field).is_some()
    }
}

/// Where `name` sits in [`LEAD_FIELDS`].
fn slot(name: &str) -> Option<usize> {
    LEAD_FIELDS.iter().position(|field| *field == name)
}

/// Every rule of a create on the lead's members, `errors` holding what the body around
/// them broke.
fn validate_members(
    lead: &LeadMembers<'_>,
    mut errors: Vec<Violation>,
) -> Result<NewLead, Vec<Violation>> {
    let mut fields = Fields {
        lead,
        errors: &mut errors,
    };
    let name = fields.required_text("name", MAX_NAME_LEN, false);
    let email = fields.required_text("email", MAX_EMAIL_LEN, false);
    let email = email.filter(|e| {
        let ok = is_valid_email(e);
        if !ok {
            fields.fail("email", "must be a valid email address");
        }
        ok
    });
    let phone = fields.phone();
    let source = fields.required_text("source", MAX_SOURCE_LEN, false);
    let industry = fields.required_text("industry", MAX_INDUSTRY_LEN, false);
    let score = fields.score();
    let status = fields.status();
    let monthly_revenue = fields.money("monthly_revenue");
    let budget = fields.money("budget");
    let description = fields.optional_text("description", MAX_DESCRIPTION_LEN, true);
    let external_id = fields.optional_text("external_id", MAX_EXTERNAL_ID_LEN, false);
    let attribution = validate_attribution(lead.get(ATTRIBUTION), fields.errors);
    let consent = validate_consent(lead.get(CONSENT), fields.errors);
    unknown_fields(lead, &mut errors);
    match (name, email, source, industry) {
        (Some(name), Some(email), Some(source), Some(industry)) if errors.is_empty() => {
            Ok(NewLead {
                name,
                email,
                phone,
                source,
                industry,
                score,
                status,
                monthly_revenue,
                budget,
                description,
                external_id,
                spam: None,
                attribution,
                consent,
            })
        }
        _ => Err(errors),
    }
}

fn unknown_fields(lead: &LeadMembers<'_>, errors: &mut Vec<Violation>) {
    for key in &lead.unknown {
        errors.push(Violation::new(
            format!("lead.{key}"),
            format!("is not a known field (known: {})", LEAD_FIELDS.join(", ")),
        ));
    }
}

/// What an update does to one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Not in the update: the field keeps its value.
    Keep,
    /// `null` (or an empty string): an optional field is emptied.
    Clear,
    /// A new value.
    Set(T),
}

impl Change<Money> {
    /// The change in whole cents, as stored.
    pub fn map_cents(self) -> Change<i64> {
        match self {
            Change::Keep => Change::Keep,
            Change::Clear => Change::Clear,
            Change::Set(money) => Change::Set(money.cents),
        }
    }
}

impl<T> Change<T> {
    fn from_option(value: Option<T>, cleared: bool) -> Self {
        match (value, cleared) {
            (Some(value), _) => Change::Set(value),
            (None, true) => Change::Clear,
            (None, false) => Change::Keep,
        }
    }
}

/// An update that passed every rule: the fields it carries, each checked as on create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadPatch {
    /// A new name (it cannot be emptied), or `None`: kept.
    pub name: Option<String>,
    /// A new email (it cannot be emptied), or `None`: kept.
    pub email: Option<String>,
    /// A new phone (digits), emptied, or kept.
    pub phone: Change<String>,
    /// A new source (it cannot be emptied), or `None`: kept.
    pub source: Option<String>,
    /// A new industry (it cannot be emptied), or `None`: kept.
    pub industry: Option<String>,
    /// A new score, emptied, or kept.
    pub score: Change<i32>,
    /// A new status (it cannot be emptied), or `None`: kept.
    pub status: Option<LeadStatus>,
    /// A new monthly revenue, emptied, or kept.
    pub monthly_revenue: Change<Money>,
    /// A new budget, emptied, or kept.
    pub budget: Change<Money>,
    /// New notes, emptied, or kept.
    pub description: Change<String>,
    /// A new external id (refused when another lead of the account has it), emptied,
    /// or kept.
    pub external_id: Change<String>,
    /// A field the body carries that only a create takes (an upsert's `attribution` or
    /// `consent`): the upsert is refused with it when the lead exists. Always `None`
    /// from [`validate_patch`], which refuses such a field itself.
    pub creates_only: Option<&'static str>,
}

impl LeadPatch {
    /// The columns the patch writes and their new values (empty: it carries no field).
    pub fn columns(self) -> Vec<(lead::Column, SimpleExpr)> {
        fn change<T: Into<sea_orm::Value>>(change: Change<T>) -> Option<Option<T>> {
            match change {
                Change::Keep => None,
                Change::Clear => Some(None),
                Change::Set(value) => Some(Some(value)),
            }
        }
        let mut columns: Vec<(lead::Column, SimpleExpr)> = Vec::new();
        let mut set = |column: lead::Column, value: SimpleExpr| columns.push((column, value));
        if let Some(v) = self.name {
            set(lead::Column::Name, Expr::value(v));
        }
        if let Some(v) = self.email {
            set(lead::Column::Email, Expr::value(v));
        }
        if let Some(v) = self.source {
            set(lead::Column::Source, Expr::value(v));
        }
        if let Some(v) = self.industry {
            set(lead::Column::Industry, Expr::value(v));
        }
        if let Some(v) = self.status {
            set(lead::Column::Status, Expr::value(v.as_str()));
        }
        if let Some(v) = change(self.phone) {
            set(lead::Column::Phone, Expr::value(v));
        }
        if let Some(v) = change(self.score) {
            set(lead::Column::Score, Expr::value(v));
        }
        if let Some(v) = change(self.monthly_revenue.map_cents()) {
            set(lead::Column::MonthlyRevenueCents, Expr::value(v));
        }
        if let Some(v) = change(self.budget.map_cents()) {
            set(lead::Column::BudgetCents, Expr::value(v));
        }
        if let Some(v) = change(self.description) {
            set(lead::Column::Description, Expr::value(v));
        }
        if let Some(v) = change(self.external_id) {
            set(lead::Column::ExternalId, Expr::value(v));
        }
        columns
    }
}

/// Checks an update `{"lead": {...some fields}}`: the fields given follow the create
/// rules, `null` empties an optional field, required fields (and `status`, which always
/// has a value) cannot be emptied, attribution and consent (set once, by the create)
/// and unknown fields are refused — every broken rule at once.
pub fn validate_patch(body: &Value) -> Result<LeadPatch, Vec<Violation>> {
    let mut errors = Vec::new();
    if let Some(lead) = body.get("lead").and_then(Value::as_object) {
        for field in [ATTRIBUTION, CONSENT]
            .into_iter()
            .filter(|f| lead.contains_key(*f))
        {
            errors.push(set_once(field));
        }
    }
    patch_of(body, errors)
}

/// [`validate_patch`] for an upsert, which creates the lead when none has its
/// `external_id`: attribution and consent are checked by the create rules (they are
/// left to [`validate_submission`]), and the patch names the first of them the body
/// carries in [`LeadPatch::creates_only`].
pub fn validate_upsert_patch(body: &Value) -> Result<LeadPatch, Vec<Violation>> {
    let Some(lead) = body.get("lead").and_then(Value::as_object) else {
        return patch_of(body, Vec::new());
    };
    let creates_only = [ATTRIBUTION, CONSENT]
        .into_iter()
        .find(|f| lead.get(*f).is_some_and(|v| !v.is_null()));
    let mut rest = lead.clone();
    rest.remove(ATTRIBUTION);
    rest.remove(CONSENT);
    let mut body = body.clone();
    body["lead"] = Value::Object(rest);
    patch_of(&body, Vec::new()).map(|patch| LeadPatch {
        creates_only,
        ..patch
    })
}

fn patch_of(body: &Value, mut errors: Vec<Violation>) -> Result<LeadPatch, Vec<Violation>> {
    let Value::Object(top) = body else {
        return Err(not_an_object());
    };
    errors.extend(beside_lead(top.keys().map(String::as_str), &["lead"]));
    let lead = &LeadIn::of(top.get("lead")).members(&mut errors)?;
    // Present, and null or blank.
    let cleared = |field: &str| {
        lead.get(field)
            .is_some_and(|v| v.is_null() || v.as_str().is_some_and(|t| t.trim().is_empty()))
    };
    let mut fields = Fields {
        lead,
        errors: &mut errors,
    };
    let required = |fields: &mut Fields<'_, '_>, field: &str, max: usize| {
        if !fields.lead.contains(field) {
            return None;
        }
        if cleared(field) {
            fields.fail(field, "is required and cannot be cleared");
            return None;
        }
        fields.required_text(field, max, false)
    };
    let name = required(&mut fields, "name", MAX_NAME_LEN);
    let email = required(&mut fields, "email", MAX_EMAIL_LEN).filter(|e| {
        let ok = is_valid_email(e);
        if !ok {
            fields.fail("email", "must be a valid email address");
        }
        ok
    });
    let source = required(&mut fields, "source", MAX_SOURCE_LEN);
    let industry = required(&mut fields, "industry", MAX_INDUSTRY_LEN);
    let status = if !fields.lead.contains("status") {
        None
    } else if cleared("status") {
        fields.fail(
            "status",
            "cannot be cleared; set one of new, contacted, qualified, lost",
        );
        None
    } else {
        Some(fields.status())
    };
    let phone = Change::from_option(fields.phone(), cleared("phone"));
    let score = Change::from_option(fields.score(), cleared("score"));
    let monthly_revenue =
        Change::from_option(fields.money("monthly_revenue"), cleared("monthly_revenue"));
    let budget = Change::from_option(fields.money("budget"), cleared("budget"));
    let description = Change::from_option(
        fields.optional_text("description", MAX_DESCRIPTION_LEN, true),
        cleared("description"),
    );
    let external_id = Change::from_option(
        fields.optional_text("external_id", MAX_EXTERNAL_ID_LEN, false),
        cleared("external_id"),
    );
    unknown_fields(lead, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(LeadPatch {
        name,
        email,
        phone,
        source,
        industry,
        score,
        status,
        monthly_revenue,
        budget,
        description,
        external_id,
        creates_only: None,
    })
}

struct Fields<'a, 'v> {
    lead: &'a LeadMembers<'v>,
    errors: &'a mut Vec<Violation>,
}

impl<'v> Fields<'_, 'v> {
    fn fail(&mut self, field: &str, rule: impl Into<String>) {
        self.errors
            .push(Violation::new(format!("lead.{field}"), rule));
    }

    /// The value, with JSON `null` treated as absent.
    fn get(&self, field: &str) -> Option<&'v Value> {
        self.lead.get(field).filter(|v| !v.is_null())
    }

    fn required_text(&mut self, field: &str, max: usize, multiline: bool) -> Option<String> {
        if self.get(field).is_none() {
            self.fail(field, "is required");
            return None;
        }
        let reported = self.errors.len();
        let text = self.optional_text(field, max, multiline);
        if text.is_none() && self.errors.len() == reported {
            // Present, a string, and blank: the one case optional_text lets pass.
            self.fail(field, "must not be empty");
        }
        text
    }

    /// A trimmed string; empty or whitespace-only is absent (web forms send "").
    fn optional_text(&mut self, field: &str, max: usize, multiline: bool) -> Option<String> {
        let value = self.get(field)?;
        let Some(text) = value.as_str() else {
            self.fail(field, "must be a string");
            return None;
        };
        // The length as sent (what the documents' maxLength states), blank or not.
        if text.chars().count() > max {
            self.fail(field, format!("must be at most {max} characters"));
            return None;
        }
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let allowed_control = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
        if text.chars().any(|c| c.is_control() && !allowed_control(c)) {
            self.fail(field, "must not contain control characters");
            return None;
        }
        Some(text.to_owned())
    }

    fn phone(&mut self) -> Option<String> {
        let value = self.get("phone")?;
        let Some(given) = value.as_str() else {
            self.fail("phone", "must be a string");
            return None;
        };
        // The length as sent (what the documents' maxLength states), blank or not.
        if given.chars().count() > MAX_PHONE_INPUT_LEN {
            self.fail("phone", phone_rule());
            return None;
        }
        let raw = given.trim();
        if raw.is_empty() {
            return None;
        }
        let body = raw.strip_prefix('+').unwrap_or(raw);
        // Sized at once: collected from a filter, it would grow twice on the way.
        let mut digits = String::with_capacity(body.len());
        digits.extend(
            body.chars()
                .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')),
        );
        let ok = (MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Some(digits)
        } else {
            self.fail("phone", phone_rule());
            None
        }
    }

    fn score(&mut self) -> Option<i32> {
        let value = self.get("score")?;
        let whole = match value {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1e9)
                    .map(|f| f as i64)
            }),
            _ => None,
        };
        match whole.filter(|s| SCORE_RANGE.contains(s)) {
            Some(score) => Some(score as i32),
            None => {
                self.fail("score", "must be a whole number from 1 to 10");
                None
            }
        }
    }

    fn status(&mut self) -> LeadStatus {
        let Some(value) = self.get("status") else {
            return LeadStatus::default();
        };
        match value.as_str().and_then(LeadStatus::from_name) {
            Some(status) => status,
            None => {
                let names: Vec<&str> = LeadStatus::ALL.iter().map(|s| s.as_str()).collect();
                self.fail("status", format!("must be one of {}", names.join(", ")));
                LeadStatus::default()
            }
        }
    }

    fn money(&mut self, field: &str) -> Option<Money> {
        let value = self.get(field)?;
        match parse_money(value) {
            Ok(money) => Some(money),
            Err(rule) => {
                self.fail(field, rule);
                None
            }
        }
    }
}

fn phone_rule() -> String {
    format!(
        "must be {MIN_PHONE_DIGITS} to {MAX_PHONE_DIGITS} digits in E.164 format without + \
         (e.g. 15551234567); spaces, dashes, dots and parentheses are removed"
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors(body: Value) -> Vec<(String, String)> {
        validate_submission(&body)
            .expect_err("should fail")
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    fn fields_of(body: Value) -> Vec<String> {
        errors(body).into_iter().map(|(f, _)| f).collect()
    }

    fn minimal() -> Value {
        json!({"lead": {"name": "Jane Doe", "email": "jane@example.com", "source": "API", "industry": "Technology"}})
    }

    fn with(field: &str, value: Value) -> Value {
        let mut body = minimal();
        body["lead"][field] = value;
        body
    }

    #[test]
    fn the_reference_request_body_is_accepted() {
        let lead = validate_submission(&json!({"lead": {
            "name": "Jane Doe", "email": "jane@example.com", "phone": "15551234567",
            "source": "Website Form", "industry": "Technology", "score": 7,
            "status": "contacted", "monthly_revenue": 50000, "budget": 10000,
            "description": "Interested in AI calling"}}))
        .unwrap();
        assert_eq!(lead.status, LeadStatus::Contacted);
        assert_eq!(lead.score, Some(7));
        assert_eq!(lead.monthly_revenue, Some(Money { cents: 5_000_000 }));
        assert_eq!(lead.phone.as_deref(), Some("15551234567"));
    }

    #[test]
    fn status_defaults_to_new() {
        assert_eq!(
            validate_submission(&minimal()).unwrap().status,
            LeadStatus::New
        );
    }

    #[test]
    fn every_missing_required_field_is_reported_at_once() {
        assert_eq!(
            fields_of(json!({"lead": {}})),
            ["lead.name", "lead.email", "lead.source", "lead.industry"]
        );
    }

    #[test]
    fn null_and_blank_required_fields_are_refused() {
        assert_eq!(
            errors(with("name", Value::Null)),
            [("lead.name".into(), "is required".into())]
        );
        assert_eq!(
            errors(with("name", json!("   "))),
            [("lead.name".into(), "must not be empty".into())]
        );
        assert_eq!(
            errors(with("source", json!(5))),
            [("lead.source".into(), "must be a string".into())]
        );
    }

    #[test]
    fn strings_have_length_limits() {
        assert_eq!(
            fields_of(with("name", json!("x".repeat(201)))),
            ["lead.name"]
        );
        assert!(validate_submission(&with("name", json!("é".repeat(200)))).is_ok());
        assert_eq!(
            fields_of(with("industry", json!("x".repeat(101)))),
            ["lead.industry"]
        );
        assert_eq!(
            fields_of(with("description", json!("x".repeat(5001)))),
            ["lead.description"]
        );
    }

    #[test]
    fn control_characters_are_refused_except_newlines_in_description() {
        assert_eq!(
            fields_of(with("name", json!("Jane\u{0}Doe"))),
            ["lead.name"]
        );
        assert!(validate_submission(&with("description", json!("line 1\nline 2"))).is_ok());
    }

    #[test]
    fn email_must_be_valid() {
        assert_eq!(
            errors(with("email", json!("jane@"))),
            [("lead.email".into(), "must be a valid email address".into())]
        );
    }

    #[test]
    fn phone_is_normalised_to_bare_digits() {
        for input in ["+1 (555) 123-4567", "1.555.123.4567", "15551234567"] {
            let lead = validate_submission(&with("phone", json!(input))).unwrap();
            assert_eq!(lead.phone.as_deref(), Some("15551234567"), "{input}");
        }
        assert_eq!(
            validate_submission(&with("phone", json!("")))
                .unwrap()
                .phone,
            None
        );
    }

    #[test]
    fn phone_rules_are_enforced() {
        for bad in [
            "1234567",
            "1234567890123456",
            "1555abc4567",
            "0155512345",
            "1+5551234567",
        ] {
            assert_eq!(
                fields_of(with("phone", json!(bad))),
                ["lead.phone"],
                "{bad}"
            );
        }
        assert_eq!(
            errors(with("phone", json!(15551234567u64))),
            [("lead.phone".into(), "must be a string".into())]
        );
        assert_eq!(
            fields_of(with("phone", json!("1".repeat(40)))),
            ["lead.phone"]
        );
    }

    #[test]
    fn score_is_a_whole_number_from_1_to_10() {
        for good in [json!(1), json!(10), json!(7.0)] {
            assert!(
                validate_submission(&with("score", good.clone())).is_ok(),
                "{good}"
            );
        }
        for bad in [json!(0), json!(11), json!(7.5), json!("7"), json!(-3)] {
            assert_eq!(
                fields_of(with("score", bad.clone())),
                ["lead.score"],
                "{bad}"
            );
        }
    }

    #[test]
    fn status_must_be_one_of_the_four() {
        for good in LeadStatus::ALL {
            assert_eq!(
                validate_submission(&with("status", json!(good.as_str())))
                    .unwrap()
                    .status,
                good
            );
        }
        assert_eq!(
            errors(with("status", json!("won"))),
            [(
                "lead.status".into(),
                "must be one of new, contacted, qualified, lost".into()
            )]
        );
    }

    #[test]
    fn money_fields_follow_the_money_rules() {
        assert_eq!(
            validate_submission(&with("budget", json!(50000.10)))
                .unwrap()
                .budget,
            Some(Money { cents: 5_000_010 })
        );
        assert_eq!(
            fields_of(with("monthly_revenue", json!(-5))),
            ["lead.monthly_revenue"]
        );
        assert_eq!(fields_of(with("budget", json!("10000"))), ["lead.budget"]);
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        assert_eq!(fields_of(with("company", json!("Acme"))), ["lead.company"]);
        let mut body = minimal();
        body["extra"] = json!(1);
        assert_eq!(fields_of(body), ["extra"]);
    }

    #[test]
    fn a_body_without_the_lead_wrapper_says_so() {
        let fields = fields_of(json!({"name": "Jane", "email": "jane@example.com"}));
        assert_eq!(fields, ["lead", "name", "email"]);
        assert_eq!(fields_of(json!({"lead": "Jane"})), ["lead"]);
        assert_eq!(fields_of(json!([1, 2])), ["body"]);
    }

    #[test]
    fn many_broken_rules_are_all_reported() {
        let fields = fields_of(json!({"lead": {
            "name": "", "email": "nope", "phone": "12", "source": "API",
            "industry": "Tech", "score": 11, "status": "won", "budget": -1, "x": 1}}));
        assert_eq!(
            fields,
            [
                "lead.name",
                "lead.email",
                "lead.phone",
                "lead.score",
                "lead.status",
                "lead.budget",
                "lead.x"
            ]
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,300}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("name".to_owned()),
                        Just("email".to_owned()),
                        Just("phone".to_owned()),
                        Just("source".to_owned()),
                        Just("industry".to_owned()),
                        Just("score".to_owned()),
                        Just("status".to_owned()),
                        Just("monthly_revenue".to_owned()),
                        Just("budget".to_owned()),
                        Just("description".to_owned()),
                        "[a-z]{1,8}",
                    ],
                    inner,
                    0..8,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any JSON at all, as the lead or as the whole body: the validator answers
        /// without panicking; when it accepts, every rule holds for what it returns,
        /// and when it refuses, every problem names a field under `lead.` (or the
        /// body's own keys) with a rule.
        #[test]
        fn any_json_gets_an_answer_and_accepted_leads_obey_every_rule(lead in any_json(), wrap in any::<bool>()) {
            let body = if wrap { json!({ "lead": lead }) } else { lead };
            match validate_submission(&body) {
                Ok(l) => {
                    prop_assert!(!l.name.is_empty() && l.name.chars().count() <= MAX_NAME_LEN);
                    prop_assert!(is_valid_email(&l.email));
                    prop_assert!(!l.source.is_empty() && !l.industry.is_empty());
                    prop_assert!(l.score.is_none_or(|s| (1..=10).contains(&s)));
                    prop_assert!(l.phone.as_ref().is_none_or(|p| (MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())));
                    prop_assert!(l.monthly_revenue.is_none_or(|m| (0..=crate::money::MAX_CENTS).contains(&m.cents)));
                }
                Err(errors) => {
                    prop_assert!(!errors.is_empty());
                    for e in errors {
                        prop_assert!(!e.field.is_empty() && !e.message.is_empty());
                    }
                }
            }
        }
    }
}
