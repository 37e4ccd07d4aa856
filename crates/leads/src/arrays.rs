//! Many rows as one array per column, for PostgreSQL's `unnest`: the statement for a
//! chunk of an import or a batch of the API is `INSERT … SELECT * FROM unnest($1, …)` or
//! `UPDATE … FROM unnest(…)`, the same text and one parameter a column however many rows
//! it carries. A multi-row `VALUES` list binds one parameter per cell (10 000 for 500
//! leads), is a new statement text for every row count, and PostgreSQL plans it again at
//! every execution (2–3 ms for 500 rows: a fifth of the statement); worse, it estimated a
//! `VALUES` join to the account's leads as cheaper by a hash over every lead of the
//! account than by the external-id index, so an import's chunk read the whole account
//! (11 ms for 500 rows of a 90 000-lead account, growing with it). An `unnest` join
//! took the index on fresh statistics only; [`crate::bulk`] now probes the index row
//! by row whatever the statistics.
//!
//! Each column goes as the text of its array (`{"…",NULL}`), bound as text and cast
//! (`$1::text::uuid[]`): sea-query's own array values cannot hold a NULL element.
//! SQLite has no arrays: callers keep their `VALUES` statement there.

use std::borrow::Borrow;

use ciq_store::inline::ArrayText;
use ciq_store::placeholder as place;
use sea_orm::{DbBackend, Value};

/// The columns of some rows, each as its element type and its array's text, written
/// value by value.
#[derive(Debug)]
pub(crate) struct Columns {
    types: Vec<&'static str>,
    arrays: Vec<ArrayText>,
}

impl Columns {
    /// `rows`, each a value per column, as columns; `None` when a value has no element
    /// form ([`ArrayText::push_value`]: a kind no lead column has) or is a text with a
    /// NUL (PostgreSQL's text cannot hold one: bound as it was, the statement fails as
    /// the server says), or a column's values are not all of one type (the caller then
    /// binds the rows as they are).
    pub(crate) fn of<V: Borrow<Value>, R: IntoIterator<Item = V>>(
        rows: impl IntoIterator<Item = R>,
    ) -> Option<Self> {
        let rows = rows.into_iter();
        let expected = rows.size_hint().0;
        let mut columns = Self {
            types: Vec::new(),
            arrays: Vec::new(),
        };
        for (r, row) in rows.enumerate() {
            let mut width = 0;
            for (c, value) in row.into_iter().enumerate() {
                if r == 0 {
                    columns.arrays.push(ArrayText::with_capacity(64));
                }
                let ty = columns.arrays.get_mut(c)?.push_value(value.borrow())?;
                if r == 0 {
                    columns.types.push(ty);
                } else if columns.types[c] != ty {
                    return None;
                }
                width += 1;
            }
            if width != columns.types.len() {
                return None;
            }
            if r == 0 {
                // Sized from the first row (a longer row may grow a column once).
                for array in &mut columns.arrays {
                    array.reserve((array.len() + 1) * expected.saturating_sub(1));
                }
            }
        }
        Some(columns)
    }

    /// `unnest($first::text::ty[], …)`, a placeholder per column numbered from `first`.
    pub(crate) fn unnest(&self, first: usize) -> String {
        let arrays: Vec<String> = self
            .types
            .iter()
            .enumerate()
            .map(|(i, ty)| format!("{}::text::{ty}[]", place(DbBackend::Postgres, first + i)))
            .collect();
        format!("unnest({})", arrays.join(", "))
    }

    /// The parameters [`Self::unnest`] names, in its order: each column's array text.
    pub(crate) fn values(self) -> Vec<Value> {
        self.arrays
            .into_iter()
            .map(|array| Value::String(Some(array.finish())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_one_typed_array_parameter_per_column() {
        let id = uuid::Uuid::nil();
        let rows = vec![
            vec![
                Value::from(id),
                Value::from("a \"quoted\" \\ one"),
                Value::from(Some(5)),
            ],
            vec![Value::from(id), Value::String(None), Value::Int(None)],
        ];
        let columns = Columns::of(rows).expect("every value has an element form");
        assert_eq!(
            columns.unnest(3),
            "unnest($3::text::uuid[], $4::text::text[], $5::text::int4[])"
        );
        assert_eq!(
            columns.values(),
            vec![
                Value::from(format!("{{\"{id}\",\"{id}\"}}")),
                Value::from(r#"{"a \"quoted\" \\ one",NULL}"#),
                Value::from(r#"{"5",NULL}"#),
            ]
        );
    }

    #[test]
    fn mixed_types_short_rows_kinds_without_text_and_nul_are_refused() {
        let mixed = vec![vec![Value::from(1)], vec![Value::from("1")]];
        assert!(Columns::of(mixed).is_none());
        let short = vec![vec![Value::from(1), Value::from(2)], vec![Value::from(1)]];
        assert!(Columns::of(short).is_none());
        let json = vec![vec![Value::Json(None)]];
        assert!(Columns::of(json).is_none());
        let nul = vec![vec![Value::from("a\0b")]];
        assert!(Columns::of(nul).is_none());
    }
}
