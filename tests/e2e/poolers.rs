//! PgBouncer in session mode in front of the gateway's PostgreSQL: nothing of the
//! gateway changes (transaction mode runs every scenario as `pgbouncer::…`).

use ciq_e2e::pgbouncer::{PgBouncer, PoolMode};
use ciq_e2e::{Backend, TestApp, postgres_admin_url};
use secrecy::ExposeSecret;

/// A gateway on a fresh database reached through `bouncer`, connecting directly
/// (no transaction pooling setting).
async fn through(bouncer: &PgBouncer) -> Option<TestApp> {
    let port = bouncer.port;
    TestApp::spawn_with(Backend::Postgres, move |s| {
        let direct = s.database_url.expose_secret().to_owned();
        let (_, name) = direct.rsplit_once('/').unwrap();
        let user = direct
            .split_once("://")
            .and_then(|(_, r)| r.split_once('@'))
            .map_or("postgres", |(u, _)| u)
            .to_owned();
        s.database_url = format!("postgres://{user}@127.0.0.1:{port}/{name}").into();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_pooling_serves_creates_lists_updates_and_erasures_unchanged() {
    let Some(bouncer) = PgBouncer::start(&postgres_admin_url(), PoolMode::Session).await else {
        return;
    };
    let Some(app) = through(&bouncer).await else {
        return;
    };
    crate::manage::paging_returns_every_lead_that_existed_exactly_once(app).await;
    let app = through(&bouncer).await.unwrap();
    crate::manage::an_update_follows_the_create_rules_and_clears_with_null(app).await;
    let app = through(&bouncer).await.unwrap();
    crate::manage::an_erased_lead_leaves_no_trace_and_its_replay_is_gone(app).await;
}

/// Through PgBouncer in transaction mode with no reset query between clients (its four
/// server connections go from client to client as they are): three connections whose
/// transactions (sea-orm's, which name their statements) and lone statements interleave
/// never meet a statement name another left behind, and values reach the server as
/// written — quotes, backslashes, a would-be comment, a time to the microsecond — by the
/// inlined simple query and by the bound fallback (a value with no literal form).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_pooling_needs_no_reset_query_between_clients() {
    use ciq_gateway::database::{Pooling, Waits, connect_with};
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait, Value};

    let Some(app) = TestApp::spawn(Backend::PgBouncer).await else {
        return;
    };
    let url = app.database.url.clone();
    let mut dbs = Vec::new();
    for _ in 0..3 {
        dbs.push(
            connect_with(&url, Waits::default(), Pooling::Transaction)
                .await
                .unwrap(),
        );
    }
    let tricky = r"O'Brien \' -- $1 /* ; DROP TABLE leads; E'\x'".to_owned();
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T07:00:00.123456Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let echo = |value: Value| {
        Statement::from_sql_and_values(DbBackend::Postgres, "SELECT $1 AS v", [value])
    };
    let mut tasks = Vec::new();
    for (n, db) in dbs.into_iter().enumerate() {
        let tricky = tricky.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..25_i64 {
                // A transaction of three named statements.
                let txn = db.begin().await.unwrap();
                for k in 0..3_i64 {
                    let row = txn
                        .query_one_raw(echo(Value::BigInt(Some(round * 10 + k))))
                        .await
                        .unwrap_or_else(|e| panic!("client {n}, round {round}: {e}"))
                        .unwrap();
                    assert_eq!(row.try_get::<i64>("", "v").unwrap(), round * 10 + k);
                }
                txn.commit().await.unwrap();
                // Lone statements: inlined, and bound (an i8 has no literal form here).
                let row = db
                    .query_one_raw(echo(Value::String(Some(tricky.clone()))))
                    .await
                    .unwrap_or_else(|e| panic!("client {n}, round {round}: {e}"))
                    .unwrap();
                assert_eq!(row.try_get::<String>("", "v").unwrap(), tricky);
                let row = db
                    .query_one_raw(echo(Value::ChronoDateTimeUtc(Some(at))))
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    row.try_get::<chrono::DateTime<chrono::Utc>>("", "v")
                        .unwrap(),
                    at
                );
                let row = db
                    .query_one_raw(echo(Value::TinyInt(Some(7))))
                    .await
                    .unwrap_or_else(|e| panic!("client {n}, round {round}: {e}"))
                    .unwrap();
                assert_eq!(row.try_get::<i8>("", "v").unwrap(), 7);
            }
            db.close().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// A gateway behind a transaction pooler on a fresh database (its owner's role), and a
/// peer on the same database as a role that may read and write every table but not
/// create a PL/pgSQL function (no `USAGE` on the language), with that role's name.
async fn owner_and_plain_role() -> Option<(TestApp, TestApp, String)> {
    use ciq_gateway::database::Pooling;
    use sea_orm::ConnectionTrait;

    let owner = TestApp::spawn_with(Backend::Postgres, |s| {
        s.pooling = Pooling::Transaction;
    })
    .await?;
    let role = format!("ciq_plain_{}", uuid::Uuid::new_v4().simple());
    owner
        .db
        .execute_unprepared(&format!(
            "CREATE ROLE {role} LOGIN; \
             REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC; \
             GRANT USAGE, CREATE ON SCHEMA public TO {role}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}; \
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"
        ))
        .await
        .unwrap();
    let url = owner.database.url.clone();
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    let limited = owner
        .spawn_peer_with(|s| s.database_url = format!("{scheme}://{role}@{host}").into())
        .await;
    Some((owner, limited, role))
}

/// Stops the peer of [`owner_and_plain_role`] and drops its role.
async fn drop_plain_role(owner: TestApp, limited: TestApp, role: &str) {
    use sea_orm::ConnectionTrait;

    limited.stop().await;
    owner
        .db
        .execute_unprepared(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await
        .unwrap();
}

/// How many functions `app`'s database holds whose name is `LIKE` `pattern`.
async fn functions_like(app: &TestApp, pattern: &str) -> i64 {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    app.db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*)::int8 AS n FROM pg_proc WHERE proname LIKE $1",
            [pattern.into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

/// Drops, behind the gateway's back, every function of `app`'s database whose name is
/// `LIKE` `pattern` (as an operator or a restore without them would).
async fn drop_functions_like(app: &TestApp, pattern: &str) {
    use sea_orm::ConnectionTrait;

    app.db
        .execute_unprepared(&format!(
            "DO $$ DECLARE f regprocedure; BEGIN \
             FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE proname LIKE '{pattern}' \
             LOOP EXECUTE 'DROP FUNCTION ' || f; END LOOP; END $$"
        ))
        .await
        .unwrap();
    assert_eq!(functions_like(app, pattern).await, 0);
}

/// Behind a transaction pooler group commit's batches go through one PL/pgSQL function
/// made once per database (`ciq_lead_batch_…`: its statement planned once per server
/// connection, not per batch) — and a role that may write leads but not create the
/// function (no `USAGE` on PL/pgSQL here) stores every lead all the same, sending the
/// statement itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_pooled_batches_run_through_one_function_or_without_it() {
    let Some((owner, limited, role)) = owner_and_plain_role().await else {
        return;
    };
    let (user, key) = owner.user_with_key("owner@acme.test").await;
    let count = |sql: String| {
        let db = owner.db.clone();
        async move { ciq_e2e::count(&db, &sql).await }
    };
    const BATCH: &str = "ciq\\_lead\\_batch\\_%";
    let functions = || functions_like(&owner, BATCH);
    let leads = || {
        count(format!(
            "SELECT count(*)::int8 AS n FROM leads WHERE user_id = '{user}'"
        ))
    };
    // Twenty at once (batches of several), then one alone (a batch of one, whose
    // failure would be the client's: no row-by-row retry hides it).
    for (app, expected_leads, expected_functions) in [(&limited, 21, 0), (&owner, 42, 1)] {
        let posts = (0..20).map(|i| {
            let mut body = ciq_e2e::reference_curl_body();
            body["lead"]["email"] = format!("l{i}@example.com").into();
            let key = key.clone();
            async move { app.post_lead(Some(&key), &body).await.status().as_u16() }
        });
        let statuses = futures_util::future::join_all(posts).await;
        assert!(statuses.iter().all(|&s| s == 201), "{statuses:?}");
        let alone = app
            .post_lead(Some(&key), &ciq_e2e::reference_curl_body())
            .await;
        assert_eq!(alone.status(), 201);
        assert_eq!(leads().await, expected_leads);
        assert_eq!(functions().await, expected_functions);
    }
    // Dropped behind the gateway's back: the batches that meet its absence are stored
    // whole all the same (the statement itself) — a batch of one too, which has no
    // row-by-row retry to hide a failure — and the next makes the function again.
    drop_functions_like(&owner, BATCH).await;
    for n in 1..=3 {
        let alone = owner
            .post_lead(Some(&key), &ciq_e2e::reference_curl_body())
            .await;
        assert_eq!(alone.status(), 201, "post {n} after the drop");
    }
    assert_eq!(leads().await, 45);
    assert_eq!(functions().await, 1);
    drop_plain_role(owner, limited, &role).await;
}

/// Behind a transaction pooler a list page runs as a call of a PL/pgSQL function made
/// once per statement shape (`ciq_rows_…`: its plan kept per server connection, not
/// made per page) and answers exactly what the statement answers — newest first, the
/// cursor's next page, a filter — and a role that may read leads but not create the
/// function (no `USAGE` on PL/pgSQL here) gets the same pages, sending the statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_pooled_lists_run_through_a_function_per_shape_or_without_it() {
    use serde_json::Value;

    let Some((owner, limited, role)) = owner_and_plain_role().await else {
        return;
    };
    let (_, key) = crate::batch::full_key(&owner, "owner@acme.test").await;
    for (i, status) in ["new", "contacted", "new"].into_iter().enumerate() {
        let mut body = ciq_e2e::reference_curl_body();
        body["lead"]["email"] = format!("l{i}@example.com").into();
        body["lead"]["status"] = status.into();
        let created = owner.post_lead(Some(&key), &body).await;
        assert_eq!(created.status(), 201);
    }
    const ROWS: &str = "ciq\\_rows\\_%";
    let functions = || functions_like(&owner, ROWS);
    let emails = |page: &Value| ciq_e2e::leads_field(page, "email");
    // The first page, the cursor's next one, a filter: three shapes of statement.
    for (app, expected_functions) in [(&limited, 0), (&owner, 3), (&limited, 3), (&owner, 3)] {
        let first = crate::forms::read(app, &key, "/api/external/leads?limit=2").await;
        assert_eq!(emails(&first), ["l2@example.com", "l1@example.com"]);
        let cursor = first["next_cursor"].as_str().unwrap();
        let next = crate::forms::read(
            app,
            &key,
            &format!("/api/external/leads?limit=2&cursor={cursor}"),
        )
        .await;
        assert_eq!(emails(&next), ["l0@example.com"]);
        assert_eq!(next["next_cursor"], Value::Null);
        let new = crate::forms::read(app, &key, "/api/external/leads?status=new").await;
        assert_eq!(emails(&new), ["l2@example.com", "l0@example.com"]);
        assert_eq!(functions().await, expected_functions);
    }
    // Dropped behind the gateway's back: the next page of each shape is answered all
    // the same (the statement itself) and the one after makes the function again.
    drop_functions_like(&owner, ROWS).await;
    for _ in 0..2 {
        let first = crate::forms::read(&owner, &key, "/api/external/leads?limit=2").await;
        assert_eq!(emails(&first), ["l2@example.com", "l1@example.com"]);
    }
    assert_eq!(functions().await, 1);
    drop_plain_role(owner, limited, &role).await;
}
