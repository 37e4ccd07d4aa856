//! Times as every answer writes them.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// `t` as every answer writes a time: RFC 3339, UTC, milliseconds, `Z`
/// (`2025-12-01T00:00:00.123Z`).
pub fn shown(t: DateTime<Utc>) -> String {
    with_shown(t, str::to_owned)
}

/// Calls `then` with `t` as [`shown`] writes it, from a stack buffer where it can be
/// (a page of 50 leads writes 100 times; chrono's formatter and a `String` each were
/// 2.5 % of the gateway's CPU per page, perf 2026-12-07), from chrono otherwise. The
/// text never holds a character JSON escapes.
pub(crate) fn with_shown<R>(t: DateTime<Utc>, then: impl FnOnce(&str) -> R) -> R {
    let mut digits = [0; SHOWN_LEN];
    match written(t, &mut digits) {
        Some(text) => then(text),
        None => then(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    }
}

/// A time that serialises as [`shown`] writes it, without a `String` in between.
#[derive(Clone, Copy)]
pub(crate) struct Millis(pub DateTime<Utc>);

impl serde::Serialize for Millis {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        with_shown(self.0, |text| s.serialize_str(text))
    }
}

/// `2025-12-01T00:00:00.123Z`: every time of years 0000 to 9999.
const SHOWN_LEN: usize = 24;

/// `t` as [`shown`] writes it, in `out`; `None` for what chrono writes differently
/// (a year outside 0000–9999, which takes a sign or a fifth digit, and a leap second).
fn written(t: DateTime<Utc>, out: &mut [u8; SHOWN_LEN]) -> Option<&str> {
    let year = u32::try_from(t.year()).ok().filter(|&y| y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    // Each part's digits, most significant first, then the character after it.
    let parts = [
        (year, 4, b'-'),
        (t.month(), 2, b'-'),
        (t.day(), 2, b'T'),
        (t.hour(), 2, b':'),
        (t.minute(), 2, b':'),
        (t.second(), 2, b'.'),
        (nanos / 1_000_000, 3, b'Z'),
    ];
    let mut end = 0;
    for (mut value, width, then) in parts {
        end += width;
        for place in out[end - width..end].iter_mut().rev() {
            *place = b'0' + (value % 10) as u8;
            value /= 10;
        }
        out[end] = then;
        end += 1;
    }
    std::str::from_utf8(&out[..]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_writes(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// Every time is written exactly as chrono writes it: across the years, at the
    /// edges of days, months and leap years, below a millisecond, in a leap second and
    /// outside the four-digit years.
    #[test]
    fn a_time_is_written_as_chrono_writes_it() {
        let mut times: Vec<DateTime<Utc>> = [
            "0000-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "1999-12-31T23:59:59.999999999Z",
            "2000-02-29T12:34:56.789Z",
            "2024-02-29T00:00:00.001Z",
            "2025-12-01T00:00:00.123Z",
            "9999-12-31T23:59:59.999Z",
        ]
        .iter()
        .map(|t| DateTime::parse_from_rfc3339(t).unwrap().to_utc())
        .collect();
        // A step that is prime in milliseconds lands on every digit in every place.
        let mut t = DateTime::from_timestamp_millis(-62_000_000_000_000).unwrap();
        while t.year() < 9999 {
            times.push(t);
            t += chrono::TimeDelta::milliseconds(9_876_543_211);
        }
        times.push(DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap());
        for (year, month, day) in [(10_000, 1, 1), (-1, 12, 31)] {
            let date = chrono::NaiveDate::from_ymd_opt(year, month, day).unwrap();
            times.push(date.and_hms_milli_opt(1, 2, 3, 456).unwrap().and_utc());
        }
        for t in times {
            // Written here unless chrono must write it.
            let ours = (0..=9999).contains(&t.year()) && t.nanosecond() < 1_000_000_000;
            assert_eq!(written(t, &mut [0; SHOWN_LEN]).is_some(), ours, "{t:?}");
            assert_eq!(shown(t), chrono_writes(t), "{t:?}");
            let json = serde_json::to_string(&Millis(t)).unwrap();
            assert_eq!(json, format!("\"{}\"", chrono_writes(t)));
            let mut direct = b"[".to_vec();
            crate::lead::write_unescaped(&mut direct, &shown(t));
            assert_eq!(direct, format!("[{json}").as_bytes());
        }
    }
}
