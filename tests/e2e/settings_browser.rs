//! Settings → API Key in headless Chromium, as an account owner uses it.

use std::time::{Duration, Instant};

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

/// Waits for the page's confirmation line to start with `start` (a form post replaces
/// the page: the line of the page being left may still be found, or go stale, first);
/// its whole text.
async fn notice_starting(c: &Client, start: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(notice) = c.find(Locator::Css("div.notice")).await
            && let Ok(text) = notice.text().await
            && text.starts_with(start)
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no notice starting {start:?} appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    ciq_e2e::console::owner(&app, "owner@acme.test").await;
    let c = &browser.client;

    // Signed out, the settings page sends you to sign in.
    c.goto(&format!("{}/settings/api-keys", app.base_url))
        .await
        .unwrap();
    submit_sign_in(c, "owner@acme.test", "correct horse battery").await;

    // Generate: the key is on the page, once.
    generate_key(c, "Website form").await;
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

/// axe-core's browser bundle (npm `axe-core`): `AXE_CORE_JS`, or where `.ci/run`
/// installs it. Required under CI.
pub(crate) fn axe_source() -> Option<String> {
    let path = std::env::var_os("AXE_CORE_JS").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/ci-node/node_modules/axe-core/axe.min.js")
        },
        std::path::PathBuf::from,
    );
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(err) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "axe-core is required under CI ({}: {err}); .ci/run installs it with npm",
                path.display()
            );
            eprintln!("skipping accessibility checks: {} missing", path.display());
            None
        }
    }
}

/// Runs axe-core on the page `c` shows at 1280 and at 390 px (a phone) and fails on
/// any serious or critical violation, or on a page wider than a phone's screen.
pub(crate) async fn assert_accessible(c: &Client, axe: Option<&str>, what: &str) {
    let Some(axe) = axe else {
        return;
    };
    for width in [1280_u32, 390] {
        c.set_window_size(width, 900).await.unwrap();
        // Chromium may keep its window wider than asked for; the layout is checked at
        // the viewport width the page itself reports.
        let widths = c
            .execute(
                "return [window.innerWidth, document.documentElement.scrollWidth];",
                vec![],
            )
            .await
            .unwrap();
        let inner = widths[0].as_u64().unwrap();
        let scroll = widths[1].as_u64().unwrap();
        assert!(
            inner <= u64::from(width) + 16,
            "{what}: viewport {inner} px wide, asked {width}"
        );
        assert!(
            scroll <= inner,
            "{what} at {width} px: the page scrolls sideways ({scroll} px of content in {inner} px)"
        );
        let ready = c
            .execute(&format!("{axe}\n;return typeof window.axe;"), vec![])
            .await
            .unwrap();
        assert_eq!(ready, "object", "axe-core did not load");
        let violations = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']}).then(
                   r => done(r.violations
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' at ' +
                          v.nodes.map(n => n.target.join(' ')).join(', '))),
                   e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(violations, serde_json::json!([]), "{what} at {width} px");
    }
    c.set_window_size(1280, 2000).await.unwrap();
}

/// Generates a key named `name` with the form's defaults.
async fn generate_key(c: &Client, name: &str) {
    find(c, "#key-name").await.send_keys(name).await.unwrap();
    find(c, "#generate-title + form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
}

/// Fills in and sends the sign-in form the browser shows, and waits for the keys page.
async fn submit_sign_in(c: &Client, email: &str, password: &str) {
    find(c, "#email").await.send_keys(email).await.unwrap();
    find(c, "#password")
        .await
        .send_keys(password)
        .await
        .unwrap();
    find(c, "form[action='/login'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    find(c, "#generate-title").await;
}

/// `href` fetched with the browser's own session cookie, as the browser would download
/// it (the pages' policy lets no script fetch).
async fn download(c: &Client, app: &TestApp, href: &str) -> reqwest::Response {
    let cookies = c.get_all_cookies().await.unwrap();
    let cookie = cookies
        .iter()
        .map(|k| format!("{}={}", k.name(), k.value()))
        .collect::<Vec<_>>()
        .join("; ");
    app.client
        .get(format!("{}{href}", app.base_url))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
}

async fn rows(c: &Client) -> Vec<String> {
    let mut texts = Vec::new();
    for row in c
        .find_all(Locator::Css(
            "#leads-title ~ table tbody tr, section.card table.stacked tbody tr",
        ))
        .await
        .unwrap()
    {
        texts.push(row.text().await.unwrap());
    }
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leads_page_filters_opens_and_exports_and_every_page_is_accessible() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let Some(browser) = Browser::start().await else {
        return;
    };
    let axe = axe_source();
    let user = ciq_e2e::console::owner(&app, "owner@acme.test").await;
    let new_key = |name: &str| ciq_admin::keys::NewKey {
        name: name.into(),
        ..ciq_admin::keys::NewKey::default()
    };
    let (website_id, website) = app.create_key_with(user, new_key("Website")).await;
    let (crm_id, crm) = app.create_key_with(user, new_key("CRM")).await;
    let lead = |name: &str, source: &str, status: &str| {
        let mut body = ciq_e2e::reference_curl_body();
        body["lead"]["name"] = name.into();
        body["lead"]["source"] = source.into();
        body["lead"]["status"] = status.into();
        body["lead"]["description"] = "=HYPERLINK(\"http://evil.example\")".into();
        body
    };
    for i in 0..3 {
        let resp = app
            .post_lead(
                Some(&website),
                &lead(&format!("Web {i}"), "Website Form", "new"),
            )
            .await;
        assert_eq!(resp.status(), 201);
    }
    for i in 0..2 {
        let resp = app
            .post_lead(Some(&crm), &lead(&format!("Crm {i}"), "CRM", "contacted"))
            .await;
        assert_eq!(resp.status(), 201);
    }
    // Another account's lead never shows.
    let (_, other) = app.user_with_key("other@acme.test").await;
    assert_eq!(
        app.post_lead(Some(&other), &lead("Not Yours", "CRM", "contacted"))
            .await
            .status(),
        201
    );

    let c = &browser.client;
    // A password link's page.
    let (token, _) = ciq_admin::resets::issue(&app.db, user).await.unwrap();
    let link = ciq_admin::resets::link(&app.base_url, &token);
    c.goto(&link).await.unwrap();
    find(c, "#repeat").await;
    assert_accessible(c, axe.as_deref(), "password link page").await;
    c.goto(&format!("{}/login", app.base_url)).await.unwrap();
    assert_accessible(c, axe.as_deref(), "sign-in page").await;
    submit_sign_in(c, "owner@acme.test", "correct horse battery").await;
    assert_accessible(c, axe.as_deref(), "keys page").await;
    // The overview, from the navigation: its chart and tables.
    app.states.usage.flush().await.unwrap();
    find(c, "nav.sections a[href='/settings']")
        .await
        .click()
        .await
        .unwrap();
    find(c, "#leads-title").await;
    find(c, "figure.chart svg[role=img]").await;
    assert_accessible(c, axe.as_deref(), "overview").await;
    // The account page, from the owner's name in the header.
    find(c, "div.who a[href='/settings/account']")
        .await
        .click()
        .await
        .unwrap();
    find(c, "#password-title").await;
    assert_accessible(c, axe.as_deref(), "account page").await;
    c.goto(&format!("{}/settings/api-keys", app.base_url))
        .await
        .unwrap();
    // A key's page, from its name in the list: the chart, its figures, the log.
    let refused = app
        .client
        .get(format!("{}/api/external/leads", app.base_url))
        .header("X-API-Key", &website)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    app.states.usage.flush().await.unwrap();
    let link: &'static str = format!("a[href='/settings/api-keys/{website_id}']").leak();
    find(c, link).await.click().await.unwrap();
    find(c, "figure.chart svg[role=img]").await;
    find(c, "details.figures summary")
        .await
        .click()
        .await
        .unwrap();
    let log = find(c, "table.stacked tbody").await.text().await.unwrap();
    assert!(log.contains("insufficient_scope"), "{log}");
    assert_accessible(c, axe.as_deref(), "key page").await;
    c.goto(&format!("{}/settings/api-keys", app.base_url))
        .await
        .unwrap();
    // The allowed-origins field is there while only "create" is ticked.
    let origins = find(c, "#origins-field").await;
    assert!(origins.is_displayed().await.unwrap());
    find(c, "#scope_read").await.click().await.unwrap();
    assert!(!origins.is_displayed().await.unwrap());
    find(c, "#scope_read").await.click().await.unwrap();
    assert!(origins.is_displayed().await.unwrap());
    // With a new key shown once, and the browser-key field.
    generate_key(c, "Landing page").await;
    shown_key(c, None).await;
    assert_accessible(c, axe.as_deref(), "keys page with a new key").await;
    find(c, "a[aria-label='Revoke Landing page']")
        .await
        .click()
        .await
        .unwrap();
    find(c, "form[action$='/revoke'] button.danger").await;
    assert_accessible(c, axe.as_deref(), "revoke confirmation").await;

    // Settings → Leads, from the navigation.
    c.goto(&format!("{}/settings/api-keys", app.base_url))
        .await
        .unwrap();
    find(c, "nav.sections a[href='/settings/leads']")
        .await
        .click()
        .await
        .unwrap();
    find(c, "#leads-title").await;
    let all = rows(c).await;
    assert_eq!(all.len(), 5, "{all:?}");
    assert!(all[0].contains("Crm 1"), "newest first: {all:?}");
    assert!(!all.iter().any(|r| r.contains("Not Yours")));
    assert_accessible(c, axe.as_deref(), "leads page").await;

    // Filter: status and key.
    find(c, "#f-status")
        .await
        .select_by_value("contacted")
        .await
        .unwrap();
    find(c, "form.filters button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    find(c, "#f-status option[value=contacted][selected]").await;
    let contacted = rows(c).await;
    assert_eq!(contacted.len(), 2, "{contacted:?}");
    assert!(
        contacted
            .iter()
            .all(|r| r.contains("contacted") && r.contains("CRM"))
    );
    find(c, "#f-status")
        .await
        .select_by_value("")
        .await
        .unwrap();
    find(c, "#f-key")
        .await
        .select_by_value(&crm_id.to_string())
        .await
        .unwrap();
    find(c, "#f-source").await.send_keys("CRM").await.unwrap();
    find(c, "form.filters button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    find(
        c,
        &*Box::leak(format!("#f-key option[value='{crm_id}'][selected]").into_boxed_str()),
    )
    .await;
    assert_eq!(rows(c).await.len(), 2);
    // A date range that ends before today holds nothing; a broken date is named.
    c.goto(&format!("{}/settings/leads?to=2020-01-01", app.base_url))
        .await
        .unwrap();
    find(c, "#leads-title").await;
    assert_eq!(rows(c).await.len(), 0);
    c.goto(&format!("{}/settings/leads?from=yesterday", app.base_url))
        .await
        .unwrap();
    assert!(
        find(c, "div.error")
            .await
            .text()
            .await
            .unwrap()
            .contains("From: must be a date")
    );

    // Export the current filter: the link's CSV, fetched as the page would download it.
    c.goto(&format!("{}/settings/leads?key={crm_id}", app.base_url))
        .await
        .unwrap();
    let href = find(c, "#export")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(href, format!("/settings/leads/export.csv?key={crm_id}"));
    let resp = download(c, &app, &href).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"leads-")
    );
    let text = resp.text().await.unwrap();
    let text = text.as_str();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("id,created_at,updated_at,name,email,phone,source"));
    assert!(lines[1].contains("Crm 1") && lines[2].contains("Crm 0"));
    // What a visitor typed never becomes a spreadsheet formula.
    assert!(
        lines[1].contains("\"'=HYPERLINK(\"\"http://evil.example\"\")\""),
        "{}",
        lines[1]
    );

    // A lead's detail.
    c.goto(&format!("{}/settings/leads", app.base_url))
        .await
        .unwrap();
    c.find(Locator::LinkText("Web 0"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let title = find(c, "#lead-title").await.text().await.unwrap();
    assert_eq!(title, "Web 0");
    let page = c.source().await.unwrap();
    assert!(page.contains("Website Form") && page.contains("Website (ciq_"));
    assert_accessible(c, axe.as_deref(), "lead detail").await;
    // Edit it: a broken score is named beside its field, the typed name kept; then saved.
    find(c, "#edit").await.click().await.unwrap();
    let name = find(c, "#e-name").await;
    name.clear().await.unwrap();
    name.send_keys("Web Zero").await.unwrap();
    find(c, "#e-score").await.send_keys("11").await.unwrap();
    find(c, "form.edit button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let problem = find(c, "#e-score-problem").await.text().await.unwrap();
    assert_eq!(problem, "must be a whole number from 1 to 10");
    assert_eq!(
        find(c, "#e-name")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Web Zero")
    );
    assert_accessible(c, axe.as_deref(), "lead edit form with a problem").await;
    find(c, "#e-score").await.clear().await.unwrap();
    find(c, "#e-score").await.send_keys("9").await.unwrap();
    find(c, "form.edit button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    notice_starting(c, "Saved. Changed: Name, Score").await;
    assert_eq!(
        find(c, "#lead-title").await.text().await.unwrap(),
        "Web Zero"
    );
    // Its status, then deleting it after the confirmation.
    find(c, "#status")
        .await
        .select_by_value("qualified")
        .await
        .unwrap();
    find(c, "form.status button").await.click().await.unwrap();
    notice_starting(c, "Status set to qualified.").await;
    find(c, "#delete").await.click().await.unwrap();
    find(c, "form[action$='/delete'] button.danger").await;
    assert_accessible(c, axe.as_deref(), "lead delete confirmation").await;
    find(c, "form[action$='/delete'] button.danger")
        .await
        .click()
        .await
        .unwrap();
    let notice = notice_starting(c, "Deleted").await;
    assert_eq!(notice, "Deleted “Web Zero”.");
    // Many at once: "tick every lead" (the page's script), a status for all of them.
    find(c, "#select-all").await.click().await.unwrap();
    find(c, "#bulk-action")
        .await
        .select_by_value("status:lost")
        .await
        .unwrap();
    find(c, "#bulk button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    notice_starting(c, "Set 4 leads to lost.").await;
    assert_accessible(c, axe.as_deref(), "leads page after a bulk action").await;
    // The spam list and a spam lead's page, with its "Not spam" button.
    let mut trapped = lead("Bot Spam", "Website Form", "new");
    trapped["honeypot"] = "filled".into();
    assert_eq!(app.post_lead(Some(&website), &trapped).await.status(), 201);
    c.goto(&format!("{}/settings/leads/spam", app.base_url))
        .await
        .unwrap();
    assert_accessible(c, axe.as_deref(), "spam list").await;
    c.find(Locator::LinkText("Bot Spam"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(c.source().await.unwrap().contains("Held back as spam"));
    assert_accessible(c, axe.as_deref(), "spam lead detail").await;
    browser.close().await;
}

/// Imports `crate::imports::CSV` from the leads page in `c` (upload, the suggested
/// mapping, start) and waits for the page to say it is done; the progress page's text.
async fn import_in_browser(
    c: &Client,
    app: &TestApp,
    file: &std::path::Path,
    axe: Option<&str>,
) -> String {
    c.goto(&format!("{}/settings/leads", app.base_url))
        .await
        .unwrap();
    find(c, "#import").await.click().await.unwrap();
    find(c, "#file")
        .await
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    find(c, "form[enctype='multipart/form-data'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    find(c, "#preview-title").await;
    assert_accessible(c, axe, "import mapping and preview").await;
    // Before it starts: what the whole file will do, the bad cells marked, the button
    // saying what it imports.
    let tally = find(c, "#tally").await.text().await.unwrap();
    assert!(
        tally.starts_with("4 rows will import, 2 rows will fail (lines 4, 7)"),
        "{tally}"
    );
    let faults = c
        .find_all(Locator::Css("table.preview td.fault"))
        .await
        .unwrap();
    assert_eq!(
        faults.len(),
        3,
        "the bad email, the empty name, the score 11"
    );
    let start = find(c, "button[value=start]").await;
    assert_eq!(
        start.text().await.unwrap(),
        "Import 4 rows, skip 2 that fail"
    );
    start.click().await.unwrap();
    // The page reloads itself until the import is done.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if c.find(Locator::Css("#outcome")).await.is_ok() {
            return c
                .find(Locator::Css("main"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
        }
        assert!(Instant::now() < deadline, "the import never finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_imports_a_csv_sees_the_bad_rows_and_a_rerun_creates_nothing() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let Some(browser) = Browser::start().await else {
        return;
    };
    let axe = axe_source();
    let user = ciq_e2e::console::owner(&app, "owner@acme.test").await;
    let folder = std::env::temp_dir().join(format!("ciq-import-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&folder).unwrap();
    let file = folder.join("crm.csv");
    std::fs::write(&file, crate::imports::CSV).unwrap();
    let c = &browser.client;
    c.goto(&format!("{}/login", app.base_url)).await.unwrap();
    submit_sign_in(c, "owner@acme.test", "correct horse battery").await;

    // The mapping page, checked for accessibility before the import starts.
    c.goto(&format!("{}/settings/leads/imports", app.base_url))
        .await
        .unwrap();
    assert_accessible(c, axe.as_deref(), "imports page").await;
    let text = import_in_browser(c, &app, &file, axe.as_deref()).await;
    assert!(
        text.contains("4 of 6 rows imported, 2 failed (listed below)."),
        "{text}"
    );
    let badge = find(c, "#progress-title ~ .badge")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(badge, "done, 2 failed", "not a plain green done");
    assert_accessible(c, axe.as_deref(), "finished import").await;
    let created = find(c, "#created").await.text().await.unwrap();
    let failed = find(c, "#failed").await.text().await.unwrap();
    assert_eq!((created.as_str(), failed.as_str()), ("4", "2"));
    let failures = find(c, "#failures").await.text().await.unwrap();
    assert!(
        failures.contains("E-mail: must be a valid email address"),
        "{failures}"
    );
    assert!(failures.contains("Full Name: is required"), "{failures}");
    let href = find(c, "#failures-download")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let resp = download(c, &app, &href).await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    assert_eq!(body.lines().count(), 3, "{body}");
    assert!(body.contains("not-an-email") && body.contains("nameless@example.com"));
    let stored = ciq_leads::store::list(&app.db, user, &Default::default(), None, 100)
        .await
        .unwrap()
        .0;
    assert_eq!(stored.len(), 4);
    // The leads page shows them, made by no key.
    c.goto(&format!("{}/settings/leads", app.base_url))
        .await
        .unwrap();
    find(c, "#leads-title").await;
    let listed = rows(c).await;
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed.iter().all(|r| r.contains("Imported")), "{listed:?}");

    // The same file again: the mapped external_id makes every good row an update.
    let text = import_in_browser(c, &app, &file, None).await;
    assert!(
        text.contains("importing this file again creates nothing twice"),
        "{text}"
    );
    let created = find(c, "#created").await.text().await.unwrap();
    let updated = find(c, "#updated").await.text().await.unwrap();
    assert_eq!((created.as_str(), updated.as_str()), ("0", "4"));
    let stored = ciq_leads::store::list(&app.db, user, &Default::default(), None, 100)
        .await
        .unwrap()
        .0;
    assert_eq!(stored.len(), 4, "a re-run creates nothing new");
    std::fs::remove_dir_all(&folder).unwrap();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_adds_an_endpoint_sends_a_test_event_and_replays_it() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.webhooks.allow_private_networks = true;
    })
    .await
    .unwrap();
    let Some(browser) = Browser::start().await else {
        return;
    };
    let axe = axe_source();
    let receiver = ciq_e2e::Receiver::start().await;
    ciq_e2e::console::owner(&app, "owner@acme.test").await;
    let c = &browser.client;
    c.goto(&format!("{}/login", app.base_url)).await.unwrap();
    submit_sign_in(c, "owner@acme.test", "correct horse battery").await;
    find(c, "nav.sections a[href='/settings/webhooks']")
        .await
        .click()
        .await
        .unwrap();
    find(c, "#add-title").await;
    assert_accessible(c, axe.as_deref(), "webhooks page").await;
    find(c, "#webhook-url")
        .await
        .send_keys(&receiver.url("/hook"))
        .await
        .unwrap();
    find(c, "form[action='/settings/webhooks'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let secret = find(c, "#new-key")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let shown = c.source().await.unwrap();
    assert!(
        shown.contains("standardwebhooks"),
        "the verification snippet is shown"
    );
    assert_accessible(c, axe.as_deref(), "webhooks page with a new secret").await;

    // Send a test event: the receiver gets it, signed with the secret the page showed.
    find(c, "button[aria-label^='Send test event']")
        .await
        .click()
        .await
        .unwrap();
    let got = receiver.wait_for("/hook", 1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["type"], "webhook.test");
    standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .verify(got[0].body.as_bytes(), &got[0].header_map())
        .unwrap();
    // The log shows it delivered (the page follows it while it is pending).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        c.refresh().await.unwrap();
        if let Ok(table) = c.find(Locator::Css("#deliveries")).await
            && table.text().await.unwrap_or_default().contains("delivered")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the log never showed the delivery"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = find(c, "#deliveries").await.text().await.unwrap();
    assert!(log.contains("webhook.test") && log.contains("200"), "{log}");
    assert_accessible(c, axe.as_deref(), "delivery log").await;
    // Replay it: the same event again.
    find(c, "button[aria-label^='Replay']")
        .await
        .click()
        .await
        .unwrap();
    let got = receiver.wait_for("/hook", 2, Duration::from_secs(10)).await;
    assert_eq!(got[1].headers["webhook-id"], got[0].headers["webhook-id"]);
    // The payload it carried, opened in the log.
    find(c, "details.payload summary")
        .await
        .click()
        .await
        .unwrap();
    let payload = find(c, "details.payload pre").await.text().await.unwrap();
    assert!(payload.contains("\"type\": \"webhook.test\""), "{payload}");
    // Edit it: a filter from the form, shown in words on the endpoints page.
    c.goto(&format!("{}/settings/webhooks", app.base_url))
        .await
        .unwrap();
    find(c, "a[aria-label^='Edit']")
        .await
        .click()
        .await
        .unwrap();
    find(c, "#f0_field")
        .await
        .select_by_value("score")
        .await
        .unwrap();
    find(c, "#f0_op")
        .await
        .select_by_value("gte")
        .await
        .unwrap();
    find(c, "#f0_value")
        .await
        .send_keys("eleven")
        .await
        .unwrap();
    assert_accessible(c, axe.as_deref(), "endpoint edit form").await;
    find(c, "form.stack button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let problems = find(c, "#problems").await.text().await.unwrap();
    assert!(
        problems.contains("Filter score gte: must be a number"),
        "{problems}"
    );
    find(c, "#f0_value").await.clear().await.unwrap();
    find(c, "#f0_value").await.send_keys("5").await.unwrap();
    find(c, "form.stack button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    notice_starting(c, "Saved ").await;
    assert!(c.source().await.unwrap().contains("Only when score ≥ 5"));
    // The guide, from the page's first paragraph.
    find(c, "p.lead a[href='/settings/webhooks/guide']")
        .await
        .click()
        .await
        .unwrap();
    find(c, "#events-title").await;
    assert_accessible(c, axe.as_deref(), "webhook guide").await;
    browser.close().await;
}
