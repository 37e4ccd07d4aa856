//! Settings → a key's page: its usage chart with totals and its request log, both
//! exportable as CSV; only its owner reaches any of it.

use ciq_admin::keys::NewKey;
use ciq_admin::{Scope, Scopes};
use ciq_e2e::console::{browser_like_client, get_html, signed_in};
use ciq_e2e::{Backend, TestApp, reference_curl_body};
use serde_json::json;

ciq_e2e::with_each_backend!(
    a_key_page_shows_its_usage_and_log_and_exports_both,
    another_owner_reaches_nothing_of_a_key_page,
    the_overview_adds_up_the_owners_leads_keys_and_nothing_else,
    revoked_keys_fold_away_activity_names_its_key_and_unknown_pages_are_html,
    signing_in_comes_back_to_the_page_asked_for,
    an_owner_changes_their_password_and_other_sessions_end,
    a_refused_key_form_keeps_what_was_typed,
    a_refused_endpoint_form_keeps_its_url_and_events,
    an_owner_changes_a_keys_name_limits_origins_and_challenge,
);

/// A key that made 2 creates, a refused create (with a user agent that would be a
/// formula in a spreadsheet) and a refused list: its page counts them, draws them, lists
/// the two refusals with their request ids, and exports both.
async fn a_key_page_shows_its_usage_and_log_and_exports_both(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let owner = signed_in(&app, "owner@acme.test", "/settings/api-keys").await;
    let (key_id, key) = app
        .create_key_with(
            owner.user,
            NewKey {
                name: "Website form".into(),
                scopes: Scopes::of(&[Scope::LeadsCreate, Scope::LeadsRead]),
                ..NewKey::default()
            },
        )
        .await;
    for _ in 0..2 {
        assert_eq!(
            app.post_lead(Some(&key), &reference_curl_body())
                .await
                .status(),
            201
        );
    }
    let mut broken = reference_curl_body();
    broken["lead"]["email"] = json!("not-an-email");
    let refused = app
        .client
        .post(format!("{}/api/external/leads/create", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", &key)
        .header("User-Agent", "=HYPERLINK(\"http://evil.example\")")
        .body(broken.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let request_id = refused.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let listed = app
        .client
        .get(format!("{}/api/external/leads?limit=0", app.base_url))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 422);
    app.states.usage.flush().await.unwrap();

    let path = format!("/settings/api-keys/{key_id}");
    let (status, html) = get_html(&owner.client, &app, &path).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Website form"));
    assert!(html.contains("<b>4</b><span>requests</span>"), "{html}");
    assert!(html.contains("<b>2</b><span>not 2xx</span>"));
    assert!(html.contains("<b>2</b><span>leads stored</span>"));
    assert!(html.contains("<svg"), "a chart");
    assert!(html.contains("Requests by outcome, last 24 hours: 4 in all over 24 bars"));
    assert!(html.contains(&request_id), "the log names the request id");
    assert!(html.contains("lead.email"));
    assert!(!html.contains(&key), "never the key");
    // The keys list leads here.
    let (_, list) = get_html(&owner.client, &app, "/settings/api-keys").await;
    assert!(list.contains(&format!("href=\"{path}\"")));

    // Other spans and filters.
    let (status, month) = get_html(&owner.client, &app, &format!("{path}?range=30d")).await;
    assert_eq!(status, 200);
    assert!(month.contains("over 30 bars"));
    let (_, failed) = get_html(&owner.client, &app, &format!("{path}?status=5xx")).await;
    assert!(failed.contains("Nothing here"));
    assert!(!failed.contains(&request_id));
    for bad in ["?range=1y", "?status=200", "?cursor=xyz"] {
        let (status, page) = get_html(&owner.client, &app, &format!("{path}{bad}")).await;
        assert_eq!(status, 422, "{bad}: {page}");
    }

    // The exports.
    let resp = owner
        .client
        .get(format!("{}{path}/usage.csv", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"usage-ciq_")
    );
    let csv = resp.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 25, "the header and 24 hours");
    assert_eq!(
        lines[0],
        "start,success,client_error,rate_limited,server_error,leads_created,spam,dropped"
    );
    assert!(lines[24].ends_with(",2,2,0,0,2,0,0"), "{csv}");
    let csv = owner
        .client
        .get(format!("{}{path}/requests.csv", app.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains(&request_id));
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://evil.example\"\")\""),
        "the formula guard: {csv}"
    );
    app.stop().await;
}

/// Another owner's key id is "not found" on the page and both exports; signed out, the
/// page sends to sign-in.
async fn another_owner_reaches_nothing_of_a_key_page(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let owner = app.create_user("owner@acme.test").await;
    let (key_id, _) = app.create_key_with(owner, NewKey::default()).await;
    let other = signed_in(&app, "other@else.test", "/settings/api-keys").await;
    for suffix in ["", "/usage.csv", "/requests.csv"] {
        let path = format!("/settings/api-keys/{key_id}{suffix}");
        let (status, html) = get_html(&other.client, &app, &path).await;
        assert_eq!(status, 404, "{path}: {html}");
        assert!(html.contains("Key not found"));
    }
    let stranger = browser_like_client();
    let resp = stranger
        .get(format!("{}/settings/api-keys/{key_id}", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap();
    assert_eq!(
        location,
        format!("/login?next=%2Fsettings%2Fapi-keys%2F{key_id}")
    );
    app.stop().await;
}

/// The overview: the owner's leads of 30 days (spam left out), their sources, what each
/// active key did in 24 hours; another owner's leads and keys are not in any figure.
async fn the_overview_adds_up_the_owners_leads_keys_and_nothing_else(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let owner = signed_in(&app, "owner@acme.test", "/settings").await;
    let (_, web) = app
        .create_key_with(
            owner.user,
            NewKey {
                name: "Website form".into(),
                ..NewKey::default()
            },
        )
        .await;
    let (_, crm) = app
        .create_key_with(
            owner.user,
            NewKey {
                name: "CRM sync".into(),
                ..NewKey::default()
            },
        )
        .await;
    let lead = |source: &str| {
        let mut body = reference_curl_body();
        body["lead"]["source"] = json!(source);
        body
    };
    for _ in 0..3 {
        assert_eq!(
            app.post_lead(Some(&web), &lead("Website Form"))
                .await
                .status(),
            201
        );
    }
    assert_eq!(app.post_lead(Some(&crm), &lead("CRM")).await.status(), 201);
    let mut spam = lead("Spam Source");
    spam["honeypot"] = json!("bot");
    assert_eq!(app.post_lead(Some(&web), &spam).await.status(), 201);
    let mut broken = lead("CRM");
    broken["lead"]["email"] = json!("nope");
    assert_eq!(app.post_lead(Some(&crm), &broken).await.status(), 422);
    let (_, stranger) = app.user_with_key("other@else.test").await;
    for _ in 0..5 {
        assert_eq!(
            app.post_lead(Some(&stranger), &lead("Elsewhere"))
                .await
                .status(),
            201
        );
    }
    app.states.usage.flush().await.unwrap();

    let (status, html) = get_html(&owner.client, &app, "/settings").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("<b>4</b><span>leads in 30 days</span>"),
        "{html}"
    );
    assert!(html.contains("<b>4</b><span>today</span>"));
    assert!(html.contains("<b>6</b><span>API requests in 24 hours</span>"));
    assert!(html.contains("<b>1</b><span>of them not 2xx</span>"));
    assert!(html.contains("Leads per day, last 30 days: 4 in all over 30 bars"));
    let website = html.find(">Website Form</a>").expect("the top source");
    let crm_source = html.find(">CRM</a>").expect("the second source");
    assert!(website < crm_source, "most first");
    assert!(html.contains("75 %") && html.contains("25 %"));
    assert!(!html.contains("Elsewhere") && !html.contains("Spam Source"));
    assert!(html.contains("Website form") && html.contains("CRM sync"));
    assert!(html.contains("No import under way."));
    assert!(html.contains("aria-current=\"page\">Overview</a>"));
    app.stop().await;
}

/// Revoked keys are folded away under the working ones; each line of the key activity
/// names its key; a path under Settings that is no page answers an HTML 404.
async fn revoked_keys_fold_away_activity_names_its_key_and_unknown_pages_are_html(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let owner = signed_in(&app, "owner@acme.test", "/settings/api-keys").await;
    let named = |name: &str| NewKey {
        name: name.into(),
        ..NewKey::default()
    };
    let (old_id, _) = app.create_key_with(owner.user, named("Old form")).await;
    app.create_key_with(owner.user, named("Live form")).await;
    ciq_admin::keys::revoke_key(&app.db, old_id, &ciq_admin::keys::Actor::cli())
        .await
        .unwrap();
    let (status, html) = get_html(&owner.client, &app, "/settings/api-keys").await;
    assert_eq!(status, 200);
    let folded = html
        .find("<details class=\"revoked\">")
        .expect("revoked keys folded");
    let live = html.find(">Live form</a>").unwrap();
    let old = html.rfind(">Old form</a>").unwrap();
    assert!(
        live < folded && folded < old,
        "live first, the revoked one folded below"
    );
    assert!(html.contains("Revoked keys (1)"));
    // The activity names the key: "revoked “Old form”".
    assert!(
        html.contains(&format!(
            "<strong>revoked</strong> <a href=\"/settings/api-keys/{old_id}\">“Old form”</a>"
        )),
        "{html}"
    );
    for path in ["/settings/nothing-here", "/settings/api-keys/x/y/z"] {
        let resp = owner
            .client
            .get(format!("{}{path}", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(resp.text().await.unwrap().contains("Page not found"));
    }
    app.stop().await;
}

/// Signing in comes back to the Settings page that sent to the sign-in, never to
/// another site: a `next` that is not a Settings path of this gateway lands on the keys.
async fn signing_in_comes_back_to_the_page_asked_for(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    ciq_e2e::console::owner(&app, "owner@acme.test").await;
    let cases = [
        (
            "/settings/leads?status=new",
            true,
            "/settings/leads?status=new",
        ),
        ("//evil.example/settings", false, "/settings/api-keys"),
        ("https://evil.example/settings", false, "/settings/api-keys"),
        ("/logout", false, "/settings/api-keys"),
    ];
    for (next, kept, lands) in cases {
        let client = browser_like_client();
        let encoded: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        let page = client
            .get(format!("{}/login?next={encoded}", app.base_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(page.contains("name=\"next\""), kept, "{next}");
        let csrf = ciq_e2e::console::hidden_csrf(&page);
        let resp = client
            .post(format!("{}/login", app.base_url))
            .form(&[
                ("email", "owner@acme.test"),
                ("password", ciq_e2e::console::PASSWORD),
                ("csrf", csrf.as_str()),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{next}");
        assert_eq!(resp.headers()["location"], lands, "{next}");
    }
    app.stop().await;
}

/// An owner changes their password: the current one is checked, the new one twice and
/// by the rules (each refusal named, nothing changed); then the old password no longer
/// signs in, the new one does, every other session is over and this one goes on.
async fn an_owner_changes_their_password_and_other_sessions_end(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let owner = signed_in(&app, "owner@acme.test", "/settings/account").await;
    let other_device = browser_like_client();
    let resp = ciq_e2e::console::sign_in(
        &app,
        &other_device,
        "owner@acme.test",
        ciq_e2e::console::PASSWORD,
    )
    .await;
    assert_eq!(resp.status(), 303);
    let change = |current: &str, new: &str, repeat: &str, csrf: &str| {
        let form = [
            ("csrf", csrf.to_owned()),
            ("current", current.to_owned()),
            ("new", new.to_owned()),
            ("repeat", repeat.to_owned()),
        ];
        let client = owner.client.clone();
        let url = format!("{}/settings/account", app.base_url);
        async move {
            let resp = client.post(url).form(&form).send().await.unwrap();
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            (status, location, resp.text().await.unwrap())
        }
    };
    let good = "a brand new passphrase";
    let pw = ciq_e2e::console::PASSWORD;
    let (status, _, html) = change("wrong password here", good, good, &owner.csrf).await;
    assert_eq!(status, 422);
    assert!(html.contains("The current password is not right."));
    let (status, _, html) = change(pw, good, "something else entirely", &owner.csrf).await;
    assert_eq!(status, 422);
    assert!(html.contains("differ"));
    let (status, _, html) = change(pw, "short", "short", &owner.csrf).await;
    assert_eq!(status, 422);
    assert!(
        html.contains("New password: must be 10 to 128 characters."),
        "{html}"
    );
    let (status, _, _) = change(pw, good, good, "not-the-token").await;
    assert_eq!(status, 403, "the CSRF token is checked");
    // Nothing changed so far: the other device is still signed in.
    let (status, _) = get_html(&other_device, &app, "/settings").await;
    assert_eq!(status, 200);

    let (status, location, _) = change(pw, good, good, &owner.csrf).await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/settings/account?changed=1"));
    let (status, html) = get_html(&owner.client, &app, "/settings/account?changed=1").await;
    assert_eq!(status, 200, "this session goes on");
    assert!(html.contains("Your password was changed."));
    let resp = other_device
        .get(format!("{}/settings", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "the other session is over");
    for (password, status) in [(pw, 401), (good, 303)] {
        let client = browser_like_client();
        let resp = ciq_e2e::console::sign_in(&app, &client, "owner@acme.test", password).await;
        assert_eq!(resp.status(), status, "{password}");
    }
    app.stop().await;
}

/// A refused generate form comes back as it was sent — name, expiry, permissions,
/// origins, visitor limit, challenge provider — but never the challenge's secret.
async fn a_refused_key_form_keeps_what_was_typed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let owner = signed_in(&app, "owner@acme.test", "/settings/api-keys").await;
    let (status, html) = ciq_e2e::console::post_form(
        &owner.client,
        &app,
        "/settings/api-keys",
        &[
            ("csrf", &owner.csrf),
            ("name", "Landing page"),
            ("expires_in_days", "90"),
            ("scope_create", "on"),
            (
                "allowed_origins",
                "https://shop.example\nhttps://www.shop.example",
            ),
            ("visitor_rate_limit", "lots"),
            ("challenge", "turnstile"),
            ("challenge_secret", "0x4AAAA-secret-never-shown"),
        ],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("Submissions per visitor: a whole number"));
    assert!(html.contains(r#"value="Landing page""#), "{html}");
    assert!(html.contains(r#"<option value="90" selected>"#));
    assert!(html.contains(">https://shop.example\nhttps://www.shop.example</textarea>"));
    assert!(html.contains(r#"value="lots""#));
    assert!(html.contains(r#"<option value="turnstile" selected>"#));
    assert!(
        !html.contains("0x4AAAA-secret-never-shown"),
        "never the secret"
    );
    assert!(html.contains(r#"id="scope_create" name="scope_create" value="on" checked"#));
    assert!(!html.contains(r#"id="scope_read" name="scope_read" value="on" checked"#));
    // Nothing was made.
    let listed = ciq_admin::keys::list_keys(&app.db, owner.user)
        .await
        .unwrap();
    assert!(listed.is_empty());
    app.stop().await;
}

/// A refused endpoint form comes back with its URL and the events that were ticked.
async fn a_refused_endpoint_form_keeps_its_url_and_events(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.webhook_key = Some("q0hJ7TQjDq9rLr8cJYyq1rW3yXk3o1dQdJ8k5b7N3wE=".into());
    })
    .await
    else {
        return;
    };
    let owner = signed_in(&app, "owner@acme.test", "/settings/webhooks").await;
    let (status, html) = ciq_e2e::console::post_form(
        &owner.client,
        &app,
        "/settings/webhooks",
        &[
            ("csrf", &owner.csrf),
            ("url", "http://crm.example.com/hooks"),
            ("event_lead_updated", "on"),
        ],
    )
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("URL: "), "{html}");
    assert!(
        html.contains(r#"value="http://crm.example.com/hooks""#),
        "{html}"
    );
    assert!(
        html.contains(r#"name="event_lead_updated" value="on" checked"#),
        "{html}"
    );
    assert!(
        !html.contains(r#"name="event_lead_created" value="on" checked"#),
        "{html}"
    );
    app.stop().await;
}

/// The key page's settings: name, limit, origins, visitor limit and challenge change by
/// the rules a new key follows (every refusal names its field and keeps the form,
/// nothing saved), the challenge's secret is sealed and kept when left empty, the
/// history says what changed, and a running gateway uses the new limit; another owner's
/// key is not found, a forged form changes nothing, a revoked key has no settings.
async fn an_owner_changes_a_keys_name_limits_origins_and_challenge(backend: Backend) {
    use ciq_e2e::console::post_form;
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.webhook_key = Some(ciq_store::secret::new_key());
    })
    .await
    else {
        return;
    };
    let owner = signed_in(&app, "owner@acme.test", "/settings/api-keys").await;
    let (key_id, key) = app
        .create_key_with(
            owner.user,
            NewKey {
                name: "Web form".into(),
                scopes: Scopes::of(&[Scope::LeadsCreate]),
                allowed_origins: vec!["https://shop.example".into()],
                ..NewKey::default()
            },
        )
        .await;
    let path = format!("/settings/api-keys/{key_id}");
    let (status, page) = get_html(&owner.client, &app, &path).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"settings-title\"") && page.contains("value=\"Web form\""));
    assert!(page.contains(">https://shop.example</textarea>"), "{page}");
    let settings = format!("{path}/settings");
    let csrf = owner.csrf.as_str();
    let mut form = vec![
        ("csrf", csrf),
        ("name", "Shop form"),
        ("rate_limit", "250"),
        (
            "allowed_origins",
            "https://shop.example\nhttps://www.shop.example",
        ),
        ("visitor_rate_limit", "5"),
        ("challenge", "turnstile"),
        ("challenge_secret", ""),
    ];
    let before = ciq_admin::keys::find_key(&app.db, key_id).await.unwrap();
    // A new challenge without its secret: named, the form kept, nothing saved.
    let (status, page) = post_form(&owner.client, &app, &settings, &form).await;
    assert_eq!(status, 422, "{page}");
    assert!(
        page.contains("challenge secret: is required with a challenge"),
        "{page}"
    );
    assert!(page.contains("value=\"Shop form\"") && page.contains("value=\"250\""));
    assert_eq!(
        ciq_admin::keys::find_key(&app.db, key_id).await.unwrap(),
        before
    );
    for (field, value, said) in [
        (
            "rate_limit",
            "lots",
            "rate limit per minute: a whole number a minute",
        ),
        ("allowed_origins", "shop.example/path", "allowed origins:"),
    ] {
        let mut broken = form.clone();
        broken.iter_mut().find(|(f, _)| *f == field).unwrap().1 = value;
        broken[6].1 = "0x4AAAA-secret";
        let (status, page) = post_form(&owner.client, &app, &settings, &broken).await;
        assert_eq!(status, 422, "{field}");
        assert!(page.contains(said), "{said}: {page}");
    }
    assert_eq!(
        ciq_admin::keys::find_key(&app.db, key_id).await.unwrap(),
        before
    );

    // Saved: every setting, the secret sealed, the history naming what changed.
    form[6].1 = "0x4AAAA-secret";
    let (status, page) = post_form(&owner.client, &app, &settings, &form).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Settings saved"));
    let saved = ciq_admin::keys::find_key(&app.db, key_id).await.unwrap();
    assert_eq!(saved.name, "Shop form");
    assert_eq!(saved.rate_limit_per_minute, Some(250));
    assert_eq!(
        saved.allowed_origins,
        "https://shop.example https://www.shop.example"
    );
    assert_eq!(saved.visitor_rate_limit_per_minute, Some(5));
    assert_eq!(saved.challenge_provider.as_deref(), Some("turnstile"));
    let sealed = saved.challenge_secret.clone().unwrap();
    assert!(
        !sealed.windows(14).any(|w| w == b"0x4AAAA-secret"),
        "stored sealed"
    );
    assert!(saved.version > before.version, "instances see the change");
    assert!(!page.contains("0x4AAAA-secret"), "never shown again");
    let history = ciq_admin::keys::key_history(&app.db, owner.user, 10)
        .await
        .unwrap();
    let updated = history
        .iter()
        .find(|e| e.kind == ciq_entity::key_event::KeyEventKind::Updated)
        .expect("an updated event");
    assert_eq!(
        updated.detail.as_deref(),
        Some("changed: name, rate limit, allowed origins, visitor limit, challenge")
    );
    // The same provider with the secret left empty keeps the secret.
    form[1].1 = "Shop form 2";
    form[6].1 = "";
    assert_eq!(
        post_form(&owner.client, &app, &settings, &form).await.0,
        200
    );
    let kept = ciq_admin::keys::find_key(&app.db, key_id).await.unwrap();
    assert_eq!(
        (kept.name.as_str(), kept.challenge_secret.as_ref()),
        ("Shop form 2", Some(&sealed))
    );
    // Origins removed with the challenge kept: refused; with it removed: a server key.
    let mut server = form.clone();
    server[3].1 = "";
    server[4].1 = "";
    let (status, page) = post_form(&owner.client, &app, &settings, &server).await;
    assert_eq!(status, 422);
    assert!(
        page.contains("challenge: applies only to a browser key"),
        "{page}"
    );
    server[5].1 = "";
    assert_eq!(
        post_form(&owner.client, &app, &settings, &server).await.0,
        200
    );
    let plain = ciq_admin::keys::find_key(&app.db, key_id).await.unwrap();
    assert_eq!(
        (
            plain.allowed_origins.as_str(),
            plain.challenge_provider.as_deref()
        ),
        ("", None)
    );
    // A running gateway uses the new limit within a second or so.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let resp = app.post_lead(Some(&key), &reference_curl_body()).await;
        assert_eq!(resp.status(), 201);
        if resp.headers()["x-ratelimit-limit"] == "250" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new limit never applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // Another owner, a forged form, a revoked key.
    let other = signed_in(&app, "other@acme.test", "/settings/api-keys").await;
    let mut others = form.clone();
    others[0].1 = other.csrf.as_str();
    assert_eq!(
        post_form(&other.client, &app, &settings, &others).await.0,
        404
    );
    let mut forged = form.clone();
    forged[0].1 = "forged";
    assert_eq!(
        post_form(&owner.client, &app, &settings, &forged).await.0,
        403
    );
    ciq_admin::keys::revoke_key(&app.db, key_id, &ciq_admin::keys::Actor::cli())
        .await
        .unwrap();
    let (_, page) = get_html(&owner.client, &app, &path).await;
    assert!(
        !page.contains("id=\"settings-title\""),
        "a revoked key has no settings"
    );
    let (status, page) = post_form(&owner.client, &app, &settings, &form).await;
    assert_eq!(status, 422);
    assert!(page.contains("key: is revoked"));
}
