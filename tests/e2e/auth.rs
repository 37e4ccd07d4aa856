//! Keys on the hot path: cache, revocation, expiry, and no plaintext anywhere.

use std::time::Duration;

use ciq_admin::keys::{self, NewKey};
use ciq_e2e::{Backend, TestApp, on_every_backend, reference_curl_body};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::Value;

on_every_backend!(
    a_known_key_costs_one_argon2_run_then_none,
    a_wrong_secret_for_a_cached_key_is_refused_without_argon2,
    a_revoked_key_is_refused_within_a_second,
    an_expired_key_is_refused,
    no_plaintext_key_is_stored_anywhere,
);

async fn a_known_key_costs_one_argon2_run_then_none(app: TestApp) {
    let (_, key) = app.user_with_key("owner@acme.test").await;
    for _ in 0..5 {
        assert_eq!(app.create_status(Some(&key)).await, 201);
    }
    assert_eq!(app.states.api.verifier.argon2_runs(), 1);
    assert_eq!(app.states.api.verifier.cache_hits(), 4);
}

async fn a_wrong_secret_for_a_cached_key_is_refused_without_argon2(app: TestApp) {
    let (_, key) = app.user_with_key("owner@acme.test").await;
    assert_eq!(app.create_status(Some(&key)).await, 201);
    // Same lookup id, different secret, valid checksum.
    let (other, _) = ciq_admin::key::generate();
    let forged_body = format!("{}{}", &key[..4 + 12], &other.expose()[4 + 12..4 + 12 + 32]);
    let forged = format!(
        "{forged_body}{}",
        ciq_admin::key::checksum_suffix(&forged_body)
    );
    assert!(ciq_admin::key::parse(&forged).is_ok());
    let resp = app.post_lead(Some(&forged), &reference_curl_body()).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(app.states.api.verifier.argon2_runs(), 1);
}

async fn a_revoked_key_is_refused_within_a_second(app: TestApp) {
    let user = app.create_user("owner@acme.test").await;
    let (key_id, key) = app.create_key_with(user, NewKey::default()).await;
    assert_eq!(app.create_status(Some(&key)).await, 201);
    // Revoked through the store directly, as the CLI or another instance would.
    keys::revoke_key(&app.db, key_id, &keys::Actor::cli())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let resp = app.post_lead(Some(&key), &reference_curl_body()).await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert_eq!(body["error"]["message"], "the API key has been revoked");
}

async fn an_expired_key_is_refused(app: TestApp) {
    let user = app.create_user("owner@acme.test").await;
    let expires_at = chrono::Utc::now() + chrono::TimeDelta::milliseconds(800);
    let (_, key) = app
        .create_key_with(
            user,
            NewKey {
                expires_at: Some(expires_at),
                ..NewKey::default()
            },
        )
        .await;
    assert_eq!(app.create_status(Some(&key)).await, 201);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let resp = app.post_lead(Some(&key), &reference_curl_body()).await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["message"], "the API key has expired");
}

async fn no_plaintext_key_is_stored_anywhere(app: TestApp) {
    let (_, key) = app.user_with_key("owner@acme.test").await;
    assert_eq!(app.create_status(Some(&key)).await, 201);
    let parsed = ciq_admin::key::parse(&key).unwrap();
    let secret = parsed.secret().to_owned();

    // Every text value of every table.
    let backend = app.db.get_database_backend();
    for table in ["users", "api_keys", "leads"] {
        let sql = match app.backend {
            Backend::Postgres | Backend::PgBouncer => {
                format!("SELECT row_to_json(t)::text AS j FROM {table} t")
            }
            Backend::Sqlite => format!("SELECT * FROM {table}"),
        };
        let rows = app
            .db
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .unwrap();
        assert!(!rows.is_empty(), "{table} is empty");
        let dump = format!("{rows:?}");
        assert!(!dump.contains(&secret), "secret found in {table}");
        assert!(!dump.contains(&key), "key found in {table}");
    }
    let stored: String = app
        .db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT secret_hash FROM api_keys",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "secret_hash")
        .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );

    // For SQLite, the raw database files too (including the write-ahead log).
    if let Some(folder) = app.database.sqlite_folder() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let haystack = String::from_utf8_lossy(&bytes);
            assert!(!haystack.contains(&secret));
        }
    }
}
