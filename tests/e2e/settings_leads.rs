//! Settings → Leads over HTTP: sign-in required, one owner never sees another's leads,
//! and the CSV export walks every page of a large account exactly once.

use ciq_e2e::{TestApp, on_every_backend};
use sea_orm::{ActiveValue::Set, EntityTrait};

use ciq_e2e::console::{PASSWORD, browser_like_client, get_html as get, owner, sign_in};

on_every_backend!(
    the_pages_need_a_session_and_show_only_the_owners_leads,
    the_export_streams_every_lead_of_the_filter_once,
    the_filters_find_what_an_owner_means,
);

/// `count` leads of `user` made with `key_id`, one millisecond apart, newest last.
async fn insert_leads(
    app: &TestApp,
    user: uuid::Uuid,
    key_id: uuid::Uuid,
    count: usize,
    source: &str,
) {
    let start = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let rows: Vec<ciq_entity::lead::ActiveModel> = (0..count)
        .map(|i| {
            let at = start + chrono::TimeDelta::milliseconds(i as i64);
            ciq_entity::lead::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                user_id: Set(user),
                api_key_id: Set(Some(key_id)),
                name: Set(format!("Lead {i:05}")),
                email: Set(format!("lead{i}@example.com")),
                source: Set(source.to_owned()),
                industry: Set("Retail".into()),
                status: Set(ciq_entity::lead::LeadStatus::New),
                monthly_revenue_cents: Set(Some(123_456)),
                description: Set(Some("line one\nline \"two\", with a comma".into())),
                created_at: Set(at),
                external_id: Set(Some(format!("{source}-{i}"))),
                updated_at: Set(Some(at)),
                // The other columns keep their defaults (empty).
                ..Default::default()
            }
        })
        .collect();
    for chunk in rows.chunks(500) {
        ciq_entity::Lead::insert_many(chunk.to_vec())
            .exec(&app.db)
            .await
            .unwrap();
    }
}

async fn the_pages_need_a_session_and_show_only_the_owners_leads(app: TestApp) {
    let alice = owner(&app, "alice@acme.test").await;
    let bob = owner(&app, "bob@acme.test").await;
    let (alice_key, _) = app.create_key_with(alice, Default::default()).await;
    let (bob_key, _) = app.create_key_with(bob, Default::default()).await;
    insert_leads(&app, alice, alice_key, 3, "Alice Form").await;
    insert_leads(&app, bob, bob_key, 2, "Bob Form").await;
    let bobs = ciq_leads::store::list(&app.db, bob, &Default::default(), None, 10)
        .await
        .unwrap()
        .0;

    // Signed out: every leads page sends you to sign in, the export too.
    let anonymous = browser_like_client();
    for path in [
        "/settings/leads",
        "/settings/leads/export.csv",
        &format!("/settings/leads/{}", bobs[0].id),
    ] {
        let resp = anonymous
            .get(format!("{}{path}", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{path}");
        let back: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        assert_eq!(
            resp.headers()["location"],
            format!("/login?next={back}").as_str()
        );
    }

    let client = browser_like_client();
    assert_eq!(
        sign_in(&app, &client, "alice@acme.test", PASSWORD)
            .await
            .status(),
        303
    );
    let (status, page) = get(&client, &app, "/settings/leads").await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("Alice Form").count(), 3);
    assert!(!page.contains("Bob Form"));
    // Bob's lead by id, or through a filter naming Bob's key: nothing of his.
    let (status, page) = get(&client, &app, &format!("/settings/leads/{}", bobs[0].id)).await;
    assert_eq!(status, 404);
    assert!(page.contains("That lead does not exist in your account."));
    assert_eq!(
        get(&client, &app, "/settings/leads/not-a-lead").await.0,
        404
    );
    let (status, page) = get(&client, &app, &format!("/settings/leads?key={bob_key}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("No leads match.") && !page.contains("Bob Form"));
    let (_, csv) = get(
        &client,
        &app,
        &format!("/settings/leads/export.csv?key={bob_key}"),
    )
    .await;
    assert_eq!(csv.lines().count(), 1, "the header alone: {csv}");
    // Broken filters are named, not ignored.
    for (query, said) in [
        ("status=won", "Status: &quot;won&quot; is not a status"),
        ("key=nope", "Key: choose one of your keys"),
        ("to=31.12.2026", "To: must be a date like 2026-12-01"),
        ("cursor=garbage", "Page: that page link is broken"),
    ] {
        let (status, page) = get(&client, &app, &format!("/settings/leads?{query}")).await;
        assert_eq!(status, 422, "{query}");
        assert!(page.contains(said), "{query}");
    }
    let (status, page) = get(&client, &app, "/settings/leads/export.csv?from=soon").await;
    assert_eq!(status, 422);
    assert!(page.contains("From: must be a date"));
    // The page's protections, as on the key pages.
    let resp = client
        .get(format!("{}/settings/leads", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
}

async fn the_export_streams_every_lead_of_the_filter_once(app: TestApp) {
    let alice = owner(&app, "alice@acme.test").await;
    let (key, _) = app.create_key_with(alice, Default::default()).await;
    // More than two export chunks, and a page of other leads the filter leaves out.
    let count = 2 * ciq_console::leads::EXPORT_CHUNK as usize + 17;
    insert_leads(&app, alice, key, count, "Import").await;
    insert_leads(&app, alice, key, 40, "Other").await;
    let client = browser_like_client();
    sign_in(&app, &client, "alice@acme.test", PASSWORD).await;
    let resp = client
        .get(format!(
            "{}/settings/leads/export.csv?source=Import",
            app.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().get("content-length").is_none(),
        "streamed, not buffered"
    );
    let body = resp.bytes().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_ref());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "id",
            "created_at",
            "updated_at",
            "name",
            "email",
            "phone",
            "source",
            "industry",
            "score",
            "status",
            "monthly_revenue",
            "budget",
            "description",
            "external_id",
            "api_key_id",
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
            "consent_ip",
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), count);
    let names: Vec<&str> = records.iter().map(|r| &r[3]).collect();
    let mut expected: Vec<String> = (0..count).map(|i| format!("Lead {i:05}")).collect();
    expected.reverse();
    assert_eq!(names, expected, "every lead once, newest first");
    assert!(records.iter().all(|r| &r[6] == "Import"));
    assert_eq!(&records[0][10], "1234.56");
    assert_eq!(&records[0][12], "line one\nline \"two\", with a comma");
    assert_eq!(&records[0][14], key.to_string());
}

/// The source filter ignores case ("trade fair" finds "Trade fair"), the key filter
/// offers the leads imported from a file (made with no key), and a To before From is
/// named rather than answered with an empty list; the export follows the same filter.
async fn the_filters_find_what_an_owner_means(app: TestApp) {
    let alice = owner(&app, "alice@acme.test").await;
    let (key, _) = app.create_key_with(alice, Default::default()).await;
    insert_leads(&app, alice, key, 3, "Trade fair").await;
    insert_leads(&app, alice, key, 2, "Website").await;
    let imported = ciq_entity::lead::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        user_id: Set(alice),
        api_key_id: Set(None),
        name: Set("Imported Iris".into()),
        email: Set("iris@example.com".into()),
        source: Set("CRM export".into()),
        industry: Set("Retail".into()),
        status: Set(ciq_entity::lead::LeadStatus::New),
        created_at: Set(chrono::Utc::now()),
        updated_at: Set(Some(chrono::Utc::now())),
        ..Default::default()
    };
    ciq_entity::Lead::insert(imported)
        .exec(&app.db)
        .await
        .unwrap();
    let client = browser_like_client();
    sign_in(&app, &client, "alice@acme.test", PASSWORD).await;
    let rows = |page: &str| page.matches("<tr").count().saturating_sub(1);
    let (status, page) = get(&client, &app, "/settings/leads?source=trade+FAIR").await;
    assert_eq!(status, 200);
    assert_eq!(rows(&page), 3, "any case");
    let (_, page) = get(&client, &app, "/settings/leads?key=imported").await;
    assert_eq!(rows(&page), 1);
    assert!(page.contains("Imported Iris"));
    assert!(page.contains("<option value=\"imported\" selected"));
    let (_, csv) = get(&client, &app, "/settings/leads/export.csv?key=imported").await;
    assert_eq!(csv.lines().count(), 2, "the header and Iris: {csv}");
    let (status, page) = get(
        &client,
        &app,
        "/settings/leads?from=2026-12-05&to=2026-12-01",
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("To: must be the same day as From or after it"));
    let (status, _) = get(
        &client,
        &app,
        "/settings/leads?from=2026-12-01&to=2026-12-01",
    )
    .await;
    assert_eq!(status, 200, "one day");
}
