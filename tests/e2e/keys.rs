//! Key lifecycle rules that hold under concurrency and failure: the active-key cap,
//! rolls, names, and keys written together with their history.

use ciq_admin::keys::{self, Actor, KeyStatus, NewKey};
use ciq_admin::{AdminError, SecretHasher};
use ciq_e2e::{TestApp, on_every_backend};
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
use std::time::Duration;

on_every_backend!(
    rolls_with_an_overlap_need_a_free_place_and_immediate_ones_do_not,
    concurrent_creates_cannot_exceed_the_cap,
    key_names_refuse_control_characters,
    a_key_is_never_stored_without_its_event,
);

const MAX: usize = keys::MAX_ACTIVE_KEYS_PER_USER;

async fn active_keys(app: &TestApp, user: uuid::Uuid) -> usize {
    keys::list_keys(&app.db, user)
        .await
        .unwrap()
        .iter()
        .filter(|k| k.status == KeyStatus::Active)
        .count()
}

async fn fill(app: &TestApp, user: uuid::Uuid, n: usize) -> Vec<uuid::Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(app.create_key_with(user, NewKey::default()).await.0);
    }
    ids
}

async fn roll(app: &TestApp, key: uuid::Uuid, overlap: u64) -> Result<(), AdminError> {
    keys::roll_key(
        &app.db,
        &SecretHasher::default(),
        None,
        key,
        Duration::from_secs(overlap),
        &Actor::cli(),
    )
    .await
    .map(drop)
}

async fn rolls_with_an_overlap_need_a_free_place_and_immediate_ones_do_not(app: TestApp) {
    let user = app.create_user("owner@acme.test").await;
    let ids = fill(&app, user, MAX).await;
    // Both keys would work during the overlap: a 21st active key. Refused.
    assert!(matches!(
        roll(&app, ids[0], 3600).await,
        Err(AdminError::TooManyKeys(_))
    ));
    assert_eq!(active_keys(&app, user).await, MAX);
    // An immediate roll replaces the key in its place.
    roll(&app, ids[0], 0).await.unwrap();
    assert_eq!(active_keys(&app, user).await, MAX);
    // Rolling again and again never buys more keys.
    let user2 = app.create_user("other@acme.test").await;
    let mut key = fill(&app, user2, 1).await[0];
    for _ in 0..MAX + 5 {
        if roll(&app, key, 3600).await.is_err() {
            break;
        }
        key = keys::list_keys(&app.db, user2).await.unwrap()[0].id;
    }
    assert_eq!(active_keys(&app, user2).await, MAX);
}

async fn concurrent_creates_cannot_exceed_the_cap(app: TestApp) {
    let user = app.create_user("owner@acme.test").await;
    fill(&app, user, MAX - 1).await;
    let attempts = (0..8).map(|_| {
        let db = app.db.clone();
        tokio::spawn(async move {
            keys::create_key(
                &db,
                &SecretHasher::default(),
                user,
                NewKey::default(),
                &Actor::cli(),
            )
            .await
        })
    });
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(AdminError::TooManyKeys(_)))))
        .count();
    assert_eq!((created, refused), (1, 7), "{results:?}");
    assert_eq!(active_keys(&app, user).await, MAX);
}

async fn key_names_refuse_control_characters(app: TestApp) {
    let user = app.create_user("owner@acme.test").await;
    for name in ["evil\u{1b}[2J", "two\nlines", "nul\u{0}"] {
        let err = keys::create_key(
            &app.db,
            &SecretHasher::default(),
            user,
            NewKey {
                name: name.into(),
                ..NewKey::default()
            },
            &Actor::cli(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, AdminError::Invalid { field: "name", .. }),
            "{name:?}: {err:?}"
        );
    }
    assert_eq!(active_keys(&app, user).await, 0);
}

async fn a_key_is_never_stored_without_its_event(app: TestApp) {
    let user = app.create_user("owner@acme.test").await;
    let key = fill(&app, user, 1).await[0];
    // The history table goes away: every change that cannot be recorded must not happen.
    app.db
        .execute_unprepared("ALTER TABLE key_events RENAME TO key_events_away")
        .await
        .unwrap();
    let created = keys::create_key(
        &app.db,
        &SecretHasher::default(),
        user,
        NewKey::default(),
        &Actor::cli(),
    )
    .await;
    assert!(created.is_err());
    assert!(roll(&app, key, 0).await.is_err());
    assert!(keys::revoke_key(&app.db, key, &Actor::cli()).await.is_err());
    app.db
        .execute_unprepared("ALTER TABLE key_events_away RENAME TO key_events")
        .await
        .unwrap();
    assert_eq!(ciq_entity::ApiKey::find().count(&app.db).await.unwrap(), 1);
    let row = keys::find_key(&app.db, key).await.unwrap();
    assert!(
        row.revoked_at.is_none() && row.expires_at.is_none(),
        "{row:?}"
    );
}
