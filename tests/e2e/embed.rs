//! The embed script: served pinned and readable from any origin, and — in Chromium,
//! on a page of another origin — the documented example form built on it: attribution
//! from the page's address, consent, a field error beside its input, a double click
//! making one lead, a challenge widget's token forwarded, and the page accessible.

use std::time::Duration;

use ciq_admin::keys::{self, NewKey};
use ciq_admin::{ChallengeProvider, NewChallenge};
use ciq_api::embed::RELEASES;
use ciq_e2e::browser::Browser;
use ciq_e2e::{Backend, FakeSiteverify, TestApp};
use fantoccini::{Client, Locator};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::settings_browser::{assert_accessible, axe_source};

const EXAMPLE: &str = include_str!("../../docs/examples/lead-form.html");
const TURNSTILE_EXAMPLE: &str = include_str!("../../docs/examples/lead-form-turnstile.html");
const TURNSTILE_API: &str = "https://challenges.cloudflare.com/turnstile/v0/api.js";

/// A stand-in for a challenge widget, as the real ones behave towards the page: it
/// writes a hidden `cf-turnstile-response` input into each `.cf-turnstile` box, and
/// `turnstile.reset()` gives a fresh token. Tokens `pass-1`, `pass-2`, … pass the
/// local fake siteverify once each.
const STAND_IN_WIDGET: &str = r#"(function () {
  var issued = 0;
  function render() {
    document.querySelectorAll(".cf-turnstile").forEach(function (box) {
      var input = box.querySelector('input[name="cf-turnstile-response"]');
      if (!input) {
        input = document.createElement("input");
        input.type = "hidden";
        input.name = "cf-turnstile-response";
        box.appendChild(input);
      }
      issued += 1;
      input.value = "pass-" + issued;
    });
  }
  window.turnstile = { reset: render };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", render);
  } else {
    render();
  }
})();"#;

/// A site owner's static host: each path's content type and body (the query is
/// ignored; anything else is 404).
fn serve_site(
    listener: tokio::net::TcpListener,
    files: Vec<(&'static str, &'static str, String)>,
) -> tokio::task::JoinHandle<()> {
    let files = std::sync::Arc::new(files);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let files = files.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 8192];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let target = head.split_whitespace().nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap_or("/");
                let reply = match files.iter().find(|(p, _, _)| *p == path) {
                    Some((_, kind, body)) => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_owned()
                    }
                };
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    })
}

/// The example page as its owner would publish it: the gateway's address and the key
/// filled in.
fn published(example: &str, app: &TestApp, key: &str) -> String {
    example
        .replace("https://gateway.example.com", &app.base_url)
        .replace("ciq_YOUR_BROWSER_KEY", key)
}

/// The script at its versioned path: JavaScript, cacheable for an hour, readable by
/// any origin, its bytes the release's, whose integrity the guide and both examples
/// give; the Turnstile example is the plain one plus the widget, nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_script_is_served_pinned_and_readable_from_any_origin() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let release = RELEASES[0];
    let resp = app
        .client
        .get(format!("{}{}", app.base_url, release.path))
        .header("Origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let header = |name: &str| resp.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(header("access-control-allow-origin"), "*");
    assert_eq!(header("cache-control"), "public, max-age=3600");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), release.bytes);
    let pinned = format!("integrity=\"{}\"", release.integrity);
    assert!(EXAMPLE.contains(&pinned), "the example pins the release");
    let with_widget = EXAMPLE
        .replace(
            "crossorigin=\"anonymous\" defer></script>\n",
            &format!(
                "crossorigin=\"anonymous\" defer></script>\n  <script src=\"{TURNSTILE_API}\" async defer></script>\n"
            ),
        )
        .replace(
            "        <button type=\"submit\">",
            "        <div class=\"field\">\n          <div class=\"cf-turnstile\" data-sitekey=\"YOUR_TURNSTILE_SITE_KEY\"></div>\n        </div>\n        <button type=\"submit\">",
        );
    let body = |page: &str| page[page.find("<html").unwrap()..].to_owned();
    assert_eq!(
        body(TURNSTILE_EXAMPLE),
        body(&with_widget),
        "the Turnstile example is the plain one and the widget"
    );
    let missing = app
        .client
        .get(format!("{}/embed/v9/form.js", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    app.stop().await;
}

/// Waits until the embed script has taken over the page's form (its honeypot is in).
async fn attached(c: &Client) {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("form[data-ciq-key] input[name=ciq_website]"))
        .await
        .expect("the script attached to the form");
}

async fn wait_for_outcome(c: &Client) -> (String, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let status = c.find(Locator::Css("[data-ciq-status]")).await.unwrap();
        if let Some(outcome) = status.attr("data-ciq-outcome").await.unwrap() {
            return (outcome, status.text().await.unwrap());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the form never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn fill(c: &Client, fields: &[(&str, &str)]) {
    for (id, value) in fields {
        let input = c.find(Locator::Id(id)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }
}

/// Fills the example form, ticks the consent box and chooses an industry.
async fn fill_example(c: &Client, phone: &str) {
    fill(
        c,
        &[
            ("name", "Jane From The Web"),
            ("email", "jane@web.example"),
            ("phone", phone),
            ("description", "Please call me back"),
        ],
    )
    .await;
    c.execute(
        "document.getElementById('industry').value = 'Retail';
         document.getElementById('consent').checked = true;",
        vec![],
    )
    .await
    .unwrap();
}

/// The example form on a page of another origin, opened from a campaign link: a
/// broken phone is shown beside its input (nothing stored), then a double click sends
/// one lead with the campaign, the page (its other parameters dropped), consent with
/// the visitor's address, and the thank-you line; the page passes axe-core at 1280 and
/// 390 px, with and without errors shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_form_sends_one_lead_from_another_origin() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
    let Some(browser) = Browser::start().await else {
        return;
    };
    let axe = axe_source();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let (_, key) = app
        .user_with_key_like(
            "site@acme.test",
            NewKey {
                allowed_origins: vec![site.clone()],
                ..NewKey::default()
            },
        )
        .await;
    let server = serve_site(
        listener,
        vec![(
            "/",
            "text/html; charset=utf-8",
            published(EXAMPLE, &app, &key),
        )],
    );
    let c = &browser.client;
    c.goto(&format!(
        "{site}/?utm_source=newsletter&utm_campaign=winter&session=secret#top"
    ))
    .await
    .unwrap();
    attached(c).await;
    assert_accessible(c, axe.as_deref(), "example form").await;

    fill_example(c, "123").await;
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let (outcome, text) = wait_for_outcome(c).await;
    assert_eq!(outcome, "error");
    assert!(text.contains("check the highlighted fields"), "{text}");
    let note = c
        .find(Locator::Css("#phone + .ciq-error"))
        .await
        .expect("the phone's error is beside it");
    let note_text = note.text().await.unwrap();
    assert!(note_text.starts_with("Phone"), "{note_text}");
    assert!(!note_text.contains("E.164"), "plain words: {note_text}");
    assert!(
        !note_text.contains("(optional)"),
        "the field's name: {note_text}"
    );
    let phone = c.find(Locator::Id("phone")).await.unwrap();
    assert_eq!(
        phone.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        phone.attr("aria-describedby").await.unwrap(),
        note.attr("id").await.unwrap()
    );
    assert_eq!(ciq_entity::Lead::find().count(&app.db).await.unwrap(), 0);
    assert_accessible(c, axe.as_deref(), "example form with an error").await;

    fill(c, &[("phone", "+1 555 123 4567")]).await;
    let disabled = c
        .execute(
            "const button = document.querySelector('button[type=submit]');
             button.click(); button.click();
             return button.disabled;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(disabled, json!(true), "the button waits for the answer");
    let (outcome, text) = wait_for_outcome(c).await;
    assert_eq!(
        (outcome.as_str(), text.as_str()),
        (
            "success",
            "Thank you! We received your message and will be in touch."
        )
    );
    assert_eq!(
        c.find(Locator::Id("name"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(""),
        "the form is cleared"
    );
    assert!(
        c.find(Locator::Css(".ciq-error")).await.is_err(),
        "errors cleared"
    );
    let stored = ciq_entity::Lead::find().all(&app.db).await.unwrap();
    assert_eq!(stored.len(), 1, "a double click makes one lead");
    let lead = ciq_leads::Lead::from(stored[0].clone());
    assert_eq!(lead.name, "Jane From The Web");
    assert_eq!(lead.phone.as_deref(), Some("15551234567"));
    assert_eq!(lead.industry, "Retail");
    assert_eq!(lead.source, "Website Form");
    assert_eq!(lead.spam, None);
    let attribution = lead.attribution.expect("attribution recorded");
    assert_eq!(attribution.utm_source.as_deref(), Some("newsletter"));
    assert_eq!(attribution.utm_campaign.as_deref(), Some("winter"));
    assert_eq!(
        attribution.page_url,
        Some(format!("{site}/?utm_source=newsletter&utm_campaign=winter"))
    );
    let consent = lead.consent.expect("consent recorded");
    assert!(consent.granted);
    assert_eq!(
        consent.text,
        "I agree that Acme may contact me about my enquiry."
    );
    assert_eq!(consent.ip.as_deref(), Some("127.0.0.1"));

    // The same page on an origin the key does not list: the visitor reads a refusal in
    // words, the page's listener the code, and nothing is stored.
    let elsewhere = site.replace("127.0.0.1", "localhost");
    c.goto(&format!("{elsewhere}/")).await.unwrap();
    attached(c).await;
    c.execute(
        "document.querySelector('form').addEventListener('ciq:error',
           e => document.body.dataset.code = e.detail.code);",
        vec![],
    )
    .await
    .unwrap();
    fill_example(c, "").await;
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let (outcome, text) = wait_for_outcome(c).await;
    assert_eq!(outcome, "error");
    assert!(text.contains("cannot send messages"), "{text}");
    let code = c
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .attr("data-code")
        .await
        .unwrap();
    assert_eq!(code.as_deref(), Some("origin_not_allowed"));
    assert_eq!(ciq_entity::Lead::find().count(&app.db).await.unwrap(), 1);
    server.abort();
    browser.close().await;
    app.stop().await;
}

/// The Turnstile example with a stand-in widget: the widget's token travels in
/// `X-Challenge-Token` to the provider's check (the local fake), the lead is stored as
/// a normal one, and the widget is reset for the next visitor; the page passes
/// axe-core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_turnstile_example_forwards_the_widgets_token() {
    let fake = FakeSiteverify::start("0x4AAAAAAAsecret").await;
    let url = fake.url.clone();
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.webhook_key = Some(ciq_store::secret::new_key());
        s.challenge_verify_url = Some(url);
    })
    .await
    .expect("sqlite");
    let Some(browser) = Browser::start().await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let owner = app.create_user("site@acme.test").await;
    let (_, key) = keys::create_key_sealing(
        &app.db,
        &ciq_admin::SecretHasher::default(),
        app.states.webhook_key.as_ref(),
        owner,
        NewKey {
            allowed_origins: vec![site.clone()],
            challenge: Some(
                NewChallenge::checked(ChallengeProvider::Turnstile, fake.secret()).unwrap(),
            ),
            ..NewKey::default()
        },
        &keys::Actor::cli(),
    )
    .await
    .unwrap();
    let page = published(TURNSTILE_EXAMPLE, &app, key.expose())
        .replace(TURNSTILE_API, &format!("{site}/stand-in-widget.js"));
    let server = serve_site(
        listener,
        vec![
            ("/", "text/html; charset=utf-8", page),
            (
                "/stand-in-widget.js",
                "text/javascript",
                STAND_IN_WIDGET.to_owned(),
            ),
        ],
    );
    let c = &browser.client;
    c.goto(&format!("{site}/")).await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("input[name=cf-turnstile-response]"))
        .await
        .expect("the widget rendered");
    attached(c).await;
    assert_accessible(c, axe_source().as_deref(), "Turnstile example form").await;
    fill_example(c, "").await;
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let (outcome, text) = wait_for_outcome(c).await;
    assert_eq!(outcome, "success", "{text}");
    let asked: Vec<Value> = fake
        .asked()
        .into_iter()
        .map(|a| json!(a.get("response")))
        .collect();
    assert_eq!(asked, [json!("pass-1")], "the widget's token was checked");
    let token = c
        .find(Locator::Css("input[name=cf-turnstile-response]"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(token.as_deref(), Some("pass-2"), "the widget was reset");
    let stored = ciq_entity::Lead::find().all(&app.db).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].spam_reason, None);
    server.abort();
    browser.close().await;
    app.stop().await;
}
