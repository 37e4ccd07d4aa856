//! A broken rule, as every validator of the crate reports it.

/// One broken rule: the field's path in the body (`lead.email`) and the rule in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Path of the offending field.
    pub field: String,
    /// The rule it broke.
    pub message: String,
}

impl Violation {
    /// A broken rule for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
