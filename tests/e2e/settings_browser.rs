//! Settings → API Key in headless Chromium, as an account owner uses it.

use std::time::{Duration, Instant};

use ciq_admin::SecretHasher;
use ciq_e2e::browser::Browser;
use ciq_e2e::{Backend, TestApp};
use fantoccini::{Client, Locator};

async fn find(c: &Client, css: &'static str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
}

/// The key the page shows once — not `previous`, which the page being left may still
/// show. The element is looked up again if it belonged to that page (a form post
/// replaces the document under a found element).
async fn shown_key(c: &Client, previous: Option<&str>) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let read = find(c, "#new-key").await.prop("value").await;
        match read {
            Ok(Some(key)) if Some(key.as_str()) != previous => {
                assert!(ciq_admin::key::parse(&key).is_ok(), "{key}");
                return key;
            }
            other => {
                assert!(Instant::now() < deadline, "no key shown: {other:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn until_refused(app: &TestApp, key: &str) {
    let started = Instant::now();
    while app.create_status(Some(key)).await != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "still accepted after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_generates_uses_rolls_and_revokes_a_key_in_the_browser() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let Some(browser) = Browser::start().await else {
        return;
    };
    let user = app.create_user("owner@acme.test").await;
    ciq_admin::users::set_password(
        &app.db,
        &SecretHasher::default(),
        user,
        &"correct horse battery".into(),
    )
    .await
    .unwrap();
    let c = &browser.client;

    // Signed out, the settings page sends you to sign in.
    c.goto(&format!("{}/settings/api-keys", app.base_url))
        .await
        .unwrap();
    find(c, "#email")
        .await
        .send_keys("owner@acme.test")
        .await
        .unwrap();
    find(c, "#password")
        .await
        .send_keys("correct horse battery")
        .await
        .unwrap();
    find(c, "form[action='/login'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();

    // Generate: the key is on the page, once.
    find(c, "#key-name")
        .await
        .send_keys("Website form")
        .await
        .unwrap();
    find(c, "#generate-title + form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let first = shown_key(c, None).await;
    assert!(
        c.source()
            .await
            .unwrap()
            .contains("It will not be shown again")
    );
    assert_eq!(app.create_status(Some(&first)).await, 201);

    // Roll, old key stopping immediately: a new key is shown; the old one stops.
    find(c, "select[name=overlap_seconds]")
        .await
        .select_by_value("0")
        .await
        .unwrap();
    find(c, "button[aria-label='Roll Website form']")
        .await
        .click()
        .await
        .unwrap();
    let second = shown_key(c, Some(&first)).await;
    assert_ne!(first, second);
    until_refused(&app, &first).await;
    assert_eq!(app.create_status(Some(&second)).await, 201);

    // Revoke, with confirmation.
    c.goto(&format!("{}/settings/api-keys", app.base_url))
        .await
        .unwrap();
    find(c, "a[aria-label='Revoke Website form']")
        .await
        .click()
        .await
        .unwrap();
    find(c, "form[action$='/revoke'] button.danger")
        .await
        .click()
        .await
        .unwrap();
    find(c, ".notice").await;
    until_refused(&app, &second).await;

    // Reloaded, the page never shows either key again, only their prefixes.
    c.goto(&format!("{}/settings/api-keys", app.base_url))
        .await
        .unwrap();
    let page = c.source().await.unwrap();
    assert!(!page.contains(&first) && !page.contains(&second));
    assert!(page.contains(&second[..12]));
    assert!(page.contains("revoked") && page.contains("rolled"));
    browser.close().await;
}
