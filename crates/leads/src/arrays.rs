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

use ciq_store::inline::{array_text, element};
use ciq_store::placeholder as place;
use sea_orm::{DbBackend, Value};

/// The columns of some rows, each as its element type and its elements' text.
#[derive(Debug)]
pub(crate) struct Columns {
    types: Vec<&'static str>,
    cells: Vec<Vec<Option<String>>>,
}

impl Columns {
    /// `rows`, each a value per column, as columns; `None` when a value has no element
    /// form ([`element`]: a kind no lead column has), or a column's values are not all
    /// of one type (the caller then binds the rows as they are).
    pub(crate) fn of<V: Element, R: IntoIterator<Item = V>>(
        rows: impl IntoIterator<Item = R>,
    ) -> Option<Self> {
        let mut columns = Self {
            types: Vec::new(),
            cells: Vec::new(),
        };
        for (r, row) in rows.into_iter().enumerate() {
            let mut width = 0;
            for (c, value) in row.into_iter().enumerate() {
                let (ty, text) = value.element()?;
                if r == 0 {
                    columns.types.push(ty);
                    columns.cells.push(Vec::new());
                } else if columns.types.get(c) != Some(&ty) {
                    return None;
                }
                columns.cells[c].push(text);
                width += 1;
            }
            if width != columns.types.len() {
                return None;
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

    /// The parameters [`Self::unnest`] names, in its order: each column's array text;
    /// `None` when a text holds a NUL (PostgreSQL's text cannot: bound as it was, the
    /// statement fails as the server says).
    pub(crate) fn values(self) -> Option<Vec<Value>> {
        self.cells
            .into_iter()
            .map(|cells| array_text(cells).map(|text| Value::String(Some(text))))
            .collect()
    }
}

/// A value that becomes an array element ([`element`]): an owned one gives its text
/// up rather than having it copied (a batch's or an import's every string, 2026-12-06).
pub(crate) trait Element {
    /// Its element type and its text (`None` is NULL); `None` without an element form.
    fn element(self) -> Option<(&'static str, Option<String>)>;
}

impl Element for Value {
    fn element(self) -> Option<(&'static str, Option<String>)> {
        match self {
            Value::String(text) => Some(("text", text)),
            other => element(&other),
        }
    }
}

impl Element for &Value {
    fn element(self) -> Option<(&'static str, Option<String>)> {
        element(self)
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
            columns.values().expect("no NUL"),
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
        assert!(Columns::of(nul).expect("a string").values().is_none());
    }
}
