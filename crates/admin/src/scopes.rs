//! What a key may do. Every key has at least one scope; a key made without naming
//! any, and every key made before scopes existed, has `leads:create` only.

use serde::Serialize;

/// One permission of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Create leads (create, batch, and the create half of upsert).
    LeadsCreate,
    /// Read leads (get one, list and page).
    LeadsRead,
    /// Change and erase leads (update, delete, the update half of upsert).
    LeadsWrite,
    /// Subscribe webhook endpoints through the API (with `leads:read`: an endpoint
    /// receives leads), list, change and delete them.
    WebhooksManage,
}

impl Scope {
    /// Every scope, in their canonical order.
    pub const ALL: [Scope; 4] = [
        Scope::LeadsCreate,
        Scope::LeadsRead,
        Scope::LeadsWrite,
        Scope::WebhooksManage,
    ];

    /// The name keys, documents and error messages use: `leads:create`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::LeadsCreate => "leads:create",
            Scope::LeadsRead => "leads:read",
            Scope::LeadsWrite => "leads:write",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }

    /// The scope named `name`, exactly.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
            format!("{name:?} is not a scope (scopes: {})", names.join(", "))
        })
    }
}

/// A set of scopes, cheap to copy and check on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Default for Scopes {
    /// `leads:create` only: what a key made without naming scopes may do.
    fn default() -> Self {
        Self::of(&[Scope::LeadsCreate])
    }
}

impl Scopes {
    /// Exactly `scopes` (the default when empty).
    pub fn of(scopes: &[Scope]) -> Self {
        if scopes.is_empty() {
            return Self::default();
        }
        Self(scopes.iter().fold(0, |bits, s| bits | s.bit()))
    }

    /// Whether `scope` is in the set.
    pub fn allows(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The scopes in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.allows(*s))
    }

    /// As stored: names separated by spaces, in canonical order.
    pub fn to_stored(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")
    }

    /// From the stored form; unknown names (none are written) are ignored, and a set
    /// left empty is the default.
    pub fn from_stored(stored: &str) -> Self {
        let scopes: Vec<Scope> = stored
            .split_whitespace()
            .filter_map(Scope::from_name)
            .collect();
        Self::of(&scopes)
    }

    /// The names, for listings.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_default_to_create() {
        let all = Scopes::of(&Scope::ALL);
        assert_eq!(
            all.to_stored(),
            "leads:create leads:read leads:write webhooks:manage"
        );
        assert_eq!(Scopes::from_stored(&all.to_stored()), all);
        assert_eq!(Scopes::from_stored(""), Scopes::default());
        assert_eq!(Scopes::of(&[]).names(), ["leads:create"]);
        let read = Scopes::of(&[Scope::LeadsRead]);
        assert!(read.allows(Scope::LeadsRead) && !read.allows(Scope::LeadsCreate));
        assert!(
            "leads:delete"
                .parse::<Scope>()
                .unwrap_err()
                .contains("leads:write")
        );
    }
}
