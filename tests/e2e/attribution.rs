//! Attribution and consent: recorded when a lead is created (by a web form, a server
//! key, an upsert that creates, an import), with the gateway's own time and, for a
//! browser key, the visitor's address; never changed afterwards; on the lead object,
//! in webhook payloads, in the export, and filtering the list.

use ciq_admin::keys::NewKey;
use ciq_e2e::console::{PASSWORD, browser_like_client, get_html, hidden_csrf, sign_in};
use ciq_e2e::{Backend, TestApp, reference_curl_body};
use ciq_entity::webhook_delivery;
use ciq_leads::events::EventType;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::forms::{CREATE, SHOP, VISITOR, behind_a_proxy, read, shop_owner, submit};
use crate::webhooks::send;

ciq_e2e::with_each_backend!(
    a_web_form_records_attribution_and_consent_with_the_visitors_address,
    attribution_and_consent_never_change,
    the_list_is_filtered_by_utm_source_and_campaign,
    the_export_spreads_attribution_and_consent_and_an_import_reads_them_back,
);

fn attribution() -> Value {
    json!({
        "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "Spring Sale",
        "gclid": "Cj0KCQ", "page_url": "https://shop.example/contact?utm_source=google",
        "referrer": "https://www.google.com/",
    })
}

fn consent() -> Value {
    json!({"text": "I agree to be contacted about my enquiry.", "granted": true})
}

fn with_origin(attribution: Value, consent: Value) -> Value {
    let mut body = reference_curl_body();
    body["lead"]["attribution"] = attribution;
    body["lead"]["consent"] = consent;
    body
}

/// A browser submission carries both to the lead object (its consent with the
/// gateway's time and the visitor's address), the stored lead and the webhook payload;
/// a server key's consent has no address; a lead without either shows them null.
async fn a_web_form_records_attribution_and_consent_with_the_visitors_address(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.trust_forwarded_for = true;
        s.webhook_key = Some(ciq_store::secret::new_key());
        s.webhooks.allow_private_networks = true;
        s.webhooks.deliver = false;
    })
    .await
    else {
        return;
    };
    let (owner, key, reader) = shop_owner(&app, "shop@acme.test", NewKey::default()).await;
    let (hook, _) = ciq_webhooks::endpoints::create(
        &app.db,
        app.states.webhook_key.as_ref(),
        owner,
        "https://hooks.example.com/in",
        &EventType::ALL,
        true,
    )
    .await
    .unwrap();
    let body = with_origin(attribution(), consent());
    let (status, _, created) = submit(&app, CREATE, &key, VISITOR, Some(SHOP), &body).await;
    assert_eq!(status, 201, "{created}");
    let lead = &created["lead"];
    assert_eq!(lead["attribution"]["utm_source"], "google");
    assert_eq!(lead["attribution"]["utm_campaign"], "Spring Sale");
    assert_eq!(lead["attribution"]["fbclid"], Value::Null);
    assert_eq!(
        lead["attribution"]["page_url"],
        "https://shop.example/contact?utm_source=google"
    );
    assert_eq!(lead["consent"]["granted"], true);
    assert_eq!(lead["consent"]["text"], consent()["text"]);
    assert_eq!(lead["consent"]["ip"], VISITOR);
    assert_eq!(lead["consent"]["granted_at"], lead["created_at"]);
    let id = lead["id"].as_str().unwrap();
    let stored = read(&app, &reader, &format!("/api/external/leads/{id}")).await;
    assert_eq!(stored["lead"]["attribution"], lead["attribution"]);
    assert_eq!(stored["lead"]["consent"], lead["consent"]);

    // The same from a server key: no address is recorded; none of it: both null.
    let (status, server) = send(
        &app,
        &reader,
        reqwest::Method::POST,
        CREATE,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "{server}");
    assert_eq!(server["lead"]["consent"]["ip"], Value::Null);
    assert_eq!(server["lead"]["consent"]["granted"], true);
    let (_, plain) = send(
        &app,
        &reader,
        reqwest::Method::POST,
        CREATE,
        Some(reference_curl_body()),
    )
    .await;
    assert_eq!(plain["lead"]["attribution"], Value::Null);
    assert_eq!(plain["lead"]["consent"], Value::Null);

    // The webhook payload carries the lead object, both included.
    ciq_webhooks::outbox::drain(&app.db, ciq_leads::events::CODECS)
        .await
        .unwrap();
    let delivery = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(hook.id))
        .filter(webhook_delivery::Column::LeadId.eq(id.parse::<uuid::Uuid>().unwrap()))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the lead was announced");
    let payload: Value = serde_json::from_str(&delivery.payload).unwrap();
    assert_eq!(payload["data"]["lead"]["attribution"], lead["attribution"]);
    assert_eq!(payload["data"]["lead"]["consent"], lead["consent"]);

    // Broken rules are named by their path; nothing is stored.
    let broken = with_origin(
        json!({"utm_source": 7, "page_url": "/contact", "colour": "red"}),
        json!({"granted": "yes"}),
    );
    let (status, _, refused) = submit(&app, CREATE, &key, VISITOR, Some(SHOP), &broken).await;
    assert_eq!(status, 422, "{refused}");
    let fields: Vec<&str> = refused["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "lead.attribution.utm_source",
            "lead.attribution.page_url",
            "lead.attribution.colour",
            "lead.consent.text",
            "lead.consent.granted"
        ]
    );
    let listed = read(&app, &reader, "/api/external/leads").await;
    assert_eq!(listed["leads"].as_array().unwrap().len(), 3);
    app.stop().await;
}

/// An update carrying attribution or consent is refused naming it (PATCH, and an
/// upsert that finds its lead, which then changes nothing); an upsert that creates
/// takes them, and one without them leaves them as they were.
async fn attribution_and_consent_never_change(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let owner = app.create_user("crm@acme.test").await;
    let (_, key) = app
        .create_key_with(
            owner,
            NewKey {
                scopes: ciq_admin::Scopes::of(&ciq_admin::Scope::ALL),
                ..NewKey::default()
            },
        )
        .await;
    let upsert = "/api/external/leads/upsert";
    let mut body = with_origin(attribution(), consent());
    body["lead"]["external_id"] = json!("crm-1");
    let (status, created) = send(
        &app,
        &key,
        reqwest::Method::POST,
        upsert,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let first = created["lead"].clone();
    assert_eq!(first["consent"]["granted"], true);
    assert_eq!(first["attribution"]["utm_source"], "google");
    let path = format!("/api/external/leads/{}", first["id"].as_str().unwrap());

    for field in ["attribution", "consent"] {
        let mut change = json!({"lead": {"score": 3}});
        change["lead"][field] = body["lead"][field].clone();
        let (status, refused) = send(
            &app,
            &key,
            reqwest::Method::PATCH,
            &path,
            Some(change.clone()),
        )
        .await;
        assert_eq!(status, 422, "{refused}");
        assert_eq!(
            refused["error"]["details"][0]["field"],
            format!("lead.{field}")
        );
        assert!(
            refused["error"]["details"][0]["message"]
                .as_str()
                .unwrap()
                .contains("never changes")
        );
    }
    // An upsert that finds the lead with consent: refused, and its name is not changed.
    let mut again = body.clone();
    again["lead"]["name"] = json!("Someone Else");
    again["lead"]["attribution"] = Value::Null;
    again["lead"]["consent"] = json!({"text": "Other words", "granted": false});
    let (status, refused) = send(
        &app,
        &key,
        reqwest::Method::POST,
        upsert,
        Some(again.clone()),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["details"][0]["field"], "lead.consent");
    // Without them, the upsert updates and they stay as recorded.
    again["lead"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k != "consent" && k != "attribution");
    let (status, updated) = send(
        &app,
        &key,
        reqwest::Method::POST,
        upsert,
        Some(again.clone()),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["lead"]["name"], "Someone Else");
    assert_eq!(updated["lead"]["consent"], first["consent"]);
    assert_eq!(updated["lead"]["attribution"], first["attribution"]);
    let (_, stored) = send(&app, &key, reqwest::Method::GET, &path, None).await;
    assert_eq!(stored["lead"]["consent"], first["consent"]);
    app.stop().await;
}

/// `utm_source` and `utm_campaign` narrow the list, any case, with the other filters.
async fn the_list_is_filtered_by_utm_source_and_campaign(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let owner = app.create_user("ads@acme.test").await;
    let (_, key) = app
        .create_key_with(
            owner,
            NewKey {
                scopes: ciq_admin::Scopes::of(&ciq_admin::Scope::ALL),
                ..NewKey::default()
            },
        )
        .await;
    // Another account's matching lead is never listed.
    let other = app.create_user("other@acme.test").await;
    let (_, other_key) = app.create_key_with(other, NewKey::default()).await;
    let tagged = |source: &str, campaign: &str| {
        with_origin(
            json!({"utm_source": source, "utm_campaign": campaign}),
            Value::Null,
        )
    };
    for (k, body) in [
        (&key, tagged("google", "spring")),
        (&key, tagged("Google", "autumn")),
        (&key, tagged("bing", "spring")),
        (&key, reference_curl_body()),
        (&other_key, tagged("google", "spring")),
    ] {
        let (status, answer) =
            send(&app, k, reqwest::Method::POST, CREATE, Some(body.clone())).await;
        assert_eq!(status, 201, "{answer}");
    }
    let campaigns = |page: &Value| -> Vec<String> {
        let mut found: Vec<String> = page["leads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                l["attribution"]["utm_campaign"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        found.sort();
        found
    };
    let page = read(&app, &key, "/api/external/leads?utm_source=GOOGLE").await;
    assert_eq!(campaigns(&page), ["autumn", "spring"]);
    let page = read(
        &app,
        &key,
        "/api/external/leads?utm_source=google&utm_campaign=Spring",
    )
    .await;
    assert_eq!(campaigns(&page), ["spring"]);
    let page = read(&app, &key, "/api/external/leads?utm_campaign=spring").await;
    assert_eq!(campaigns(&page), ["spring", "spring"]);
    let page = read(&app, &key, "/api/external/leads?utm_source=yahoo").await;
    assert_eq!(page["leads"], json!([]));
    let (status, refused) = send(
        &app,
        &key,
        reqwest::Method::GET,
        "/api/external/leads?utm_source=a%00b",
        None,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(refused["error"]["details"][0]["field"], "utm_source");
    app.stop().await;
}

/// The export has a column per attribution field and consent part; an import reads
/// the attribution and consent columns back into new leads (no address: an import is
/// no web form), and a row that updates a lead leaves its record alone.
async fn the_export_spreads_attribution_and_consent_and_an_import_reads_them_back(
    backend: Backend,
) {
    let Some(app) = behind_a_proxy(backend).await else {
        return;
    };
    let (owner, key, reader) = shop_owner(&app, "alice@acme.test", NewKey::default()).await;
    ciq_admin::users::set_password(
        &app.db,
        &ciq_admin::SecretHasher::default(),
        owner,
        &PASSWORD.into(),
    )
    .await
    .unwrap();
    let body = with_origin(attribution(), consent());
    let (status, _, created) = submit(&app, CREATE, &key, VISITOR, Some(SHOP), &body).await;
    assert_eq!(status, 201);
    let client = browser_like_client();
    sign_in(&app, &client, "alice@acme.test", PASSWORD).await;
    let csv = client
        .get(format!("{}/settings/leads/export.csv", app.base_url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut reader_csv = csv::Reader::from_reader(csv.as_ref());
    let header: Vec<String> = reader_csv
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let row: Vec<String> = reader_csv
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let cell = |column: &str| {
        let at = header
            .iter()
            .position(|h| h == column)
            .unwrap_or_else(|| panic!("{column} in {header:?}"));
        row[at].clone()
    };
    let tail: Vec<&str> = header[header.len() - 14..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "utm_term",
            "utm_content",
            "gclid",
            "fbclid",
            "msclkid",
            "page_url",
            "referrer",
            "consent_text",
            "consent_granted",
            "consent_granted_at",
            "consent_ip"
        ]
    );
    assert_eq!(cell("utm_campaign"), "Spring Sale");
    assert_eq!(cell("utm_term"), "");
    assert_eq!(cell("consent_granted"), "true");
    assert_eq!(cell("consent_ip"), VISITOR);
    assert_eq!(cell("consent_granted_at"), created["lead"]["created_at"]);

    // The Settings page of the lead shows both in words.
    let id = created["lead"]["id"].as_str().unwrap();
    let (_, html) = get_html(&client, &app, &format!("/settings/leads/{id}")).await;
    for shown in [
        "Where it came from",
        "UTM campaign",
        "Spring Sale",
        "Consent given",
        VISITOR,
    ] {
        assert!(html.contains(shown), "{shown} on the lead page");
    }

    // An import: a new lead takes the row's attribution and consent; a row that
    // updates the web form's lead (by external id) leaves its record as it was.
    let (_, imports_page) = get_html(&client, &app, "/settings/leads/imports").await;
    let csrf = hidden_csrf(&imports_page);
    let patch = json!({"lead": {"external_id": "crm-9"}});
    let resp = app
        .client
        .patch(format!("{}/api/external/leads/{id}", app.base_url))
        .header("Content-Type", "application/json")
        .header("X-API-Key", &reader)
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let file = "Name,Email,Source,Industry,External ID,utm_source,UTM Campaign,Opt-in,Consent text\n\
        Ada Lovelace,ada@example.com,Fair,Computing,crm-1,newsletter,winter,yes,Yes please\n\
        Jane Doe,jane@example.com,Fair,Computing,crm-9,other,other,no,Changed words\n\
        Bad Consent,bad@example.com,Fair,Computing,crm-2,,,maybe,Words\n";
    let resp =
        crate::imports::upload(&client, &app, &csrf, "crm.csv", file.as_bytes().to_vec()).await;
    let import = crate::imports::import_of(&resp);
    let started = crate::imports::start_suggested(&client, &app, &csrf, import).await;
    assert_eq!(started.status(), 303);
    let summary = crate::imports::finished(&app, owner, import).await;
    assert_eq!(
        (
            summary.created_count,
            summary.updated_count,
            summary.failed_count
        ),
        (1, 1, 1),
        "{summary:?}"
    );
    let failures = ciq_imports::store::failures(&app.db, owner, import, Some(10))
        .await
        .unwrap();
    assert!(
        failures
            .iter()
            .any(|f| f.reason.contains("Opt-in: must be true or false")),
        "{failures:?}"
    );
    let listed = read(&app, &reader, "/api/external/leads?utm_source=newsletter").await;
    let ada = &listed["leads"][0];
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["attribution"]["utm_campaign"], "winter");
    assert_eq!(ada["consent"]["granted"], true);
    assert_eq!(ada["consent"]["text"], "Yes please");
    assert_eq!(ada["consent"]["ip"], Value::Null);
    let jane = read(&app, &reader, &format!("/api/external/leads/{id}")).await;
    assert_eq!(jane["lead"]["attribution"], created["lead"]["attribution"]);
    assert_eq!(jane["lead"]["consent"], created["lead"]["consent"]);
    app.stop().await;
}
