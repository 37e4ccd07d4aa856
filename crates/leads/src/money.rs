//! Money amounts: exact decimals with at most two places, carried as whole cents.
//!
//! JSON numbers arrive as binary floats. Every decimal with at most 15 significant
//! digits survives the trip to `f64` and back through the shortest round-trip
//! representation, and our range (≤ 999 999 999 999.99, 14 digits) stays inside
//! that, so `50000.10` becomes exactly 5 000 010 cents — never `50000.0999`.

use serde_json::{Number, Value};

/// Largest accepted amount, in cents (999 999 999 999.99).
pub const MAX_CENTS: i64 = 99_999_999_999_999;

/// A non-negative amount with at most two decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    /// The amount in hundredths.
    pub cents: i64,
}

/// Why a JSON value is not a [`Money`] amount; the text is the rule, for `details`.
pub fn parse_money(value: &Value) -> Result<Money, &'static str> {
    const TOO_LARGE: &str = "must be at most 999999999999.99";
    let Value::Number(number) = value else {
        return Err("must be a number");
    };
    if let Some(whole) = number.as_u64() {
        // Exact as it came: no text to go through.
        return i64::try_from(whole)
            .ok()
            .and_then(|w| w.checked_mul(100))
            .filter(|&c| c <= MAX_CENTS)
            .map(|cents| Money { cents })
            .ok_or(TOO_LARGE);
    }
    let f = match number.as_f64() {
        Some(f) if f.is_finite() && f >= 0.0 => f,
        _ => return Err("must not be negative"),
    };
    if f > MAX_CENTS as f64 / 100.0 {
        return Err(TOO_LARGE);
    }
    // Shortest representation that round-trips: the decimal the client wrote.
    let text = f.to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let digit = |d: &u8| i64::from(d - b'0');
    let hundredths = match fraction.as_bytes() {
        [] => 0,
        [tenths] => digit(tenths) * 10,
        [tenths, cents] => digit(tenths) * 10 + digit(cents),
        _ => return Err("must have at most 2 decimal places"),
    };
    whole
        .parse::<i64>()
        .ok()
        .and_then(|w| w.checked_mul(100)?.checked_add(hundredths))
        .filter(|&c| c <= MAX_CENTS)
        .map(|cents| Money { cents })
        .ok_or(TOO_LARGE)
}

impl Money {
    /// The amount as a JSON number: an integer when whole, else the nearest double,
    /// whose shortest representation is the exact two-place decimal.
    pub fn to_number(self) -> Number {
        if self.cents % 100 == 0 {
            Number::from(self.cents / 100)
        } else {
            Number::from_f64(self.cents as f64 / 100.0).expect("finite")
        }
    }
}

/// Serialised as [`Money::to_number`]: the JSON number the API writes.
impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_number().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cents(json: &str) -> Result<i64, &'static str> {
        parse_money(&serde_json::from_str(json).unwrap()).map(|m| m.cents)
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(cents("50000.10"), Ok(5_000_010));
        assert_eq!(cents("50000"), Ok(5_000_000));
        assert_eq!(cents("0.1"), Ok(10));
        assert_eq!(cents("0.29"), Ok(29));
        assert_eq!(cents("999999999999.99"), Ok(MAX_CENTS));
        assert_eq!(cents("1e3"), Ok(100_000));
        assert_eq!(cents("7.0"), Ok(700));
        assert_eq!(cents("0"), Ok(0));
        assert_eq!(cents("0.05"), Ok(5));
        assert_eq!(cents("999999999999"), Ok(MAX_CENTS - 99));
    }

    #[test]
    fn out_of_rule_amounts_name_the_rule() {
        assert_eq!(cents("-1"), Err("must not be negative"));
        assert_eq!(cents("-0.5"), Err("must not be negative"));
        assert_eq!(cents("1.234"), Err("must have at most 2 decimal places"));
        assert_eq!(
            cents("1000000000000"),
            Err("must be at most 999999999999.99")
        );
        assert_eq!(cents("1e300"), Err("must be at most 999999999999.99"));
        assert_eq!(
            cents("18446744073709551615"),
            Err("must be at most 999999999999.99")
        );
        assert_eq!(cents("-0"), Ok(0));
        assert_eq!(cents("1e-7"), Err("must have at most 2 decimal places"));
        assert_eq!(cents("\"100\""), Err("must be a number"));
    }

    #[test]
    fn amounts_render_as_the_decimal_they_are() {
        let render = |c| serde_json::to_string(&Money { cents: c }.to_number()).unwrap();
        assert_eq!(render(5_000_010), "50000.1");
        assert_eq!(render(5_000_000), "50000");
        assert_eq!(render(29), "0.29");
        assert_eq!(render(MAX_CENTS), "999999999999.99");
    }
}
