//! Settings → API Key over HTTP: sign-in, sessions, CSRF, throttling, tenancy.

use std::time::Duration;

use ciq_admin::SecretHasher;
use ciq_e2e::console::{PASSWORD, browser_like_client, hidden_csrf, owner, post_sign_in, sign_in};
use ciq_e2e::{Backend, TestApp};
use reqwest::redirect::Policy;

fn session_cookie(resp: &reqwest::Response) -> String {
    resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn keys_page(app: &TestApp, client: &reqwest::Client) -> (u16, String) {
    let resp = client
        .get(format!("{}/settings/api-keys", app.base_url))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_page_requires_sign_in_and_serves_the_owners_keys() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let user = owner(&app, "owner@acme.test").await;
    let client = browser_like_client();
    let resp = client
        .get(format!("{}/settings/api-keys", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    // The sign-in page comes back to the page asked for.
    assert_eq!(
        resp.headers()["location"],
        "/login?next=%2Fsettings%2Fapi-keys"
    );

    let resp = sign_in(&app, &client, "owner@acme.test", PASSWORD).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/settings/api-keys");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("ciq_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");

    let (status, html) = keys_page(&app, &client).await;
    assert_eq!(status, 200);
    assert!(html.contains("No keys yet"));
    let csrf = hidden_csrf(&html);
    let resp = client
        .post(format!("{}/settings/api-keys", app.base_url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Website <form>"),
            ("expires_in_days", "30"),
            ("scope_create", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let html = resp.text().await.unwrap();
    assert!(html.contains("Website &lt;form&gt;"), "names are escaped");
    let start = html.find("value=\"ciq_").unwrap() + "value=\"".len();
    let key = &html[start..start + ciq_admin::key::KEY_LEN];
    assert!(ciq_admin::key::parse(key).is_ok());
    assert_eq!(app.create_status(Some(key)).await, 201);
    let listed = ciq_admin::keys::list_keys(&app.db, user).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].expires_at.is_some());

    assert_eq!(listed[0].scopes.names(), ["leads:create"]);

    // Shown once: the page never carries the key again.
    let (_, html) = keys_page(&app, &client).await;
    assert!(!html.contains(key));
    assert!(html.contains(&listed[0].display_prefix));

    // The form offers every permission, create ticked; the table says what each key may do.
    assert!(html.contains("name=\"scope_create\" value=\"on\" checked"));
    assert!(html.contains("name=\"scope_read\" value=\"on\">"));
    assert!(html.contains("<td data-label=\"May\">leads:create</td>"));
    let generate = |fields: Vec<(&'static str, &'static str)>| {
        let csrf = hidden_csrf(&html);
        let client = client.clone();
        let url = format!("{}/settings/api-keys", app.base_url);
        async move {
            let mut form = vec![
                ("csrf".to_owned(), csrf),
                ("name".to_owned(), "CRM sync".to_owned()),
            ];
            form.extend(
                fields
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned())),
            );
            client.post(url).form(&form).send().await.unwrap()
        }
    };
    let resp = generate(vec![("scope_read", "on"), ("scope_write", "on")]).await;
    assert_eq!(resp.status(), 201);
    let listed = ciq_admin::keys::list_keys(&app.db, user).await.unwrap();
    let crm = listed.iter().find(|k| k.name == "CRM sync").unwrap();
    assert_eq!(crm.scopes.names(), ["leads:read", "leads:write"]);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("<td data-label=\"May\">leads:read, leads:write</td>")
    );
    // Nothing ticked: refused, nothing made.
    let resp = generate(vec![]).await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Choose at least one thing the key may do.")
    );
    assert_eq!(
        ciq_admin::keys::list_keys(&app.db, user)
            .await
            .unwrap()
            .len(),
        2
    );
    // A browser key: only "create" ticked, with the page's origins.
    assert!(html.contains("name=\"allowed_origins\""));
    let resp = generate(vec![
        ("scope_create", "on"),
        (
            "allowed_origins",
            "https://WWW.Shop.example/\r\nhttps://shop.example",
        ),
    ])
    .await;
    assert_eq!(resp.status(), 201);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("from https://www.shop.example, https://shop.example")
    );
    // Origins on a key that may read, or that are no origins: refused, saying why.
    for (fields, why) in [
        (
            vec![
                ("scope_create", "on"),
                ("scope_read", "on"),
                ("allowed_origins", "https://shop.example"),
            ],
            "only scope is leads:create",
        ),
        (
            vec![
                ("scope_create", "on"),
                ("allowed_origins", "https://shop.example/contact *"),
            ],
            "an origin has no path",
        ),
    ] {
        let resp = generate(fields).await;
        assert_eq!(resp.status(), 422);
        let page = resp.text().await.unwrap();
        assert!(
            page.contains("allowed origins: ") && page.contains(why),
            "{why}"
        );
    }
    let listed = ciq_admin::keys::list_keys(&app.db, user).await.unwrap();
    assert_eq!(listed.len(), 3);
    let web = listed
        .iter()
        .filter(|k| !k.allowed_origins.is_empty())
        .collect::<Vec<_>>();
    assert_eq!(web.len(), 1);
    assert_eq!(
        web[0].allowed_origins.to_stored(),
        "https://www.shop.example https://shop.example"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_and_an_unknown_email_look_the_same() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    owner(&app, "owner@acme.test").await;
    let client = browser_like_client();
    let wrong = sign_in(&app, &client, "owner@acme.test", "not the password").await;
    let unknown = sign_in(&app, &client, "nobody@acme.test", "not the password").await;
    assert_eq!(
        (wrong.status(), unknown.status()),
        (401.try_into().unwrap(), 401.try_into().unwrap())
    );
    let wrong = wrong.text().await.unwrap();
    let unknown = unknown.text().await.unwrap();
    let message = "That email and password do not match an account.";
    assert!(wrong.contains(message) && unknown.contains(message));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_throttled_per_email() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    owner(&app, "owner@acme.test").await;
    let client = browser_like_client();
    for _ in 0..ciq_console::LOGIN_ATTEMPTS_PER_PAIR {
        assert_eq!(
            sign_in(&app, &client, "owner@acme.test", "wrong")
                .await
                .status(),
            401
        );
    }
    // Even the right password waits now.
    let resp = sign_in(&app, &client, "owner@acme.test", PASSWORD).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    // Another account from the same address is not locked out by it.
    owner(&app, "other@acme.test").await;
    assert_eq!(
        sign_in(&app, &client, "other@acme.test", PASSWORD)
            .await
            .status(),
        303
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_right_csrf_token_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let user = owner(&app, "owner@acme.test").await;
    let client = browser_like_client();
    // Sign-in without the double-submit cookie's value.
    let resp = client
        .post(format!("{}/login", app.base_url))
        .form(&[
            ("email", "owner@acme.test"),
            ("password", PASSWORD),
            ("csrf", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        sign_in(&app, &client, "owner@acme.test", PASSWORD)
            .await
            .status(),
        303
    );
    for csrf in ["", "forged-token-of-the-right-size!!"] {
        let resp = client
            .post(format!("{}/settings/api-keys", app.base_url))
            .form(&[("csrf", csrf), ("name", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{csrf:?}");
    }
    assert!(
        ciq_admin::keys::list_keys(&app.db, user)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_and_sign_out_ends_them() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.session_ttl = Duration::from_secs(1))
        .await
        .unwrap();
    owner(&app, "owner@acme.test").await;
    let client = browser_like_client();
    let resp = sign_in(&app, &client, "owner@acme.test", PASSWORD).await;
    let token = session_cookie(&resp);
    assert_eq!(keys_page(&app, &client).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The browser drops the cookie (Max-Age); the server refuses it on its own too.
    let resp = client
        .get(format!("{}/settings/api-keys", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["location"],
        "/login?next=%2Fsettings%2Fapi-keys"
    );
    let replay = ciq_e2e::http_client_builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let resp = replay
        .get(format!("{}/settings/api-keys", app.base_url))
        .header("Cookie", token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        "/login?expired=1&next=%2Fsettings%2Fapi-keys"
    );

    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    owner(&app, "owner@acme.test").await;
    let client = browser_like_client();
    let resp = sign_in(&app, &client, "owner@acme.test", PASSWORD).await;
    let token = session_cookie(&resp);
    let (_, html) = keys_page(&app, &client).await;
    let resp = client
        .post(format!("{}/logout", app.base_url))
        .form(&[("csrf", hidden_csrf(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    // The old cookie, replayed, opens nothing.
    let replay = ciq_e2e::http_client_builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let resp = replay
        .get(format!("{}/settings/api-keys", app.base_url))
        .header("Cookie", token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_cannot_touch_another_owners_keys() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let alice = owner(&app, "alice@acme.test").await;
    owner(&app, "bob@acme.test").await;
    let (alice_key_id, alice_key) = app.create_key_with(alice, Default::default()).await;
    let bob = browser_like_client();
    sign_in(&app, &bob, "bob@acme.test", PASSWORD).await;
    let (_, html) = keys_page(&app, &bob).await;
    assert!(!html.contains(&alice_key[..12]));
    let csrf = hidden_csrf(&html);
    let page = bob
        .get(format!(
            "{}/settings/api-keys/{alice_key_id}/revoke",
            app.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    for action in ["revoke", "roll"] {
        let resp = bob
            .post(format!(
                "{}/settings/api-keys/{alice_key_id}/{action}",
                app.base_url
            ))
            .form(&[("csrf", csrf.as_str()), ("overlap_seconds", "0")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{action}");
    }
    assert_eq!(app.create_status(Some(&alice_key)).await, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_behind_tls() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.trust_forwarded_for = true)
        .await
        .unwrap();
    owner(&app, "owner@acme.test").await;
    let client = ciq_e2e::http_client_builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(format!("{}/login", app.base_url))
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-ciq_login_csrf="), "{cookie}");
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    // A whole sign-in over TLS: the session cookie is a __Host- one, and it opens the page.
    let csrf = hidden_csrf(&page.text().await.unwrap());
    let csrf_cookie = cookie.split(';').next().unwrap().to_owned();
    let resp = post_sign_in(&app, &client, &csrf_cookie, &csrf, true).await;
    assert_eq!(resp.status(), 303);
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.contains("ciq_session="))
        .unwrap();
    assert!(session.starts_with("__Host-ciq_session="), "{session}");
    assert!(session.contains("; Secure"), "{session}");
    let session = session.split(';').next().unwrap().to_owned();
    let over_tls = client
        .get(format!("{}/settings/api-keys", app.base_url))
        .header("X-Forwarded-Proto", "https")
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(over_tls.status(), 200);
    // The same cookie sent over plain HTTP is not the session's: HSTS aside, a cookie
    // planted without TLS can never pass for a __Host- one either.
    let plain = client
        .get(format!("{}/settings/api-keys", app.base_url))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 303);
    assert!(plain.headers().get("strict-transport-security").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_forwarded_proto_changes_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let page = app
        .client
        .get(format!("{}/login", app.base_url))
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert!(page.headers().get("strict-transport-security").is_none());
    let cookie = page.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("ciq_login_csrf="), "{cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_configured_sessions_live_in_redis() {
    let Some(url) = ciq_e2e::test_redis_url().await else {
        return;
    };
    let prefix = ciq_e2e::unique_redis_prefix();
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.redis_url = Some(url.clone().into());
        s.redis_prefix = prefix.clone();
    })
    .await
    .unwrap();
    owner(&app, "owner@acme.test").await;
    let client = browser_like_client();
    assert_eq!(
        sign_in(&app, &client, "owner@acme.test", PASSWORD)
            .await
            .status(),
        303
    );
    let (status, html) = keys_page(&app, &client).await;
    assert_eq!(status, 200);

    let redis = ::redis::Client::open(url).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let stored: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}session:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(&stored[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 11 * 3600 * 1000, "{ttl}");
    use sea_orm::EntityTrait;
    assert!(
        ciq_entity::Session::find()
            .all(&app.db)
            .await
            .unwrap()
            .is_empty()
    );

    client
        .post(format!("{}/logout", app.base_url))
        .form(&[("csrf", hidden_csrf(&html))])
        .send()
        .await
        .unwrap();
    let exists: i64 = ::redis::cmd("EXISTS")
        .arg(&stored[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0);
}

/// Sends `head` and then `body` over a raw connection and returns the status of the
/// answer (read as soon as it comes, whether or not the server read the body).
async fn raw_status(app: &TestApp, head: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base_url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before all of it is sent.
    let _ = conn.write_all(body).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_forms_are_refused_with_413_before_they_are_read() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    // A declared 10 GB sign-in: refused on its Content-Length.
    let head = "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 10000000000\r\n\r\n";
    assert_eq!(
        raw_status(&app, head, b"email=a%40acme.test&password=").await,
        413
    );
    // Chunked, so no length is declared: refused once more than the limit arrived.
    let head = "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
    let chunk = format!("4000\r\n{}\r\n", "a".repeat(0x4000));
    let body = chunk.repeat(8);
    assert_eq!(raw_status(&app, head, body.as_bytes()).await, 413);
    // A form of ordinary size still works.
    let resp = app.get("/login").await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_or_password_longer_than_any_accounts_is_refused_before_any_work() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    owner(&app, "owner@acme.test").await;
    let client = browser_like_client();
    let long_email = format!("{}@acme.test", "a".repeat(300));
    let resp = sign_in(&app, &client, &long_email, PASSWORD).await;
    assert_eq!(resp.status(), 422);
    let resp = sign_in(&app, &client, "owner@acme.test", &"p".repeat(129)).await;
    assert_eq!(resp.status(), 422);
    // Neither counted as a failed sign-in: the owner still has every attempt, and then
    // the right password signs in.
    for _ in 0..ciq_console::LOGIN_ATTEMPTS_PER_PAIR - 1 {
        let resp = sign_in(&app, &client, "owner@acme.test", "wrong password!").await;
        assert_eq!(resp.status(), 401);
    }
    assert_eq!(
        sign_in(&app, &client, "owner@acme.test", PASSWORD)
            .await
            .status(),
        303
    );
}

/// Signs in on `devices` browsers and returns them, each with its own session.
async fn signed_in_devices(app: &TestApp, devices: usize) -> Vec<reqwest::Client> {
    let mut clients = Vec::new();
    for _ in 0..devices {
        let client = browser_like_client();
        let resp = sign_in(app, &client, "owner@acme.test", PASSWORD).await;
        assert_eq!(resp.status(), 303);
        assert_eq!(keys_page(app, &client).await.0, 200);
        clients.push(client);
    }
    clients
}

async fn a_password_change_ends_every_session(app: TestApp) {
    let id = owner(&app, "owner@acme.test").await;
    let devices = signed_in_devices(&app, 2).await;
    // What `ciq-gateway users set-password` does.
    ciq_admin::users::set_password(
        &app.db,
        &SecretHasher::default(),
        id,
        &"a brand new passphrase".into(),
    )
    .await
    .unwrap();
    for device in &devices {
        let (status, _) = keys_page(&app, device).await;
        assert_eq!(status, 303, "a session survived the password change");
    }
    // The new password opens a new session.
    let client = browser_like_client();
    let resp = sign_in(&app, &client, "owner@acme.test", "a brand new passphrase").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(keys_page(&app, &client).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_ends_every_session_in_the_database_store() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    a_password_change_ends_every_session(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_ends_every_session_in_the_redis_store() {
    let Some(url) = ciq_e2e::test_redis_url().await else {
        return;
    };
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.redis_url = Some(url.into());
        s.redis_prefix = ciq_e2e::unique_redis_prefix();
    })
    .await
    .unwrap();
    a_password_change_ends_every_session(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_everywhere_ends_the_sessions_of_every_device() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    owner(&app, "owner@acme.test").await;
    let devices = signed_in_devices(&app, 3).await;
    let (_, html) = keys_page(&app, &devices[0]).await;
    assert!(html.contains("action=\"/logout/everywhere\""));
    let resp = devices[0]
        .post(format!("{}/logout/everywhere", app.base_url))
        .form(&[("csrf", hidden_csrf(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/login");
    for device in &devices {
        assert_eq!(keys_page(&app, device).await.0, 303);
    }
    // A forged form ends nothing.
    let devices = signed_in_devices(&app, 1).await;
    let resp = devices[0]
        .post(format!("{}/logout/everywhere", app.base_url))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(keys_page(&app, &devices[0]).await.0, 200);
}

/// A sign-in form's token and its cookie, for requests sent by hand.
async fn login_form_token(app: &TestApp) -> (String, String) {
    let page = app.get("/login").await;
    let cookie = session_cookie(&page);
    (hidden_csrf(&page.text().await.unwrap()), cookie)
}

/// `POST /login` with a given form token and cookie, from `address` (the gateway
/// trusts X-Forwarded-For in these tests).
async fn post_login(
    app: &TestApp,
    (csrf, cookie): &(String, String),
    address: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    ciq_e2e::http_client_builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/login", app.base_url))
        .header("Cookie", cookie)
        .header("X-Forwarded-For", address)
        .form(&[("email", email), ("password", password), ("csrf", csrf)])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_get_no_more_password_checks_than_the_limit() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.trust_forwarded_for = true)
        .await
        .unwrap();
    owner(&app, "owner@acme.test").await;
    let form = login_form_token(&app).await;
    let guesses = (0..50).map(|i| {
        let (app, form) = (&app, &form);
        async move {
            post_login(
                app,
                form,
                "198.51.100.7",
                "owner@acme.test",
                &format!("guess {i:02}"),
            )
            .await
        }
    });
    let statuses: Vec<u16> = futures_util::future::join_all(guesses)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    let throttled = statuses.iter().filter(|&&s| s == 429).count();
    assert!(
        checked <= ciq_console::LOGIN_ATTEMPTS_PER_PAIR as usize,
        "{checked} password checks: {statuses:?}"
    );
    assert_eq!(checked + throttled, 50, "{statuses:?}");
    // The owner, from an address of their own, is not locked out by the guesser.
    let resp = post_login(&app, &form, "203.0.113.9", "owner@acme.test", PASSWORD).await;
    assert_eq!(resp.status(), 303);
    // The guesser's next /64 neighbour is the same guesser.
    let resp = post_login(&app, &form, "2001:db8:1:2::1", "owner@acme.test", "x").await;
    assert_eq!(resp.status(), 401);
    for i in 0..ciq_console::LOGIN_ATTEMPTS_PER_PAIR {
        let resp = post_login(
            &app,
            &form,
            &format!("2001:db8:1:2::{:x}", i + 2),
            "owner@acme.test",
            "x",
        )
        .await;
        let expected = if i + 1 < ciq_console::LOGIN_ATTEMPTS_PER_PAIR {
            401
        } else {
            429
        };
        assert_eq!(resp.status(), expected, "attempt {}", i + 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sign_in_queue_answers_503_at_once_and_counts_nothing() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.trust_forwarded_for = true)
        .await
        .unwrap();
    owner(&app, "owner@acme.test").await;
    let form = login_form_token(&app).await;
    let slots = app.states.console.sign_in_slots.clone();
    let held = slots
        .acquire_many(ciq_console::state::MAX_SIGN_INS_IN_FLIGHT as u32)
        .await
        .unwrap();
    for _ in 0..ciq_console::LOGIN_ATTEMPTS_PER_PAIR + 2 {
        let resp = post_login(&app, &form, "198.51.100.7", "owner@acme.test", "wrong").await;
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "1");
    }
    drop(held);
    // None of those counted: every attempt is still there, and the password works.
    for _ in 0..ciq_console::LOGIN_ATTEMPTS_PER_PAIR - 1 {
        let resp = post_login(&app, &form, "198.51.100.7", "owner@acme.test", "wrong").await;
        assert_eq!(resp.status(), 401);
    }
    let resp = post_login(&app, &form, "198.51.100.7", "owner@acme.test", PASSWORD).await;
    assert_eq!(resp.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_takes_an_email_not_a_user_id() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let id = owner(&app, "owner@acme.test").await;
    let client = browser_like_client();
    let resp = sign_in(&app, &client, &id.to_string(), PASSWORD).await;
    assert_eq!(resp.status(), 401);
    let resp = sign_in(&app, &client, &id.to_string().to_uppercase(), PASSWORD).await;
    assert_eq!(resp.status(), 401);
}
