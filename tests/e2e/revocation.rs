//! Revocations that cannot be lost: not to a verification in flight when they land,
//! not to a writer whose clock is wrong. Both races are made deterministic with the
//! verifier's test seams (a pause between the row read and the cache insert, the
//! watcher's poll count) and an explicit writer clock, never with sleeps.

use std::time::{Duration, Instant};

use ciq_admin::keys::{self, Actor, NewKey};
use ciq_e2e::{TestApp, on_every_backend};

on_every_backend!(
    a_revocation_during_a_verification_in_flight_is_not_lost,
    a_writer_clock_far_ahead_hides_no_later_change,
);

/// Waits until `app`'s change watcher has completed `polls` more polls.
async fn watcher_polls(app: &TestApp, polls: u64) {
    let verifier = &app.states.api.verifier;
    let target = verifier.watcher_polls() + polls;
    let deadline = Instant::now() + Duration::from_secs(10);
    while verifier.watcher_polls() < target {
        assert!(
            Instant::now() < deadline,
            "the change watcher stopped polling"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The key is refused by `app` within a second.
async fn refused_within_a_second(app: &TestApp, key: &str) {
    let started = Instant::now();
    while app.create_status(Some(key)).await != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "still accepted after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_revocation_during_a_verification_in_flight_is_not_lost(app: TestApp) {
    let user = app.create_user("owner@acme.test").await;
    let (key_id, key) = app.create_key_with(user, NewKey::default()).await;
    let peer = app.spawn_peer().await;
    assert_eq!(peer.create_status(Some(&key)).await, 201);
    // A verification on `app` reads the (active) row and stops before caching it.
    let pause = app.states.api.verifier.pause_next_load();
    let in_flight = {
        let (client, url, key) = (app.client.clone(), app.base_url.clone(), key.clone());
        tokio::spawn(async move {
            client
                .post(format!("{url}/api/external/leads/create"))
                .header("Content-Type", "application/json")
                .header("X-API-Key", key)
                .body(ciq_e2e::reference_curl_body().to_string())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    pause.reached.await.expect("the load reached its pause");
    // The key is revoked inside that window, and `app`'s watcher sees the change
    // while nothing is cached yet.
    keys::revoke_key(&app.db, key_id, &Actor::cli())
        .await
        .unwrap();
    watcher_polls(&app, 2).await;
    let _ = pause.resume.send(());
    // The stale read is not what gets cached: the request itself is refused...
    assert_eq!(in_flight.await.unwrap(), 401);
    // ...and so is every later one, on both instances.
    refused_within_a_second(&app, &key).await;
    refused_within_a_second(&peer, &key).await;
}

async fn a_writer_clock_far_ahead_hides_no_later_change(app: TestApp) {
    let user = app.create_user("owner@acme.test").await;
    let (first_id, first) = app.create_key_with(user, NewKey::default()).await;
    let (second_id, second) = app.create_key_with(user, NewKey::default()).await;
    let peer = app.spawn_peer().await;
    for instance in [&app, &peer] {
        assert_eq!(instance.create_status(Some(&first)).await, 201);
        assert_eq!(instance.create_status(Some(&second)).await, 201);
    }
    // A writer (another instance, the CLI) whose clock runs a minute fast.
    let fast = ciq_entity::now() + chrono::TimeDelta::seconds(60);
    keys::revoke_key_at(&app.db, first_id, &Actor::cli(), fast)
        .await
        .unwrap();
    refused_within_a_second(&app, &first).await;
    refused_within_a_second(&peer, &first).await;
    // A later change by a writer with the right time is not hidden behind it.
    keys::revoke_key(&app.db, second_id, &Actor::cli())
        .await
        .unwrap();
    refused_within_a_second(&app, &second).await;
    refused_within_a_second(&peer, &second).await;
}
