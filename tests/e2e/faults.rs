//! The store failing under a running gateway with clients at work: every answer comes
//! quickly (503 with Retry-After, from the breaker, not after a pool wait), readiness
//! says so, and after the store returns, creates succeed again and no acknowledged
//! lead is lost. The pool may wait 30 s here: only the breaker can make it quick.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ciq_e2e::{Backend, PrivatePostgres, SilentProxy, TestApp, TestDatabase};
use sea_orm::EntityTrait;
use serde_json::Value;
use tokio::sync::Mutex;

const CLIENTS: usize = 8;
/// Far above any bound the breaker keeps: an answer this slow came from the pool.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// Every answer during the outage comes within this.
const QUICK: Duration = Duration::from_secs(5);

fn settings(url: String) -> impl FnOnce(&mut ciq_gateway::Settings) {
    move |s| {
        s.database_url = url.into();
        s.waits.acquire = POOL_WAIT;
        s.waits.statement = Duration::from_secs(2);
    }
}

/// What the clients saw: (status, took, Retry-After) per answer, and the ids of the
/// leads acknowledged with 201.
#[derive(Default)]
struct Seen {
    answers: Vec<(u16, Duration, Option<String>)>,
    created: Vec<uuid::Uuid>,
}

/// Starts `CLIENTS` clients creating leads until `stop` is set.
fn clients(
    app: &TestApp,
    key: &str,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..CLIENTS)
        .map(|_| {
            let (client, url, key) = (app.client.clone(), app.base_url.clone(), key.to_owned());
            let (stop, seen) = (stop.clone(), seen.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let resp = client
                        .post(format!("{url}/api/external/leads/create"))
                        .header("Content-Type", "application/json")
                        .header("X-API-Key", &key)
                        .body(ciq_e2e::reference_curl_body().to_string())
                        .send()
                        .await
                        .unwrap();
                    let took = started.elapsed();
                    let status = resp.status().as_u16();
                    let retry = resp
                        .headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().to_owned());
                    let body: Value = resp.json().await.unwrap();
                    let mut seen = seen.lock().await;
                    if status == 201 {
                        seen.created
                            .push(body["lead"]["id"].as_str().unwrap().parse().unwrap());
                    }
                    seen.answers.push((status, took, retry));
                    drop(seen);
                    if status != 201 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect()
}

/// Runs the clients through an outage made by `fail` and ended by `heal`.
async fn through_an_outage(app: TestApp, fail: impl FnOnce(), heal: impl FnOnce()) {
    // A limit the clients never reach: every answer is about the store.
    let (_, key) = app
        .user_with_key_like(
            "owner@acme.test",
            ciq_admin::keys::NewKey {
                rate_limit_per_minute: Some(1_000_000),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(app.create_status(Some(&key)).await, 201);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let running = clients(&app, &key, stop.clone(), seen.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    fail();
    let failed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let started = Instant::now();
    let (status, readiness) = app.readiness().await;
    assert!(
        started.elapsed() < QUICK,
        "readiness took {:?}",
        started.elapsed()
    );
    assert_eq!(status, 503, "{readiness}");
    assert_eq!(readiness["database"], "unreachable");
    let during = seen.lock().await.answers.len();

    heal();
    let healed_at = Instant::now();
    loop {
        let recent = seen
            .lock()
            .await
            .answers
            .iter()
            .rev()
            .take(CLIENTS)
            .all(|a| a.0 == 201);
        if recent && seen.lock().await.answers.len() > during + CLIENTS {
            break;
        }
        assert!(healed_at.elapsed() < Duration::from_secs(20), "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for client in running {
        client.await.unwrap();
    }
    assert_eq!(app.readiness().await.0, 200);

    let seen = seen.lock().await;
    let unavailable: Vec<_> = seen.answers.iter().filter(|a| a.0 == 503).collect();
    assert!(!unavailable.is_empty(), "the outage was never seen");
    for (status, took, retry) in &seen.answers {
        assert!(
            matches!(status, 201 | 503),
            "a {status} besides 201 and 503"
        );
        assert!(
            *took < QUICK,
            "an answer took {took:?} (outage began {failed_at:?})"
        );
        if *status == 503 {
            assert_eq!(retry.as_deref(), Some("5"));
        }
    }
    // Every acknowledged lead is stored.
    let stored: std::collections::HashSet<uuid::Uuid> = ciq_entity::Lead::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    for id in &seen.created {
        assert!(stored.contains(id), "acknowledged lead {id} is not stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_under_eight_clients_answers_quickly_and_recovers() {
    let Some(pg) = PrivatePostgres::start().await else {
        return;
    };
    let app = TestApp::spawn_with(Backend::Postgres, settings(pg.url()))
        .await
        .unwrap();
    let pg = Arc::new(pg);
    let (kill, restart) = (pg.clone(), pg.clone());
    through_an_outage(app, move || kill.kill(), move || assert!(restart.restart())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_accepts_connections_but_never_answers_is_the_same() {
    let Some(database) = TestDatabase::create(Backend::Postgres).await else {
        return;
    };
    let (base, name) = database.url.rsplit_once('/').unwrap();
    let target = base.rsplit_once('@').unwrap().1;
    let proxy = Arc::new(SilentProxy::start(target.parse().unwrap()).await);
    let through = format!(
        "{}@127.0.0.1:{}/{name}",
        base.rsplit_once('@').unwrap().0,
        proxy.port
    );
    let app = TestApp::spawn_with(Backend::Postgres, settings(through))
        .await
        .unwrap();
    let (mute, unmute) = (proxy.clone(), proxy.clone());
    through_an_outage(
        app,
        move || mute.set_silent(true),
        move || unmute.set_silent(false),
    )
    .await;
    drop(database);
}

/// A CSV import running when its store dies: the chunk in flight rolls back, the worker
/// waits out the outage and goes on from the last committed position once the store is
/// back — every good row a lead exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_goes_on_after_the_store_comes_back_and_imports_every_row_once() {
    use ciq_imports::{ImportFile, Mapping, store};
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    let Some(pg) = PrivatePostgres::start().await else {
        return;
    };
    let url = pg.url();
    let app = TestApp::spawn_with(Backend::Postgres, move |s| {
        settings(url)(s);
        s.imports.chunk_rows = 25;
    })
    .await
    .unwrap();
    let user = app.create_user("owner@acme.test").await;
    const ROWS: usize = 5_000;
    let mut csv = String::from("name,email,source,industry\n");
    for i in 0..ROWS {
        let email = if i % 10 == 9 {
            String::new()
        } else {
            format!("lead{i}@example.com")
        };
        csv.push_str(&format!("Lead {i},{email},Fair,Retail\n"));
    }
    let file = ImportFile::read(csv.as_bytes()).unwrap();
    let id = store::create(&app.db, user, "big.csv", csv.into_bytes(), &file)
        .await
        .unwrap();
    let mapping = Mapping::suggested(&file.columns);
    assert!(
        store::save_mapping(&app.db, user, id, &mapping, true)
            .await
            .unwrap()
    );
    let progress = || async { store::find(&app.db, user, id).await.ok().flatten() };
    let deadline = Instant::now() + Duration::from_secs(60);
    let before = loop {
        match progress().await {
            Some(import) if import.position >= 250 => break import.position,
            _ => {}
        }
        assert!(Instant::now() < deadline, "the import never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    pg.kill();
    assert!(
        (before as usize) < ROWS,
        "the import was done before the store died"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(pg.restart());
    let done = loop {
        match progress().await {
            Some(import) if !import.status.is_pending() => break import,
            _ => {}
        }
        assert!(Instant::now() < deadline, "the import never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let good = ROWS - ROWS / 10;
    assert_eq!(
        (
            done.position as usize,
            done.created_count as usize,
            done.failed_count as usize
        ),
        (ROWS, good, ROWS / 10),
        "{done:?}"
    );
    let emails: Vec<String> = ciq_entity::Lead::find()
        .select_only()
        .column(ciq_entity::lead::Column::Email)
        .filter(ciq_entity::lead::Column::UserId.eq(user))
        .into_tuple()
        .all(&app.db)
        .await
        .unwrap();
    let distinct: std::collections::HashSet<&String> = emails.iter().collect();
    assert_eq!((emails.len(), distinct.len()), (good, good));
}

/// Pooled connections the server dropped (a restart, a proxy's or a firewall's idle
/// timeout) cost at most one request each — a connection idle for more than
/// [`ciq_gateway::database::PING_AFTER_IDLE`] not even that (it is checked as it is
/// handed out; one in use within that time is trusted, which saves a round trip per
/// statement) — and are replaced: every request after them succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_server_dropped_cost_a_request_at_most_and_are_replaced() {
    use ciq_admin::keys::NewKey;
    use ciq_admin::{Scope, Scopes};
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let (_, key) = app
        .user_with_key_like(
            "dropped@acme.test",
            NewKey {
                scopes: Scopes::of(&Scope::ALL),
                rate_limit_per_minute: Some(10_000),
                ..NewKey::default()
            },
        )
        .await;
    let pages = |n: usize| {
        let requests: Vec<_> = (0..n)
            .map(|_| {
                app.client
                    .get(format!("{}/api/external/leads?limit=5", app.base_url))
                    .header("X-API-Key", &key)
                    .send()
            })
            .collect();
        async move {
            futures_util::future::join_all(requests)
                .await
                .into_iter()
                .map(|r| r.unwrap().status().as_u16())
                .collect::<Vec<u16>>()
        }
    };
    // Pages at once open several pooled connections.
    assert_eq!(pages(8).await, [200; 8]);
    let killed = terminate_others(&app.db).await;
    assert!(killed >= 2, "the pool held connections to drop ({killed})");
    let first = pages(8).await;
    let failed = first.iter().filter(|s| **s != 200).count();
    assert!(
        first.iter().all(|s| *s == 200 || *s == 503) && failed <= killed,
        "at most one failed request per dropped connection: {first:?}, {killed} dropped"
    );
    assert_eq!(pages(8).await, [200; 8]);
    for _ in 0..4 {
        assert_eq!(pages(1).await, [200]);
    }
}

/// Ends every session of the database but `db`'s own, waiting (up to 5 s each) until they
/// are gone; how many it ended.
async fn terminate_others(db: &ciq_store::Db) -> usize {
    let ended = ciq_e2e::count(
        db,
        "SELECT count(pg_terminate_backend(pid, 5000)) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;
    usize::try_from(ended).unwrap()
}

/// The pool's check, on its own (no gateway tasks taking connections meanwhile): a
/// connection dropped after a second idle is replaced before a statement uses it; one
/// used within the second is not checked, so its next statement may fail, once (the
/// connection is then discarded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_is_checked_before_use_once_it_sat_idle() {
    use sea_orm::ConnectionTrait;
    let Some(database) = TestDatabase::create(Backend::Postgres).await else {
        return;
    };
    let pool = ciq_gateway::database::connect(&database.url).await.unwrap();
    let killer = ciq_gateway::database::connect(&database.url).await.unwrap();
    let select = || {
        pool.query_one_raw(sea_orm::Statement::from_string(
            pool.get_database_backend(),
            "SELECT 1 AS one",
        ))
    };
    // Waits until the sessions are gone: a statement sent before the server acted on the
    // signal would still be answered.
    let kill = || async {
        killer
            .execute_raw(sea_orm::Statement::from_string(
                killer.get_database_backend(),
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            ))
            .await
            .unwrap();
    };
    select().await.unwrap();
    // Idle past the bound: the kept connection went back to the pool after a second
    // (pinged on its way there, a round trip of its own), then sat a second more.
    tokio::time::sleep(ciq_gateway::database::PING_AFTER_IDLE * 3 + Duration::from_millis(300))
        .await;
    kill().await;
    select()
        .await
        .expect("a connection idle past the bound is checked and replaced");
    // Used just now: trusted (not checked; kept between statements, see
    // `ciq_store::kept`), so the drop may show once, and never twice.
    kill().await;
    if select().await.is_err() {
        select()
            .await
            .expect("the dropped connection was discarded");
    }
    select().await.expect("the pool works on");
}

/// `SELECT <sql>` on `db`, its one column `v` read as an `i32`.
async fn select_one(db: &ciq_store::Db, sql: &str) -> Result<i32, sea_orm::DbErr> {
    use sea_orm::ConnectionTrait;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT {sql} AS v"),
        ))
        .await?
        .expect("a SELECT of one value has one row");
    row.try_get::<i32>("", "v")
}

/// A statement that ran to its end leaves its connection kept for the next one, not
/// given back to sqlx's pool (which pings every connection it gets back): the next
/// statement runs on the same server session. At most the stash's bound is kept, and
/// closing the pool gives the kept ones back first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_that_ran_to_its_end_keeps_its_connection_for_the_next() {
    let Some(database) = TestDatabase::create(Backend::Postgres).await else {
        return;
    };
    let db = ciq_gateway::database::connect(&database.url).await.unwrap();
    let pool = db.connection().get_postgres_connection_pool().clone();
    let first = select_one(&db, "pg_backend_pid()").await.unwrap();
    assert_eq!(db.kept_idle(), 1, "the connection is kept");
    assert_eq!(pool.num_idle(), 0, "and not given back to the pool");
    let second = select_one(&db, "pg_backend_pid()").await.unwrap();
    assert_eq!(
        first, second,
        "the next statement runs on the kept connection"
    );

    // Many at once: each takes a connection; afterwards only the bound is kept, the
    // rest went back to the pool.
    let sleeps = (0..20).map(|_| select_one(&db, "(SELECT 1 FROM pg_sleep(0.2))"));
    for value in futures_util::future::join_all(sleeps).await {
        assert_eq!(value.unwrap(), 1);
    }
    assert_eq!(db.kept_idle(), 8, "a quarter of the pool's 32, at most 8");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        pool.num_idle() + db.kept_idle(),
        pool.size() as usize,
        "every connection is kept or idle in the pool: none leaked"
    );

    // Nothing to do for longer than a kept connection is trusted: all given back.
    tokio::time::sleep(ciq_store::kept::Kept::TRUSTED_FOR * 2 + Duration::from_millis(300)).await;
    assert_eq!(db.kept_idle(), 0, "an idle gateway keeps no connection");
    assert_eq!(pool.num_idle(), pool.size() as usize);

    assert_eq!(select_one(&db, "1").await.unwrap(), 1);
    assert_eq!(db.kept_idle(), 1);
    tokio::time::timeout(Duration::from_secs(10), db.close())
        .await
        .expect("closing does not wait for the kept connections")
        .unwrap();
    assert!(pool.is_closed());
    assert_eq!(db.kept_idle(), 0);
}

/// A statement that failed, or was abandoned halfway (a request cancelled while its
/// query ran), is not kept: its connection goes back through sqlx's pool, whose ping
/// drains what the server still had to say, so the next statement reads its own
/// answer — not the abandoned one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_abandoned_statement_does_not_leave_its_connection_kept() {
    let Some(database) = TestDatabase::create(Backend::Postgres).await else {
        return;
    };
    let db = ciq_gateway::database::connect(&database.url).await.unwrap();
    assert_eq!(select_one(&db, "1").await.unwrap(), 1);
    assert_eq!(db.kept_idle(), 1);

    let err = select_one(&db, "1 / 0").await.unwrap_err();
    assert!(err.to_string().contains("division by zero"), "{err}");
    assert_eq!(
        db.kept_idle(),
        0,
        "a failed statement's connection is not kept"
    );
    assert_eq!(select_one(&db, "2").await.unwrap(), 2);
    assert_eq!(db.kept_idle(), 1);

    // Abandoned while the server is still working on it (and will answer later).
    let abandoned = tokio::time::timeout(
        Duration::from_millis(200),
        select_one(&db, "(SELECT 7 FROM pg_sleep(0.5))"),
    )
    .await;
    assert!(abandoned.is_err(), "the statement was still running");
    assert_eq!(
        db.kept_idle(),
        0,
        "an abandoned statement's connection is not kept"
    );
    for expected in [3, 4, 5] {
        assert_eq!(
            select_one(&db, &expected.to_string()).await.unwrap(),
            expected,
            "each statement reads its own answer"
        );
    }
    // And once the abandoned statement has ended on the server, the pool holds no
    // connection that still carries its answer.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let texts: Vec<String> = (0..8)
        .map(|i| format!("(SELECT {i} FROM pg_sleep(0.05))"))
        .collect();
    let answers = texts.iter().map(|sql| select_one(&db, sql));
    for (i, value) in futures_util::future::join_all(answers)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(value.unwrap(), i as i32);
    }
}
