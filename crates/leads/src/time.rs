//! Times as every answer writes them.

use chrono::{DateTime, Utc};

/// `t` as every answer writes a time: RFC 3339, UTC, milliseconds, `Z`
/// (`2025-12-01T00:00:00.123Z`).
pub fn shown(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
