//! Times as every answer writes them.

use chrono::{DateTime, Utc};

/// `t` as every answer writes a time: RFC 3339, UTC, milliseconds, `Z`
/// (`2025-12-01T00:00:00.123Z`).
pub fn shown(t: DateTime<Utc>) -> String {
    with_shown(t, str::to_owned)
}

/// Calls `then` with `t` as [`shown`] writes it, from a stack buffer where it can be
/// ([`ciq_store::utc`]). The text never holds a character JSON escapes.
pub(crate) fn with_shown<R>(t: DateTime<Utc>, then: impl FnOnce(&str) -> R) -> R {
    ciq_store::utc::with_text(t, ciq_store::utc::Places::Millis, then)
}

/// A time that serialises as [`shown`] writes it, without a `String` in between.
#[derive(Clone, Copy)]
pub(crate) struct Millis(pub DateTime<Utc>);

impl serde::Serialize for Millis {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        with_shown(self.0, |text| s.serialize_str(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_writes(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// A time is shown, serialised and written into an answer as chrono writes it
    /// (the digits themselves are `ciq_store::utc`'s, tested there across the years):
    /// an ordinary one, below a millisecond, a leap second, outside the four-digit years.
    #[test]
    fn a_time_is_shown_as_chrono_writes_it() {
        let mut times: Vec<DateTime<Utc>> =
            ["2025-12-01T00:00:00.123Z", "1999-12-31T23:59:59.999999999Z"]
                .iter()
                .map(|t| DateTime::parse_from_rfc3339(t).unwrap().to_utc())
                .collect();
        times.push(DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap());
        for (year, month, day) in [(10_000, 1, 1), (-1, 12, 31)] {
            let date = chrono::NaiveDate::from_ymd_opt(year, month, day).unwrap();
            times.push(date.and_hms_milli_opt(1, 2, 3, 456).unwrap().and_utc());
        }
        for t in times {
            assert_eq!(shown(t), chrono_writes(t), "{t:?}");
            let json = serde_json::to_string(&Millis(t)).unwrap();
            assert_eq!(json, format!("\"{}\"", chrono_writes(t)));
            let mut direct = b"[".to_vec();
            crate::lead::write_unescaped(&mut direct, &shown(t));
            assert_eq!(direct, format!("[{json}").as_bytes());
        }
    }
}
