//! Behind a transaction pooler, a `SELECT` of whole rows of one table planned once per
//! server connection instead of at every call.
//!
//! Through PgBouncer in transaction mode a statement is one simple query with its values
//! inlined ([`crate::inline`]), which PostgreSQL parses and plans every time it runs: for
//! a list page's `SELECT` that is most of the statement's cost (pgbench, 32 clients, an
//! account of 2 000 leads, 2026-12-07: 4 300–4 700 pages/s as a simple query, 7 000–7 400
//! prepared). PL/pgSQL keeps the plans of a function's statements per server connection,
//! whichever client calls it, so the statement's text goes into a function made once per
//! database (`ciq_rows_<hash>`, named by a hash of its table, parameter types and text,
//! so another build's statement gets a function of its own), and the client sends a call
//! of it — a simple query too, but one whose plan is a function scan: 8 800–11 500
//! against 7 000–9 000 empty pages/s (`SELECT *` from it: 9 500–12 100, and 5 000–5 100
//! with 51 rows).
//!
//! A statement whose plan should follow its values (a prefix search, which bounds an
//! index range only in a plan made for that prefix) is not for this: PL/pgSQL may settle
//! on one generic plan for every call.

use std::collections::HashMap;
use std::sync::Mutex;

use sea_orm::{Statement, Value};

/// What a process knows of its statements' functions, by statement text: the text of
/// the call that replaces it (or, for group commit's batch, the function's name) when
/// its function was made (or found made), `None` when it has none (not of the form, or
/// the database refused to make it: the statement is sent itself). So a page whose
/// statement was seen before costs one look-up, not a hash and a function's text; and
/// a function dropped since it was made is forgotten ([`Made::forget`]) and made again,
/// in [`crate::Db`] (lists) and in group commit (batches) alike. At most [`Made::MOST`]: a
/// client chooses its filters and page size, and each shape would be a function in the
/// database; past the bound a new shape's statement is sent itself.
#[derive(Debug, Default)]
pub struct Made(Mutex<HashMap<String, Option<String>>>);

impl Made {
    /// The most statements one process makes functions for or tries (the API's lists
    /// use a dozen or so shapes in practice).
    pub const MOST: usize = 64;

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<String>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether no other statement may be tried.
    pub fn full(&self) -> bool {
        self.map().len() >= Self::MOST
    }

    /// Forgets `statement` (its function was dropped from the database since it was
    /// made): the next call tries to make it again.
    pub fn forget(&self, statement: &str) {
        self.map().remove(statement);
    }

    /// The call replacing `statement` (`Some(Some(call))`), none (`Some(None)`), or not
    /// tried by this process yet (`None`).
    pub fn known(&self, statement: &str) -> Option<Option<String>> {
        self.map().get(statement).cloned()
    }

    /// Records what trying `statement` gave: the call's text, or none.
    pub fn record(&self, statement: &str, call: Option<String>) {
        self.map().insert(statement.to_owned(), call);
    }

    /// What is known for `statement`; when nothing is yet and the bound leaves room,
    /// what `make` gives (it makes or finds the function), recorded. `make`'s error is
    /// returned and nothing recorded, so the next call asks again (the database could
    /// not be asked); past the bound, `None` (the statement is sent itself).
    pub async fn known_or_made<E, F>(
        &self,
        statement: &str,
        make: impl FnOnce() -> F,
    ) -> Result<Option<String>, E>
    where
        F: std::future::Future<Output = Result<Option<String>, E>>,
    {
        if let Some(known) = self.known(statement) {
            return Ok(known);
        }
        if self.full() {
            return Ok(None);
        }
        let made = make().await?;
        self.record(statement, made.clone());
        Ok(made)
    }
}

/// A statement's function: its name, the `CREATE FUNCTION` that makes it, and the call
/// that answers as the statement did (same select list, same parameters).
#[derive(Debug)]
pub struct RowsFunction {
    /// `ciq_rows_<hash>`.
    pub name: String,
    /// The `CREATE FUNCTION` statement (no parameters of its own).
    pub create: String,
    /// The call, with the statement's values as its parameters.
    pub call: Statement,
}

/// The function of `statement` — `SELECT <columns> FROM "<table>" <the rest>`, the rest
/// choosing and ordering the rows — returning `SETOF "<table>"` from `SELECT "<table>".*`
/// and the rest, called as `SELECT <columns> FROM <function>(<values>) AS "<table>"` so
/// the select list means what it meant. `None` when the statement is not of that form,
/// a value has no literal form (see [`crate::inline`]), or the text holds a dollar quote.
pub fn rows_function(table: &str, statement: &Statement) -> Option<RowsFunction> {
    let from = format!(" FROM \"{table}\"");
    let (columns, rest) = statement.sql.strip_prefix("SELECT ")?.split_once(&from)?;
    // A `$` other than a parameter's (`$1`) would be a dollar quote.
    let dollar_quote = statement
        .sql
        .match_indices('$')
        .any(|(at, _)| !statement.sql[at + 1..].starts_with(|c: char| c.is_ascii_digit()));
    if dollar_quote || !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let values = statement.values.as_ref().map_or(&[][..], |v| &v.0[..]);
    let types = values.iter().map(cast).collect::<Option<Vec<String>>>()?;
    let name = function_name(
        "ciq_rows_",
        &format!("{table}\n{}\n{}", types.join(","), statement.sql),
    );
    let create = format!(
        "CREATE FUNCTION {name}({}) RETURNS SETOF \"{table}\" LANGUAGE plpgsql STABLE AS \
         $ciq_rows$ BEGIN RETURN QUERY SELECT \"{table}\".*{from}{rest}; END $ciq_rows$",
        types.join(", ")
    );
    let arguments: Vec<String> = (1..=values.len()).map(|n| format!("${n}")).collect();
    let call = Statement {
        sql: format!(
            "SELECT {columns} FROM {name}({}) AS \"{table}\"",
            arguments.join(", ")
        ),
        values: statement.values.clone(),
        db_backend: statement.db_backend,
    };
    Some(RowsFunction { name, create, call })
}

/// Whether `err` says the function called does not exist (SQLSTATE 42883): one made
/// earlier was dropped since (by an operator, or a database restored without it).
pub fn undefined_function(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.code().as_deref() == Some("42883"))
}

/// `prefix` and 16 hex digits of a hash of `key` (what the function does, with its
/// parameter types): a function's name that changes whenever its text does.
pub fn function_name(prefix: &str, key: &str) -> String {
    use blake2::Digest;
    let digest = blake2::Blake2s256::digest(key.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hash}")
}

/// The type a value is sent as: the cast its literal ends with.
fn cast(value: &Value) -> Option<String> {
    let literal = crate::inline::literal(value)?;
    Some(literal.rsplit_once("::")?.1.to_owned())
}

/// Runs `create` (a `CREATE FUNCTION`) on `conn`: `Ok(true)` when the function is there
/// afterwards (made now, or already by another instance or at the same moment),
/// `Ok(false)`, with a warning, when the database refuses to make it (PostgreSQL 15
/// grants `CREATE` on `public` to the database's owner only; a replica is read-only) —
/// the caller then sends its statement itself; the error when the database could not
/// be asked (worth asking again later). `what` names the statement in the warning.
pub async fn make_function(
    conn: &mut sqlx::postgres::PgConnection,
    create: &str,
    what: &str,
) -> Result<bool, sqlx::Error> {
    match sqlx::raw_sql(sqlx::AssertSqlSafe(create.to_owned()))
        .execute(conn)
        .await
    {
        Ok(_) => Ok(true),
        // Made already (same name, same text).
        Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42723" | "23505")) => {
            Ok(true)
        }
        Err(sqlx::Error::Database(err)) => {
            tracing::warn!(
                error = %err,
                "could not create the {what} function: the statement is sent itself \
                 (PostgreSQL plans it at every call; grant CREATE on the schema to spare that)"
            );
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inline::tests::statement;

    /// The function returns whole rows of the table chosen and ordered by the
    /// statement's own conditions; the call keeps the statement's select list and
    /// values, so it answers with the same columns in the same order.
    #[test]
    fn a_select_of_whole_rows_becomes_a_function_and_its_call() {
        let user = uuid::Uuid::nil();
        let made = rows_function(
            "leads",
            &statement(
                r#"SELECT "leads"."id", "leads"."name" FROM "leads" WHERE "leads"."user_id" = $1 AND "leads"."status" = $2 ORDER BY "leads"."created_at" DESC LIMIT 51"#,
                vec![Value::from(user), Value::from("new")],
            ),
        )
        .unwrap();
        assert!(
            made.name.starts_with("ciq_rows_") && made.name.len() == 25,
            "{}",
            made.name
        );
        assert_eq!(
            made.create,
            format!(
                r#"CREATE FUNCTION {}(uuid, text) RETURNS SETOF "leads" LANGUAGE plpgsql STABLE AS $ciq_rows$ BEGIN RETURN QUERY SELECT "leads".* FROM "leads" WHERE "leads"."user_id" = $1 AND "leads"."status" = $2 ORDER BY "leads"."created_at" DESC LIMIT 51; END $ciq_rows$"#,
                made.name
            )
        );
        assert_eq!(
            made.call.sql,
            format!(
                r#"SELECT "leads"."id", "leads"."name" FROM {}($1, $2) AS "leads""#,
                made.name
            )
        );
        assert_eq!(
            made.call.values.unwrap().0,
            vec![Value::from(user), Value::from("new")]
        );
    }

    /// Another text or other parameter types is another function (so builds with
    /// another statement never call one made for an older one); the same is the same.
    #[test]
    fn the_name_follows_the_text_and_the_types() {
        let name = |sql: &str, value: Value| {
            rows_function("leads", &statement(sql, vec![value]))
                .unwrap()
                .name
        };
        let sql = r#"SELECT "leads"."id" FROM "leads" WHERE "leads"."score" = $1"#;
        assert_eq!(name(sql, Value::from(1i32)), name(sql, Value::from(2i32)));
        assert_ne!(name(sql, Value::from(1i32)), name(sql, Value::from(1i64)));
        assert_ne!(
            name(sql, Value::from(1i32)),
            name(&format!("{sql} LIMIT 5"), Value::from(1i32))
        );
    }

    /// The process tries at most `Made::MOST` functions (each shape a client can ask for
    /// would otherwise be one more in the database); a dropped one is forgotten and may
    /// be tried again.
    #[test]
    fn the_functions_tried_are_bounded_and_a_dropped_one_is_tried_again() {
        let made = Made::default();
        for n in 0..Made::MOST {
            assert!(!made.full());
            made.record(
                &format!("statement {n}"),
                (n % 2 == 0).then(|| format!("call {n}")),
            );
        }
        assert!(made.full());
        assert_eq!(made.known("statement 0"), Some(Some("call 0".to_owned())));
        assert_eq!(made.known("statement 1"), Some(None));
        made.forget("statement 0");
        assert_eq!(made.known("statement 0"), None);
        assert!(!made.full());
    }

    /// What is not one table's whole rows, holds a dollar quote or a value without a
    /// literal form is left as it is.
    #[test]
    fn other_statements_have_no_function() {
        let none = |sql: &str, values: Vec<Value>| {
            rows_function("leads", &statement(sql, values)).is_none()
        };
        assert!(none(
            r#"SELECT count(*) FROM "leads_archive" WHERE x = 1"#,
            vec![]
        ));
        assert!(none(r#"UPDATE "leads" SET name = 'x'"#, vec![]));
        assert!(none(
            r#"SELECT "leads"."id" FROM "leads" WHERE name = $$x$$"#,
            vec![]
        ));
        assert!(none(
            r#"SELECT "leads"."id" FROM "leads" WHERE name = $1"#,
            vec![Value::from("a\0b")]
        ));
        assert!(!none(r#"SELECT "leads"."id" FROM "leads""#, vec![]));
    }
}
