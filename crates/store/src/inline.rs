//! A PostgreSQL statement with its parameters written into its text as typed literals,
//! for the simple query protocol: one round trip, nothing prepared.
//!
//! Behind a transaction pooler without prepared-statement support (PgBouncer 1.18, or
//! `max_prepared_statements = 0`) sqlx's extended protocol costs a statement four round
//! trips — `BEGIN`, Parse, Bind/Execute, `COMMIT` — because Parse and Bind must reach the
//! same server connection. Sent as one simple `Query` it takes one, and names nothing a
//! later client could collide with. pgbench through PgBouncer, the page `SELECT`, 32
//! clients: 6 400–6 900/s in a three-round-trip transaction, 15 400–17 200/s as one
//! simple query (2026-12-06).
//!
//! Each literal carries the type sqlx would have declared for the bound parameter
//! (`'…'::uuid`, `'…'::int8`, `E'…'::text`, …), so the statement means what it meant
//! with parameters. Strings are written as escape strings (`E'…'`, backslash and quote
//! doubled), whose meaning does not depend on `standard_conforming_strings`. A value
//! without a literal form here (an array, an enum, a string with a NUL, a `u64` past
//! `i64`, a date outside the years 1 to 9999) makes [`inline`] answer `None`: the caller
//! binds the statement instead.

use std::fmt::Write;

use sea_orm::{Statement, Value};

/// `statement`'s text with every `$n` outside quotes and comments replaced by its value
/// as a typed literal, or `None` when a value has no literal form here, a placeholder
/// names no value, or the text holds a dollar-quoted string (not parsed here).
pub fn inline(statement: &Statement) -> Option<String> {
    let values = statement.values.as_ref().map_or(&[][..], |v| &v.0[..]);
    let literals = values
        .iter()
        .map(literal)
        .collect::<Option<Vec<String>>>()?;
    substitute(&statement.sql, &literals)
}

/// `sql` with every `$n` outside quotes and comments replaced by `literals[n - 1]`
/// (literals made by [`literal`], or of them, such as `ARRAY[…]` of them), or `None`
/// when a placeholder names no literal or the text holds a dollar-quoted string.
pub fn substitute(sql_text: &str, literals: &[String]) -> Option<String> {
    let sql = sql_text.as_bytes();
    let mut out =
        String::with_capacity(sql.len() + literals.iter().map(String::len).sum::<usize>());
    let mut copied = 0;
    let mut i = 0;
    while i < sql.len() {
        match sql[i] {
            b'\'' => i = skip_quoted(sql, i, b'\'', escape_string(sql, i))?,
            b'"' => i = skip_quoted(sql, i, b'"', false)?,
            b'-' if sql.get(i + 1) == Some(&b'-') => {
                i = sql[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(sql.len(), |p| i + p + 1);
            }
            b'/' if sql.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map(|p| i + 2 + p + 2)?;
            }
            b'$' if i > 0 && is_identifier_byte(sql[i - 1]) => i += 1,
            b'$' => {
                let digits = sql[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                if digits == 0 {
                    // `$tag$…$tag$` or `$$…$$`: a dollar-quoted string.
                    return None;
                }
                let n: usize = sql_text[i + 1..i + 1 + digits].parse().ok()?;
                let literal = literals.get(n.checked_sub(1)?)?;
                out.push_str(&sql_text[copied..i]);
                out.push_str(literal);
                i += 1 + digits;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql_text[copied..]);
    Some(out)
}

/// Whether the quote at `at` opens an escape string (`E'…'`, where a backslash escapes).
fn escape_string(sql: &[u8], at: usize) -> bool {
    at > 0 && matches!(sql[at - 1], b'E' | b'e') && (at < 2 || !is_identifier_byte(sql[at - 2]))
}

/// The index just past the quoted text opening at `at` (a doubled quote stays inside),
/// or `None` when it is never closed.
fn skip_quoted(sql: &[u8], at: usize, quote: u8, backslashes: bool) -> Option<usize> {
    let mut i = at + 1;
    while i < sql.len() {
        match sql[i] {
            b'\\' if backslashes => i += 2,
            c if c == quote && sql.get(i + 1) == Some(&quote) => i += 2,
            c if c == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn is_identifier_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// `value` as a literal of the type sqlx binds it as (sea-query-sqlx's binder), or `None`
/// when it has no literal form here (see the module docs).
pub fn literal(value: &Value) -> Option<String> {
    fn typed<T: std::fmt::Display>(value: Option<T>, ty: &str) -> String {
        match value {
            Some(v) => format!("'{v}'::{ty}"),
            None => format!("NULL::{ty}"),
        }
    }
    fn float(value: Option<f64>, ty: &str) -> String {
        match value {
            Some(v) if v.is_nan() => format!("'NaN'::{ty}"),
            Some(v) if v.is_infinite() && v > 0.0 => format!("'Infinity'::{ty}"),
            Some(v) if v.is_infinite() => format!("'-Infinity'::{ty}"),
            other => typed(other, ty),
        }
    }
    Some(match value {
        Value::Bool(v) => typed(*v, "boolean"),
        Value::SmallInt(v) => typed(*v, "int2"),
        Value::Int(v) => typed(*v, "int4"),
        Value::BigInt(v) => typed(*v, "int8"),
        Value::TinyUnsigned(v) => typed(*v, "int2"),
        Value::SmallUnsigned(v) => typed(*v, "int4"),
        Value::Unsigned(v) => typed(*v, "int8"),
        Value::BigUnsigned(v) => typed(v.map(i64::try_from).transpose().ok()?, "int8"),
        Value::Float(v) => float(v.map(f64::from), "float4"),
        Value::Double(v) => float(*v, "float8"),
        Value::String(v) => text(v.as_deref(), "text")?,
        Value::Char(v) => text(v.map(String::from).as_deref(), "text")?,
        Value::Bytes(v) => match v {
            Some(bytes) => {
                let mut hex = String::with_capacity(bytes.len() * 2 + 16);
                hex.push_str("E'\\\\x");
                for b in bytes {
                    write!(hex, "{b:02x}").ok()?;
                }
                hex.push_str("'::bytea");
                hex
            }
            None => "NULL::bytea".to_owned(),
        },
        Value::Json(v) => match v {
            Some(json) => text(Some(&serde_json::to_string(json).ok()?), "jsonb")?,
            None => "NULL::jsonb".to_owned(),
        },
        Value::ChronoDate(v) => typed(four_digits(*v)?.map(|d| d.format("%Y-%m-%d")), "date"),
        Value::ChronoTime(v) => typed(v.map(|t| t.format("%H:%M:%S%.6f")), "time"),
        Value::ChronoDateTime(v) => typed(
            four_digits(*v)?.map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f")),
            "timestamp",
        ),
        Value::ChronoDateTimeUtc(v) => typed(four_digits(*v)?.map(utc), "timestamptz"),
        Value::ChronoDateTimeLocal(v) => typed(
            four_digits(*v)?.map(|t| t.format(TIMESTAMPTZ)),
            "timestamptz",
        ),
        Value::ChronoDateTimeWithTimeZone(v) => typed(
            four_digits(*v)?.map(|t| t.format(TIMESTAMPTZ)),
            "timestamptz",
        ),
        Value::Uuid(v) => typed(v.map(|u| u.hyphenated()), "uuid"),
        _ => return None,
    })
}

/// An array of `ty` (`"uuid"`, `"text"`, …) as one literal, `E'{"…","…",NULL}'::ty[]`,
/// from its elements in PostgreSQL's text form (`None` is NULL): the server reads it
/// with one `array_in` call, not one constant per element — a batch of leads as
/// `ARRAY['…'::uuid, …]` cost PostgreSQL about twice its CPU per row (2026-12-06).
/// `None` when an element holds a NUL.
pub fn array(elements: impl IntoIterator<Item = Option<String>>, ty: &str) -> Option<String> {
    text(Some(&array_text(elements)?), &format!("{ty}[]"))
}

/// Elements in PostgreSQL's text form (`None` is NULL) as the text of one array,
/// `{"…","…",NULL}` ([`ArrayText`]). `None` when an element holds a NUL.
pub fn array_text(elements: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    let elements: Vec<Option<String>> = elements.into_iter().collect();
    // Sized once (braces, commas, quotes; an escape is rare and may grow it once): a
    // 500-row column grown by doubling was copied again and again (perf, 2026-12-06).
    let size = 2 + elements
        .iter()
        .map(|e| e.as_ref().map_or(4, |e| e.len() + 2) + 1)
        .sum::<usize>();
    let mut array = ArrayText::with_capacity(size);
    for element in &elements {
        match element {
            None => array.push_null(),
            Some(e) => array.push(e)?,
        }
    }
    Some(array.finish())
}

/// The text of one array, `{"…","…",NULL}`, written element by element: each element
/// quoted (`"` and `\` escaped), as `array_in` reads it whatever the element type, so
/// that bound as a text parameter and cast (`$1::text::uuid[]`) a column of any number
/// of rows is one parameter. A value is written straight in ([`ArrayText::push_value`]):
/// a batch of 100 leads made a `String` per cell before (2 000), each copied again here.
#[derive(Debug)]
pub struct ArrayText {
    text: String,
    elements: usize,
}

impl ArrayText {
    /// An empty array, room for `capacity` bytes of text.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut text = String::with_capacity(capacity.max(2));
        text.push('{');
        Self { text, elements: 0 }
    }

    /// The text written so far, in bytes.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// Whether no element is written yet.
    pub fn is_empty(&self) -> bool {
        self.elements == 0
    }

    /// Room for `additional` more bytes.
    pub fn reserve(&mut self, additional: usize) {
        self.text.reserve(additional);
    }

    fn separate(&mut self) {
        if self.elements > 0 {
            self.text.push(',');
        }
        self.elements += 1;
    }

    /// Appends NULL.
    pub fn push_null(&mut self) {
        self.separate();
        self.text.push_str("NULL");
    }

    /// Appends `element` quoted; `None` (and the text unusable) when it holds a NUL,
    /// which PostgreSQL's text cannot.
    pub fn push(&mut self, element: &str) -> Option<()> {
        self.separate();
        self.text.push('"');
        // The runs between the bytes that need a backslash (or refuse the element),
        // found by memchr and copied whole: a char-by-char search was 8 % of a 100-lead
        // batch's instructions (callgrind, 2026-12-07). Each of the three is ASCII, so
        // every run ends on a character boundary.
        let mut rest = element;
        while let Some(at) = memchr::memchr3(b'"', b'\\', 0, rest.as_bytes()) {
            if rest.as_bytes()[at] == 0 {
                return None;
            }
            self.text.push_str(&rest[..at]);
            self.text.push('\\');
            self.text.push_str(&rest[at..=at]);
            rest = &rest[at + 1..];
        }
        self.text.push_str(rest);
        self.text.push('"');
        Some(())
    }

    /// Appends text that holds nothing to escape (digits, a uuid, a time).
    fn push_plain(&mut self, element: &str) {
        self.separate();
        self.text.push('"');
        self.text.push_str(element);
        self.text.push('"');
    }

    /// Appends `value` in its text form: the PostgreSQL name of the type sqlx would
    /// bind it as, or `None` (and the text unusable) for a value without one here (the
    /// kinds [`literal`] refuses, and the rarer kinds no array is made of) or a string
    /// with a NUL.
    pub fn push_value(&mut self, value: &Value) -> Option<&'static str> {
        fn number<T: itoa::Integer>(array: &mut ArrayText, value: Option<T>) {
            match value {
                Some(n) => array.push_plain(itoa::Buffer::new().format(n)),
                None => array.push_null(),
            }
        }
        Some(match value {
            Value::Bool(v) => {
                match v {
                    Some(b) => self.push_plain(if *b { "t" } else { "f" }),
                    None => self.push_null(),
                }
                "boolean"
            }
            Value::SmallInt(v) => {
                number(self, *v);
                "int2"
            }
            Value::Int(v) => {
                number(self, *v);
                "int4"
            }
            Value::BigInt(v) => {
                number(self, *v);
                "int8"
            }
            Value::String(v) => {
                match v {
                    Some(text) => self.push(text)?,
                    None => self.push_null(),
                }
                "text"
            }
            Value::Uuid(v) => {
                match v {
                    Some(u) => self.push_plain(
                        u.hyphenated()
                            .encode_lower(&mut uuid::Uuid::encode_buffer()),
                    ),
                    None => self.push_null(),
                }
                "uuid"
            }
            Value::ChronoDateTimeUtc(v) => {
                match four_digits(*v)? {
                    Some(at) => crate::utc::with_text(at, crate::utc::Places::Micros, |text| {
                        self.push_plain(text)
                    }),
                    None => self.push_null(),
                }
                "timestamptz"
            }
            _ => return None,
        })
    }

    /// The array's text, closed.
    pub fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

/// `at` in PostgreSQL's text form for a `timestamptz` (microseconds, as sqlx's binary
/// encoding sends them), or `None` outside the years 1 to 9999.
pub fn timestamptz(at: &chrono::DateTime<chrono::Utc>) -> Option<String> {
    four_digits(Some(*at)).flatten().map(utc)
}

/// A UTC time in ISO 8601 with microseconds (`2026-12-06T07:00:00.123456Z`), which
/// PostgreSQL reads whatever its `DateStyle`; chrono's `format` would parse its pattern
/// again for every value (3 % of the gateway's CPU writing a batch, 2026-12-06), and its
/// RFC 3339 writer was still 3 % of a batch's instructions ([`crate::utc`] since).
fn utc(at: chrono::DateTime<chrono::Utc>) -> String {
    crate::utc::with_text(at, crate::utc::Places::Micros, str::to_owned)
}

/// `Some(value)` when its year has four digits: chrono writes a later one as `+10000`
/// and an earlier one as `-0001`, which PostgreSQL reads otherwise (bound, they work).
fn four_digits<T: chrono::Datelike>(value: Option<T>) -> Option<Option<T>> {
    match value {
        Some(v) if !(1..=9999).contains(&v.year()) => None,
        other => Some(other),
    }
}

/// Microseconds, truncated as sqlx's binary encoding truncates them, and the offset.
const TIMESTAMPTZ: &str = "%Y-%m-%d %H:%M:%S%.6f%:z";

/// `value` as an escape string of type `ty`, or `None` for a string with a NUL (which
/// PostgreSQL's text cannot hold: bound, it fails as the server says).
fn text(value: Option<&str>, ty: &str) -> Option<String> {
    let Some(s) = value else {
        return Some(format!("NULL::{ty}"));
    };
    if s.contains('\0') {
        return None;
    }
    let mut out = String::with_capacity(s.len() + ty.len() + 6);
    out.push_str("E'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("''"),
            c => out.push(c),
        }
    }
    out.push_str("'::");
    out.push_str(ty);
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sea_orm::DbBackend;

    /// A PostgreSQL statement of `sql` and `values` (the planned module's tests too).
    pub(crate) fn statement(sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    }

    #[test]
    fn placeholders_become_typed_literals_in_order_of_their_numbers() {
        let id = uuid::Uuid::from_u128(7);
        let s = statement(
            "SELECT * FROM leads WHERE user_id = $2 AND score > $1 AND name = $3 LIMIT 51",
            vec![
                Value::Int(Some(-5)),
                Value::Uuid(Some(id)),
                Value::String(None),
            ],
        );
        assert_eq!(
            inline(&s).unwrap(),
            "SELECT * FROM leads WHERE user_id = '00000000-0000-0000-0000-000000000007'::uuid \
             AND score > '-5'::int4 AND name = NULL::text LIMIT 51"
        );
    }

    #[test]
    fn array_elements_are_quoted_with_every_quote_and_backslash_escaped() {
        let elements = [
            Some(r#""at the start, \ twice \\ and at the end""#.to_owned()),
            Some("Zoë, {naïve} NULL".to_owned()),
            Some(String::new()),
            None,
            Some(r"\".to_owned()),
        ];
        assert_eq!(
            array_text(elements).unwrap(),
            r#"{"\"at the start, \\ twice \\\\ and at the end\"","Zoë, {naïve} NULL","",NULL,"\\"}"#
        );
        assert_eq!(array_text(Vec::<Option<String>>::new()).unwrap(), "{}");
        assert_eq!(array_text([Some("a\0b".to_owned())]), None);
        assert_eq!(array_text([Some("\"a\\b\0".to_owned())]), None);
    }

    #[test]
    fn strings_are_escape_strings_whatever_they_hold() {
        let s = statement(
            "SELECT $1",
            vec![Value::String(Some(
                r"O'Brien \' ; DROP TABLE leads; --".to_owned(),
            ))],
        );
        assert_eq!(
            inline(&s).unwrap(),
            r"SELECT E'O''Brien \\'' ; DROP TABLE leads; --'::text"
        );
    }

    #[test]
    fn dollar_digits_inside_quotes_comments_and_identifiers_are_left_alone() {
        let s = statement(
            "SELECT '$1', E'\\'$1', \"a$1\", col$1 -- $1\n, /* $1 */ $1",
            vec![Value::BigInt(Some(9))],
        );
        assert_eq!(
            inline(&s).unwrap(),
            "SELECT '$1', E'\\'$1', \"a$1\", col$1 -- $1\n, /* $1 */ '9'::int8"
        );
    }

    #[test]
    fn what_has_no_literal_form_here_is_left_to_binding() {
        // A placeholder with no value, a value past i64, a NUL, a dollar-quoted string,
        // an unterminated quote.
        assert!(inline(&statement("SELECT $2", vec![Value::Int(Some(1))])).is_none());
        assert!(inline(&statement("SELECT $0", vec![Value::Int(Some(1))])).is_none());
        assert!(
            inline(&statement(
                "SELECT $1",
                vec![Value::BigUnsigned(Some(u64::MAX))]
            ))
            .is_none()
        );
        assert!(
            inline(&statement(
                "SELECT $1",
                vec![Value::String(Some("a\0b".into()))]
            ))
            .is_none()
        );
        assert!(inline(&statement("SELECT $$x$$, $1", vec![Value::Int(Some(1))])).is_none());
        assert!(inline(&statement("SELECT 'x, $1", vec![Value::Int(Some(1))])).is_none());
        let year_10000 = chrono::NaiveDate::from_ymd_opt(10000, 1, 1).unwrap();
        assert!(
            inline(&statement(
                "SELECT $1",
                vec![Value::ChronoDate(Some(year_10000))]
            ))
            .is_none()
        );
        let year_9999 = chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
        assert_eq!(
            inline(&statement(
                "SELECT $1",
                vec![Value::ChronoDate(Some(year_9999))]
            ))
            .unwrap(),
            "SELECT '9999-12-31'::date"
        );
        let no_values = Statement {
            sql: "SELECT 1".into(),
            values: None,
            db_backend: DbBackend::Postgres,
        };
        assert_eq!(inline(&no_values).unwrap(), "SELECT 1");
    }

    #[test]
    fn an_array_is_one_literal_with_its_elements_quoted_inside() {
        let elements = [
            Some(r#"say "hi" \ it's"#.to_owned()),
            None,
            Some("NULL".to_owned()),
        ];
        assert_eq!(
            array(elements, "text").unwrap(),
            r#"E'{"say \\"hi\\" \\\\ it''s",NULL,"NULL"}'::text[]"#
        );
        assert_eq!(array(Vec::new(), "uuid").unwrap(), "E'{}'::uuid[]");
        assert!(array([Some("a\0".to_owned())], "text").is_none());
    }

    /// Each kind of value is written into an array in the text form `array_in` reads,
    /// with the type sqlx would bind it as; what has no such form, a NUL and a year
    /// chrono writes with a sign refuse the array.
    #[test]
    fn values_are_written_into_an_array_in_their_text_form() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T07:00:00.123456789Z")
            .unwrap()
            .to_utc();
        let id = uuid::Uuid::parse_str("0193A5B2-7C1D-7E8F-9A0B-1C2D3E4F5A6B").unwrap();
        let values = [
            Value::Bool(Some(true)),
            Value::Bool(Some(false)),
            Value::SmallInt(Some(-2)),
            Value::Int(Some(5)),
            Value::BigInt(Some(i64::MIN)),
            Value::String(Some(r#"say "hi" \ it's"#.into())),
            Value::Uuid(Some(id)),
            Value::ChronoDateTimeUtc(Some(at)),
            Value::Int(None),
            Value::String(None),
            Value::ChronoDateTimeUtc(None),
        ];
        let mut array = ArrayText::with_capacity(0);
        assert!(array.is_empty());
        let types: Vec<&str> = values
            .iter()
            .map(|v| array.push_value(v).unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "boolean",
                "boolean",
                "int2",
                "int4",
                "int8",
                "text",
                "uuid",
                "timestamptz",
                "int4",
                "text",
                "timestamptz"
            ]
        );
        assert_eq!(
            array.finish(),
            r#"{"t","f","-2","5","-9223372036854775808","say \"hi\" \\ it's","0193a5b2-7c1d-7e8f-9a0b-1c2d3e4f5a6b","2026-12-06T07:00:00.123456Z",NULL,NULL,NULL}"#
        );
        let year_10000 = chrono::NaiveDate::from_ymd_opt(10000, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        for refused in [
            Value::Json(None),
            Value::String(Some("a\0b".into())),
            Value::ChronoDateTimeUtc(Some(year_10000)),
        ] {
            assert!(
                ArrayText::with_capacity(0).push_value(&refused).is_none(),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn times_keep_microseconds_and_json_is_jsonb() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T07:00:00.123456789Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let json = serde_json::json!({"utm": "it's"});
        let s = statement(
            "VALUES ($1, $2, $3, $4)",
            vec![
                Value::ChronoDateTimeUtc(Some(at)),
                Value::Json(Some(Box::new(json))),
                Value::Double(Some(f64::INFINITY)),
                Value::Bytes(Some(vec![0, 255])),
            ],
        );
        assert_eq!(
            inline(&s).unwrap(),
            "VALUES ('2026-12-06T07:00:00.123456Z'::timestamptz, \
             E'{\"utm\":\"it''s\"}'::jsonb, 'Infinity'::float8, E'\\\\x00ff'::bytea)"
        );
    }
}
