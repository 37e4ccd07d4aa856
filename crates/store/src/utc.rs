//! UTC times written as text without chrono's formatter: RFC 3339 with a fixed number
//! of fractional digits and `Z`, exactly as `DateTime::to_rfc3339_opts(…, true)`
//! writes them. The API's answers write milliseconds (a page of 50 leads writes 100
//! times), a batch's statement writes microseconds (100 leads, two times each); chrono's
//! formatter was 2.5 % of the gateway's CPU per page and 3 % of a batch's instructions.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// How many fractional digits a written time carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Places {
    /// `2025-12-01T00:00:00.123Z`: what the API's answers write.
    Millis = 3,
    /// `2025-12-01T00:00:00.123456Z`: what sqlx's binary encoding keeps of a
    /// `timestamptz` (microseconds, truncated).
    Micros = 6,
}

impl Places {
    fn seconds_format(self) -> chrono::SecondsFormat {
        match self {
            Places::Millis => chrono::SecondsFormat::Millis,
            Places::Micros => chrono::SecondsFormat::Micros,
        }
    }
}

/// The longest text [`written`] makes (microseconds).
pub const MAX_LEN: usize = 27;

/// Calls `then` with `t` written with `places` fractional digits, from a stack buffer
/// where it can be, from chrono otherwise. The text never holds a character JSON or an
/// array literal escapes.
pub fn with_text<R>(t: DateTime<Utc>, places: Places, then: impl FnOnce(&str) -> R) -> R {
    let mut digits = [0; MAX_LEN];
    match written(t, places, &mut digits) {
        Some(text) => then(text),
        None => then(&t.to_rfc3339_opts(places.seconds_format(), true)),
    }
}

/// `t` with `places` fractional digits, in `out`; `None` for what chrono writes
/// differently (a year outside 0000–9999, which takes a sign or a fifth digit, and a
/// leap second).
pub fn written(t: DateTime<Utc>, places: Places, out: &mut [u8; MAX_LEN]) -> Option<&str> {
    // The calendar read once: each of `DateTime`'s own accessors converts to local
    // time (an offset added) again.
    let naive = t.naive_utc();
    let (date, time) = (naive.date(), naive.time());
    let year = u32::try_from(date.year()).ok().filter(|&y| y <= 9999)?;
    let nanos = time.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let (fraction, width) = match places {
        Places::Millis => (nanos / 1_000_000, 3),
        Places::Micros => (nanos / 1_000, 6),
    };
    let seconds = time.num_seconds_from_midnight();
    // Each part's digits, most significant first, then the character after it.
    let parts = [
        (year, 4, b'-'),
        (date.month(), 2, b'-'),
        (date.day(), 2, b'T'),
        (seconds / 3600, 2, b':'),
        (seconds / 60 % 60, 2, b':'),
        (seconds % 60, 2, b'.'),
        (fraction, width, b'Z'),
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
    std::str::from_utf8(&out[..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every time is written exactly as chrono writes it, in both precisions: across
    /// the years, at the edges of days, months and leap years, below a microsecond, in
    /// a leap second and outside the four-digit years.
    #[test]
    fn a_time_is_written_as_chrono_writes_it() {
        let mut times: Vec<DateTime<Utc>> = [
            "0000-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "1999-12-31T23:59:59.999999999Z",
            "2000-02-29T12:34:56.789Z",
            "2024-02-29T00:00:00.001Z",
            "2025-12-01T00:00:00.123456789Z",
            "2025-12-01T00:00:00.000001Z",
            "9999-12-31T23:59:59.999999Z",
        ]
        .iter()
        .map(|t| DateTime::parse_from_rfc3339(t).unwrap().to_utc())
        .collect();
        // A step that is prime in microseconds lands on every digit in every place.
        let mut t = DateTime::from_timestamp_millis(-62_000_000_000_000).unwrap();
        while t.year() < 9999 {
            times.push(t);
            t += chrono::TimeDelta::microseconds(9_876_543_210_987);
        }
        times.push(DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap());
        for (year, month, day) in [(10_000, 1, 1), (-1, 12, 31)] {
            let date = chrono::NaiveDate::from_ymd_opt(year, month, day).unwrap();
            times.push(date.and_hms_micro_opt(1, 2, 3, 456_789).unwrap().and_utc());
        }
        for t in times {
            for places in [Places::Millis, Places::Micros] {
                let chrono = t.to_rfc3339_opts(places.seconds_format(), true);
                // Written here unless chrono must write it.
                let ours = (0..=9999).contains(&t.year()) && t.nanosecond() < 1_000_000_000;
                let mut out = [0; MAX_LEN];
                assert_eq!(written(t, places, &mut out).is_some(), ours, "{t:?}");
                assert_eq!(with_text(t, places, str::to_owned), chrono, "{t:?}");
            }
        }
    }
}
