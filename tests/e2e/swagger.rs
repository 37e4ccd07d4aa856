//! Swagger UI, used the way a developer integrating would: Authorize, Try it out.

use std::time::Duration;

use ciq_e2e::browser::Browser;
use ciq_e2e::{Backend, LoadBalancer, TestApp};
use fantoccini::Locator;
use sea_orm::EntityTrait;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_authorize_and_try_it_out_create_a_lead() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    authorize_and_try_it_out(&app, &app.base_url).await;
}

/// The shipped nginx in front (TLS, forwarded headers set by the proxy) with
/// `CIQ_PUBLIC_URL` naming its public side, as docker-compose.yml runs it: Try it out
/// is served from the public origin and passes the origin rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_try_it_out_works_behind_the_shipped_nginx() {
    let tls_port = ciq_e2e::free_port();
    let public = format!("https://127.0.0.1:{tls_port}");
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.trust_forwarded_for = true;
        s.public_url = Some(public.clone());
    })
    .await
    .expect("sqlite");
    let Some(lb) = LoadBalancer::start_with_public_port(&[&app.base_url], tls_port).await else {
        return;
    };
    assert_eq!(lb.public_url, public);
    authorize_and_try_it_out(&app, &lb.public_url).await;
}

/// Opens `{origin}/docs`, authorizes with a full key, and creates, lists and reads a
/// lead through Try it out, checking each answer and the stored lead.
async fn authorize_and_try_it_out(app: &TestApp, origin: &str) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (user_id, key) = app
        .user_with_key_like(
            "dev@acme.test",
            ciq_admin::keys::NewKey {
                scopes: ciq_admin::Scopes::of(&ciq_admin::Scope::ALL),
                ..ciq_admin::keys::NewKey::default()
            },
        )
        .await;
    let c = &browser.client;
    c.goto(&format!("{origin}/docs")).await.unwrap();

    let wait = |locator: Locator<'static>| {
        let c = c.clone();
        async move {
            c.wait()
                .at_most(Duration::from_secs(15))
                .for_element(locator)
                .await
                .unwrap_or_else(|e| panic!("{locator:?} never appeared: {e}"))
        }
    };
    wait(Locator::Css("button.btn.authorize"))
        .await
        .click()
        .await
        .unwrap();
    // The modal lists each scheme in its own container: use the API key's.
    let api_key_box = "//div[contains(@class,'auth-container')][.//h4[contains(., 'ApiKeyAuth')]]";
    let input = format!("{api_key_box}//input");
    wait(Locator::XPath(leak(input)))
        .await
        .send_keys(&key)
        .await
        .unwrap();
    let authorize = format!("{api_key_box}//button[contains(@class,'authorize')]");
    wait(Locator::XPath(leak(authorize)))
        .await
        .click()
        .await
        .unwrap();
    wait(Locator::Css("button.btn-done"))
        .await
        .click()
        .await
        .unwrap();

    wait(Locator::Css(
        "#operations-Leads-createLead .opblock-summary",
    ))
    .await
    .click()
    .await
    .unwrap();
    wait(Locator::Css(
        "#operations-Leads-createLead button.try-out__btn",
    ))
    .await
    .click()
    .await
    .unwrap();
    wait(Locator::Css("#operations-Leads-createLead button.execute"))
        .await
        .click()
        .await
        .unwrap();

    let status = wait(Locator::Css(
        "#operations-Leads-createLead .live-responses-table tbody .response-col_status",
    ))
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(
        status.trim(),
        "201",
        "Swagger UI's request was answered {status}"
    );

    let leads = ciq_entity::Lead::find().all(&app.db).await.unwrap();
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0].user_id, user_id);
    assert_eq!(
        leads[0].source, "Website Form",
        "the documented example was sent"
    );

    // The managing operations, with the same authorization: list, then get by id.
    let try_out = |operation: &'static str, path_id: Option<String>| {
        let wait = &wait;
        async move {
            let block = format!("#operations-Leads-{operation}");
            wait(Locator::Css(leak(format!("{block} .opblock-summary"))))
                .await
                .click()
                .await
                .unwrap();
            wait(Locator::Css(leak(format!("{block} button.try-out__btn"))))
                .await
                .click()
                .await
                .unwrap();
            if let Some(id) = path_id {
                wait(Locator::Css(leak(format!(
                    "{block} input[placeholder='id']"
                ))))
                .await
                .send_keys(&id)
                .await
                .unwrap();
            }
            wait(Locator::Css(leak(format!("{block} button.execute"))))
                .await
                .click()
                .await
                .unwrap();
            let status = wait(Locator::Css(leak(format!(
                "{block} .live-responses-table tbody .response-col_status"
            ))))
            .await
            .text()
            .await
            .unwrap();
            let body = wait(Locator::Css(leak(format!(
                "{block} .live-responses-table tbody .response-col_description pre"
            ))))
            .await
            .text()
            .await
            .unwrap();
            (status.trim().to_owned(), body)
        }
    };
    let id = leads[0].id.to_string();
    let (status, body) = try_out("listLeads", None).await;
    assert_eq!(status, "200", "{body}");
    assert!(body.contains(&id), "{body}");
    let (status, body) = try_out("getLead", Some(id.clone())).await;
    assert_eq!(status, "200", "{body}");
    assert!(
        body.contains(&id) && body.contains("Website Form"),
        "{body}"
    );
    browser.close().await;
}

/// A `'static` locator string (a couple per test run).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}
