//! Settings → Leads → Import over HTTP: upload, mapping and preview, the background
//! import, failed rows listed and downloadable, a re-run that dedupes through
//! external_id, refused files, and one owner never reaching another's import.

use std::time::{Duration, Instant};

use ciq_e2e::{Backend, TestApp, on_every_backend};
use ciq_entity::lead_import::ImportStatus;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use ciq_e2e::console::get_html as page;
use ciq_e2e::console::{
    PASSWORD, Session, browser_like_client, expect_status, hidden_csrf as csrf_of, owner,
    post_form, sign_in, signed_in,
};

on_every_backend!(
    the_preview_suggests_each_column_and_names_the_broken_rows,
    a_start_without_a_required_column_or_the_session_token_changes_nothing,
    an_import_stores_the_good_rows_and_does_not_keep_the_file,
    the_failed_rows_are_listed_by_line_and_downloadable_as_they_were,
    a_rerun_with_external_ids_updates_every_good_row_and_creates_nothing,
    another_owner_reaches_none_of_an_import,
    the_failed_rows_header_is_guarded_like_its_cells,
    the_draft_page_of_the_largest_upload_stays_under_a_megabyte,
);

/// Six rows: four good (one with a formula guard from our own export, one with a
/// two-line note on lines 5–6), line 4 with a bad email, line 7 with no name and
/// score 11.
pub(crate) const CSV: &str = "CRM ID,Full Name,E-mail,Lead Source,Industry,Score,Notes\n\
crm-1,Ada Lovelace,ada@example.com,Trade fair,Computing,9,first\n\
crm-2,'=Grace Hopper,grace@example.com,Trade fair,Navy,,\n\
crm-3,Bad Email,not-an-email,Trade fair,Retail,5,\n\
crm-4,Alan Turing,alan@example.com,Website,Computing,7,\"two\nlines\"\n\
crm-5,,nameless@example.com,Website,Retail,11,\n\
crm-6,Edsger Dijkstra,edsger@example.com,Website,Computing,8,last\n";

/// Uploads `bytes` as `name` with `csrf`; the answer.
pub(crate) async fn upload(
    client: &reqwest::Client,
    app: &TestApp,
    csrf: &str,
    name: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes)
                .file_name(name.to_owned())
                .mime_str("text/csv")
                .unwrap(),
        );
    client
        .post(format!("{}/settings/leads/imports", app.base_url))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// The import id of an upload's redirect.
pub(crate) fn import_of(resp: &reqwest::Response) -> Uuid {
    assert_eq!(resp.status(), 303, "the upload is accepted");
    let location = resp.headers()["location"].to_str().unwrap();
    location
        .strip_prefix("/settings/leads/imports/")
        .expect("redirects to the import")
        .parse()
        .unwrap()
}

/// Waits until the import is no longer queued or running.
pub(crate) async fn finished(
    app: &TestApp,
    user: Uuid,
    id: Uuid,
) -> ciq_imports::store::ImportSummary {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let import = ciq_imports::store::find(&app.db, user, id)
            .await
            .unwrap()
            .expect("the import exists");
        if !import.status.is_pending() {
            return import;
        }
        assert!(
            Instant::now() < deadline,
            "the import never finished: {import:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts an import with the mapping its page suggests (the form as a browser sends it).
pub(crate) async fn start_suggested(
    client: &reqwest::Client,
    app: &TestApp,
    csrf: &str,
    id: Uuid,
) -> reqwest::Response {
    let mut form: Vec<(String, String)> = vec![
        ("csrf".into(), csrf.into()),
        ("action".into(), "start".into()),
    ];
    let (_, html) = page(client, app, &format!("/settings/leads/imports/{id}")).await;
    // A select per column of the file.
    for i in 0.. {
        let select = format!("name=\"col_{i}\"");
        let Some(at) = html.find(&select) else {
            assert!(i > 0, "a select per column");
            break;
        };
        let rest = &html[at..at + html[at..].find("</select>").unwrap()];
        let chosen = rest
            .split("<option ")
            .find(|o| o.contains(" selected"))
            .and_then(|o| o.split("value=\"").nth(1))
            .map(|v| v[..v.find('"').unwrap()].to_owned())
            .unwrap_or_default();
        form.push((format!("col_{i}"), chosen));
    }
    client
        .post(format!("{}/settings/leads/imports/{id}", app.base_url))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn leads_of(app: &TestApp, user: Uuid) -> Vec<ciq_entity::lead::Model> {
    ciq_entity::Lead::find()
        .filter(ciq_entity::lead::Column::UserId.eq(user))
        .all(&app.db)
        .await
        .unwrap()
}

/// Alice, signed in, with the page's CSRF token and her upload of [`CSV`] (a draft).
struct Uploaded {
    alice: Uuid,
    client: reqwest::Client,
    csrf: String,
    id: Uuid,
}

async fn alice_uploads(app: &TestApp) -> Uploaded {
    let Session { user, client, csrf } =
        signed_in(app, "alice@acme.test", "/settings/leads/imports").await;
    let (_, html) = page(&client, app, "/settings/leads/imports").await;
    assert!(html.contains("enctype=\"multipart/form-data\""));
    let resp = upload(&client, app, &csrf, "crm.csv", CSV.as_bytes().to_vec()).await;
    let id = import_of(&resp);
    Uploaded {
        alice: user,
        client,
        csrf,
        id,
    }
}

/// [`CSV`] uploaded again by `alice`, started with the suggested mapping (external_id
/// mapped) and run to its end: the finished import.
async fn import_again(
    client: &reqwest::Client,
    app: &TestApp,
    csrf: &str,
    alice: Uuid,
) -> ciq_imports::store::ImportSummary {
    let resp = upload(client, app, csrf, "crm.csv", CSV.as_bytes().to_vec()).await;
    let again = import_of(&resp);
    assert_eq!(
        start_suggested(client, app, csrf, again).await.status(),
        303
    );
    finished(app, alice, again).await
}

/// [`alice_uploads`], started with the suggested mapping and run to its end.
async fn alice_imports(app: &TestApp) -> Uploaded {
    let uploaded = alice_uploads(app).await;
    let Uploaded {
        alice,
        ref client,
        ref csrf,
        id,
    } = uploaded;
    assert_eq!(start_suggested(client, app, csrf, id).await.status(), 303);
    let done = finished(app, alice, id).await;
    assert_eq!(done.status, ImportStatus::Done, "{done:?}");
    uploaded
}

async fn the_preview_suggests_each_column_and_names_the_broken_rows(app: TestApp) {
    let Uploaded { client, id, .. } = alice_uploads(&app).await;
    // The usual names are matched; the preview names the broken rows' columns.
    let (status, html) = page(&client, &app, &format!("/settings/leads/imports/{id}")).await;
    assert_eq!(status, 200);
    for (column, field) in [
        (0, "external_id"),
        (1, "name"),
        (2, "email"),
        (3, "source"),
        (4, "industry"),
        (5, "score"),
        (6, "description"),
    ] {
        let select = &html[html.find(&format!("name=\"col_{column}\"")).unwrap()..];
        let select = &select[..select.find("</select>").unwrap()];
        assert!(
            select.contains(&format!("value=\"{field}\" selected")),
            "column {column} should be {field}: {select}"
        );
    }
    assert!(
        html.contains("E-mail: must be a valid email address"),
        "{html}"
    );
    assert!(html.contains("Full Name: is required"));
    assert!(html.contains("Score: must be a whole number from 1 to 10"));
    assert!(html.contains("importing this file again creates nothing twice"));
    // Before it starts, what the whole file will do; the bad cells marked.
    assert!(
        html.contains(
            "<strong>4 rows will import</strong>, <strong>2 rows will fail</strong> (lines 4, 7)"
        ),
        "{html}"
    );
    assert_eq!(
        html.matches("<td class=\"fault\"").count(),
        3,
        "email, empty name, score"
    );
    assert!(html.contains("Import 4 rows, skip 2 that fail"));
    // Another mapping changes the count: without an email column no row can be
    // created, each can only update the lead with its external id.
    let (status, html) = page(&client, &app, &format!("/settings/leads/imports/{id}")).await;
    assert_eq!(status, 200);
    let csrf = ciq_e2e::console::hidden_csrf(&html);
    let resp = client
        .post(format!("{}/settings/leads/imports/{id}", app.base_url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "preview"),
            ("col_0", "external_id"),
            ("col_1", "name"),
            ("col_3", "source"),
            ("col_4", "industry"),
        ])
        .send()
        .await
        .unwrap();
    ciq_e2e::console::expect_status(resp, 303).await;
    let (_, html) = page(&client, &app, &format!("/settings/leads/imports/{id}")).await;
    assert!(
        html.contains(
            "<strong>0 rows will import</strong>, 6 rows will update the lead with their \
             external_id if you have one (and fail if not); none will fail."
        ),
        "{html}"
    );
}

async fn a_start_without_a_required_column_or_the_session_token_changes_nothing(app: TestApp) {
    let Uploaded {
        alice,
        client,
        csrf,
        id,
    } = alice_uploads(&app).await;
    // Starting without a name column is refused, naming the field; nothing starts.
    let resp = client
        .post(format!("{}/settings/leads/imports/{id}", app.base_url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "start"),
            ("col_0", "external_id"),
            ("col_2", "email"),
            ("col_3", "source"),
            ("col_4", "industry"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("name is required: choose its column")
    );
    let draft = ciq_imports::store::find(&app.db, alice, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(draft.status, ImportStatus::Draft);
    // A form without the session's token changes nothing.
    let resp = client
        .post(format!("{}/settings/leads/imports/{id}", app.base_url))
        .form(&[("csrf", "forged"), ("action", "start"), ("col_1", "name")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

async fn an_import_stores_the_good_rows_and_does_not_keep_the_file(app: TestApp) {
    let Uploaded {
        alice,
        client,
        csrf,
        id,
    } = alice_uploads(&app).await;
    let resp = start_suggested(&client, &app, &csrf, id).await;
    assert_eq!(resp.status(), 303);
    let done = finished(&app, alice, id).await;
    assert_eq!(done.status, ImportStatus::Done, "{done:?}");
    assert_eq!(
        (
            done.position,
            done.created_count,
            done.updated_count,
            done.failed_count
        ),
        (6, 4, 0, 2)
    );
    // The file is not kept once it is imported.
    assert_eq!(
        ciq_imports::store::content(&app.db, alice, id)
            .await
            .unwrap(),
        None
    );

    let mut leads = leads_of(&app, alice).await;
    leads.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    let summary: Vec<(&str, &str, Option<i32>, Option<&str>)> = leads
        .iter()
        .map(|l| {
            (
                l.external_id.as_deref().unwrap(),
                l.name.as_str(),
                l.score,
                l.description.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("crm-1", "Ada Lovelace", Some(9), Some("first")),
            ("crm-2", "=Grace Hopper", None, None),
            ("crm-4", "Alan Turing", Some(7), Some("two\nlines")),
            ("crm-6", "Edsger Dijkstra", Some(8), Some("last")),
        ]
    );
    assert!(
        leads
            .iter()
            .all(|l| l.api_key_id.is_none() && !l.source.is_empty())
    );
}

async fn the_failed_rows_are_listed_by_line_and_downloadable_as_they_were(app: TestApp) {
    let Uploaded { client, id, .. } = alice_imports(&app).await;
    // The page lists the failed rows by line, with every reason.
    let (status, html) = page(&client, &app, &format!("/settings/leads/imports/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "a finished import stops reloading"
    );
    let failures = &html[html.find("id=\"failures\"").expect("the failed rows")..];
    assert!(failures.contains(">4<") && failures.contains("E-mail: must be a valid email address"));
    assert!(
        failures.contains(">7<")
            && failures
                .contains("Full Name: is required; Score: must be a whole number from 1 to 10")
    );

    // …and the download has them as they were in the file, after line and reason.
    let resp = client
        .get(format!(
            "{}/settings/leads/imports/{id}/failures.csv",
            app.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("crm-failed-rows.csv")
    );
    let body = resp.text().await.unwrap();
    let rows: Vec<Vec<String>> = csv::Reader::from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec![
                "4",
                "E-mail: must be a valid email address",
                "crm-3",
                "Bad Email",
                "not-an-email",
                "Trade fair",
                "Retail",
                "5",
                ""
            ],
            vec![
                "7",
                "Full Name: is required; Score: must be a whole number from 1 to 10",
                "crm-5",
                "",
                "nameless@example.com",
                "Website",
                "Retail",
                "11",
                ""
            ],
        ]
    );
    assert!(body.starts_with("line,reason,CRM ID,Full Name,E-mail"));
}

async fn a_rerun_with_external_ids_updates_every_good_row_and_creates_nothing(app: TestApp) {
    let Uploaded {
        alice,
        client,
        csrf,
        ..
    } = alice_imports(&app).await;
    // The same file again, external_id mapped: every good row updates its lead.
    let done = import_again(&client, &app, &csrf, alice).await;
    assert_eq!(
        (done.created_count, done.updated_count, done.failed_count),
        (0, 4, 2)
    );
    assert_eq!(
        leads_of(&app, alice).await.len(),
        4,
        "a re-run creates nothing"
    );

    // Both imports are listed, with their counts.
    let (_, html) = page(&client, &app, "/settings/leads/imports").await;
    assert_eq!(html.matches("crm.csv").count(), 2);
}

/// Every imported lead is announced once per change: `lead.created` by the first import,
/// `lead.updated` by the re-run (the upserts' events are fanned out together per chunk,
/// none lost or doubled on the way).
async fn every_imported_lead_is_announced_once_to_webhooks(backend: Backend) {
    use ciq_leads::events::EventType;
    let Some(app) = TestApp::spawn_with(backend, crate::webhooks::quick).await else {
        return;
    };
    let receiver = ciq_e2e::Receiver::start().await;
    let Uploaded {
        alice,
        client,
        csrf,
        id,
    } = alice_uploads(&app).await;
    let (hook, _) = crate::webhooks::endpoint(
        &app,
        alice,
        &receiver.url("/hook"),
        &[EventType::Created, EventType::Updated],
    )
    .await;
    assert_eq!(
        start_suggested(&client, &app, &csrf, id).await.status(),
        303
    );
    assert_eq!(finished(&app, alice, id).await.status, ImportStatus::Done);
    let done = import_again(&client, &app, &csrf, alice).await;
    assert_eq!((done.created_count, done.updated_count), (0, 4));

    let deliveries = crate::webhooks::deliveries_of(&app, hook).await;
    let leads = leads_of(&app, alice).await;
    assert_eq!(leads.len(), 4);
    for lead in &leads {
        let kinds = |kind: &str| {
            deliveries
                .iter()
                .filter(|d| d.lead_id == lead.id && d.event_type == kind)
                .count()
        };
        assert_eq!(
            (kinds("lead.created"), kinds("lead.updated")),
            (1, 1),
            "{}",
            lead.name
        );
    }
    assert_eq!(deliveries.len(), 8, "nothing else announced");
}

mod announced {
    ciq_e2e::with_each_backend!(every_imported_lead_is_announced_once_to_webhooks);
    use super::*;
}

async fn another_owner_reaches_none_of_an_import(app: TestApp) {
    let Uploaded { id, .. } = alice_imports(&app).await;
    // Another owner reaches none of it.
    let Session {
        client: bob_client,
        csrf: bob_csrf,
        ..
    } = signed_in(&app, "bob@acme.test", "/settings/leads/imports").await;
    let (_, html) = page(&bob_client, &app, "/settings/leads/imports").await;
    assert!(!html.contains("crm.csv"));
    for path in [
        format!("/settings/leads/imports/{id}"),
        format!("/settings/leads/imports/{id}/failures.csv"),
    ] {
        let (status, body) = page(&bob_client, &app, &path).await;
        assert_eq!(status, 404, "{path}");
        assert!(!body.contains("not-an-email"));
    }
    let resp = bob_client
        .post(format!("{}/settings/leads/imports/{id}", app.base_url))
        .form(&[("csrf", bob_csrf.as_str()), ("action", "start")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // Signed out, nothing at all.
    let (status, _) = page(
        &browser_like_client(),
        &app,
        &format!("/settings/leads/imports/{id}"),
    )
    .await;
    assert_eq!(status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_that_cannot_be_imported_are_refused_and_nothing_is_kept() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    owner(&app, "alice@acme.test").await;
    let client = browser_like_client();
    sign_in(&app, &client, "alice@acme.test", PASSWORD).await;
    let (_, html) = page(&client, &app, "/settings/leads/imports").await;
    let csrf = csrf_of(&html);

    let resp = upload(&client, &app, "forged", "a.csv", CSV.as_bytes().to_vec()).await;
    assert_eq!(resp.status(), 403, "no session token, no upload");
    for (bytes, reason) in [
        (
            b"name,email\nAda,\xe9@x.io\n".to_vec(),
            "a.csv: the file is not UTF-8 text (line 2 is not)",
        ),
        (
            b"name,email\n".to_vec(),
            "a.csv: the file has a header row but no rows of leads",
        ),
        (
            b"name,,email\nA,b,c\n".to_vec(),
            "column 2 of the header row has no name",
        ),
        // A row wider than the header: its cells had no column, and the preview
        // rendered every one of them (520 000 cells a row made a 125 MB page).
        (
            b"name,email\nAda,ada@x.io\nBob,bob@x.io,x,y\n".to_vec(),
            "line 3 has 4 cells but the header row names 2 columns",
        ),
        (
            format!("name,{}\nAda,x\n", "n".repeat(101)).into_bytes(),
            "the name of column 2 of the header row is longer than 100 characters",
        ),
        (Vec::new(), "Choose a CSV file to upload."),
    ] {
        let resp = upload(&client, &app, &csrf, "a.csv", bytes).await;
        assert_eq!(resp.status(), 422, "{reason}");
        let body = resp.text().await.unwrap();
        assert!(body.contains(reason), "{reason}: {body}");
    }
    // Over the limit: refused by its declared length, before it is read.
    let resp = upload(
        &client,
        &app,
        &csrf,
        "big.csv",
        vec![b'a'; ciq_console::imports::MAX_UPLOAD_BYTES + 1],
    )
    .await;
    assert_eq!(resp.status(), 413);
    assert!(resp.text().await.unwrap().contains("at most 10 MB"));
    assert_eq!(
        ciq_entity::LeadImport::find().count(&app.db).await.unwrap(),
        0,
        "nothing refused is kept"
    );
}

async fn the_failed_rows_header_is_guarded_like_its_cells(app: TestApp) {
    let Session { user, client, csrf } =
        signed_in(&app, "alice@acme.test", "/settings/leads/imports").await;
    // A column the owner named like a formula, and one row that fails (no email).
    let file = "Full Name,E-mail,Lead Source,Industry,=HYPERLINK(\"x\")\nAda,,Web,Retail,1\n";
    let resp = upload(&client, &app, &csrf, "crm.csv", file.as_bytes().to_vec()).await;
    let id = import_of(&resp);
    assert_eq!(
        start_suggested(&client, &app, &csrf, id).await.status(),
        303
    );
    assert_eq!(finished(&app, user, id).await.failed_count, 1);
    let (status, body) = page(
        &client,
        &app,
        &format!("/settings/leads/imports/{id}/failures.csv"),
    )
    .await;
    assert_eq!(status, 200);
    let header = body.lines().next().unwrap();
    assert_eq!(
        header,
        "line,reason,Full Name,E-mail,Lead Source,Industry,\"'=HYPERLINK(\"\"x\"\")\""
    );
}

async fn the_draft_page_of_the_largest_upload_stays_under_a_megabyte(app: TestApp) {
    let Session { client, csrf, .. } =
        signed_in(&app, "alice@acme.test", "/settings/leads/imports").await;
    // 100 columns with 100-character names, 10 rows of 9 000-character cells made of
    // `&` (escaped five times over in HTML): 9 MB, the most a file may be.
    let header: Vec<String> = (0..100)
        .map(|i| format!("{i:03}{}", "&".repeat(97)))
        .collect();
    let mut file = header.join(",") + "\n";
    for _ in 0..10 {
        let row = vec!["&".repeat(9_000); 100];
        file += &row.join(",");
        file.push('\n');
    }
    assert!(file.len() < ciq_imports::MAX_FILE_BYTES);
    let id = import_of(&upload(&client, &app, &csrf, "wide.csv", file.into_bytes()).await);
    let (status, html) = page(&client, &app, &format!("/settings/leads/imports/{id}")).await;
    assert_eq!(status, 200);
    eprintln!("the draft page of a 9 MB upload: {} bytes", html.len());
    assert!(
        html.len() < 1024 * 1024,
        "the draft page is {} bytes",
        html.len()
    );
    // Each cell is shown cut short, and says so.
    assert!(html.contains(&format!(
        "{}…",
        "&amp;".repeat(ciq_imports::PREVIEW_CELL_CHARS)
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_keeps_twenty_drafts_and_runs_three_imports_at_once() {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let Session { user, client, csrf } =
        signed_in(&app, "alice@acme.test", "/settings/leads/imports").await;
    let mut drafts = Vec::new();
    for _ in 0..ciq_imports::store::MAX_DRAFTS {
        drafts.push(import_of(
            &upload(&client, &app, &csrf, "crm.csv", CSV.as_bytes().to_vec()).await,
        ));
    }
    let resp = upload(&client, &app, &csrf, "crm.csv", CSV.as_bytes().to_vec()).await;
    let html = expect_status(resp, 422).await;
    assert!(
        html.contains(
            "You have 20 imports that were never started: start or discard one of them first."
        ),
        "{html}"
    );
    // Discarding one makes room.
    let (status, _) = post_form(
        &client,
        &app,
        &format!("/settings/leads/imports/{}", drafts[0]),
        &[("csrf", csrf.as_str()), ("action", "discard")],
    )
    .await;
    assert_eq!(status, 303);
    assert!(
        ciq_imports::store::find(&app.db, user, drafts[0])
            .await
            .unwrap()
            .is_none()
    );
    let resp = upload(&client, &app, &csrf, "crm.csv", CSV.as_bytes().to_vec()).await;
    import_of(&resp);

    // Three imports held by an instance that is busy with them: a fourth waits its turn.
    for id in &drafts[1..4] {
        ciq_entity::lead_import::ActiveModel {
            id: Set(*id),
            status: Set(ImportStatus::Running),
            lease_owner: Set(Some(Uuid::now_v7())),
            lease_until: Set(Some(chrono::Utc::now() + chrono::TimeDelta::hours(1))),
            ..Default::default()
        }
        .update(&app.db)
        .await
        .unwrap();
    }
    let resp = start_suggested(&client, &app, &csrf, drafts[4]).await;
    let html = expect_status(resp, 422).await;
    assert!(
        html.contains("3 of your imports are waiting or running: start this one when one of them has finished."),
        "{html}"
    );
    let draft = ciq_imports::store::find(&app.db, user, drafts[4])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(draft.status, ImportStatus::Draft, "not queued");
}

/// An import worker on `db` alone (no gateway, so no other worker takes a turn),
/// `chunk_rows` rows a chunk.
fn lone_worker(
    db: &ciq_store::Db,
    chunk_rows: usize,
) -> std::sync::Arc<ciq_imports::worker::ImportWorker> {
    use ciq_imports::worker::{ImportWorker, WorkerSettings};
    let breaker = ciq_store::Breaker::new(db.clone(), Duration::from_secs(5));
    ImportWorker::new(
        db.clone(),
        breaker,
        WorkerSettings {
            chunk_rows,
            ..WorkerSettings::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_take_turns_so_a_small_one_is_not_held_back_by_a_big_one() {
    use ciq_imports::worker::CHUNKS_PER_TURN;
    // The store alone (no gateway, so no other worker takes a turn).
    let database = ciq_e2e::TestDatabase::create(Backend::Sqlite)
        .await
        .unwrap();
    let db = ciq_gateway::database::connect_and_migrate(&database.url)
        .await
        .unwrap();
    let chunk_rows = 10;
    let (big_owner, big) = queue_plain_import(&db, "big@acme.test", 100 * chunk_rows).await;
    let (small_owner, small) = queue_plain_import(&db, "small@acme.test", 1).await;
    let worker = lone_worker(&db, chunk_rows);
    // The big one (queued first) has the first turn, and only one.
    assert!(worker.run_one().await.unwrap());
    let big_now = ciq_imports::store::find(&db, big_owner, big)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(big_now.position as usize, CHUNKS_PER_TURN * chunk_rows);
    assert!(big_now.status.is_pending());
    // Then the small one, which finishes at once.
    assert!(worker.run_one().await.unwrap());
    let small_now = ciq_imports::store::find(&db, small_owner, small)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(small_now.status, ImportStatus::Done, "{small_now:?}");
    let big_now = ciq_imports::store::find(&db, big_owner, big)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        big_now.position as usize,
        CHUNKS_PER_TURN * chunk_rows,
        "its turn waited"
    );
    // Alone now, the big one goes on to its end in one turn (its file read once).
    assert!(worker.run_one().await.unwrap());
    let big_now = ciq_imports::store::find(&db, big_owner, big)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (big_now.status, big_now.created_count),
        (ImportStatus::Done, 1000)
    );
    assert!(!worker.run_one().await.unwrap(), "nothing left to do");
}

/// Queues an import of `rows` plain rows for a new account `email` on `db` (see
/// [`queue_file`]).
async fn queue_plain_import(db: &ciq_store::Db, email: &str, rows: usize) -> (Uuid, Uuid) {
    let mut file = String::from("name,email,source,industry\n");
    for i in 0..rows {
        file += &format!("Lead {i},lead{i}@example.com,Web,Retail\n");
    }
    queue_file(db, email, file).await
}

/// The bulk upsert of an import chunk leaves every account exactly as the same rows
/// upserted one by one do: updates that keep, set and empty fields, creates, a row that
/// can create nothing, one external id several times in a chunk (applied in order), an
/// empty patch and a renaming one (decided alone); another account's leads with the
/// same external ids are untouched.
/// A name and a text with what an array literal's syntax uses (see `ciq_leads`'s
/// column arrays): quotes, a backslash, braces, commas, the word NULL, a newline.
const TRICKY_NAME: &str = "Zoë \"Q\" O'Brien \\ {a,b} NULL";
const TRICKY_TEXT: &str = "NULL\n{\"x\": [1, 2]}\t\\N ,}";

async fn a_chunk_upserted_in_bulk_ends_as_its_rows_one_by_one(backend: Backend) {
    use ciq_leads::bulk::{RowOutcome, UpsertRow, upsert_many};
    use ciq_leads::rules::{validate_patch, validate_submission};
    use ciq_leads::store::{Announced, LeadOwner, Upserted, upsert_in};
    use sea_orm::TransactionTrait;
    use serde_json::json;
    let Some(app) = TestApp::spawn_with(backend, crate::webhooks::quick).await else {
        return;
    };
    let lead = |name: &str, email: &str, external_id: &str| {
        json!({"lead": {
            "name": name, "email": email, "phone": "+1 555 123 4567", "source": "CRM",
            "industry": "Technology", "score": 5, "description": "first",
            "external_id": external_id
        }})
    };
    let rows = || -> Vec<UpsertRow> {
        let row = |external_id: &str, patch: serde_json::Value, new: Option<serde_json::Value>| {
            UpsertRow {
                external_id: external_id.to_owned(),
                patch: validate_patch(&json!({ "lead": patch })).unwrap(),
                new: new.map(|body| validate_submission(&body).unwrap()),
            }
        };
        vec![
            row("crm-1", json!({"name": "Ada Renamed"}), None),
            row(
                "crm-2",
                json!({"phone": null, "score": 9, "budget": 1200.5}),
                None,
            ),
            row(
                "crm-3",
                json!({"name": "Cy"}),
                Some(lead("Cy", "cy@x.io", "crm-3")),
            ),
            row("crm-4", json!({"name": "Dee"}), None),
            row(
                "crm-3",
                json!({"email": "cy2@x.io", "description": null}),
                None,
            ),
            row(
                "crm-1",
                json!({"status": "qualified", "external_id": "crm-1"}),
                None,
            ),
            row("crm-5", json!({}), None),
            row("crm-6", json!({"external_id": "crm-60"}), None),
            row(
                "crm-3",
                json!({"industry": "Retail"}),
                Some(lead("X", "x@x.io", "crm-3")),
            ),
            // Text that array literals must carry as it is (quotes, backslashes,
            // braces, commas, the word NULL, a newline), updated and created.
            row(
                "crm-2",
                json!({"name": TRICKY_NAME, "description": "NULL"}),
                None,
            ),
            row("crm-7", json!({"name": "Seven"}), {
                let mut new = lead(TRICKY_NAME, "seven@x.io", "crm-7");
                new["lead"]["description"] = json!(TRICKY_TEXT);
                Some(new)
            }),
        ]
    };
    let seed = ["crm-1", "crm-2", "crm-5", "crm-6"];
    let mut owners = Vec::new();
    for email in ["bulk@acme.test", "rows@acme.test", "other@acme.test"] {
        let (user_id, key) = crate::webhooks::owner_with_key(&app, email).await;
        for (n, external_id) in seed.iter().enumerate() {
            let body = lead(&format!("Lead {n}"), &format!("l{n}@x.io"), external_id);
            assert_eq!(app.post_lead(Some(&key), &body).await.status(), 201);
        }
        owners.push(LeadOwner {
            user_id,
            api_key_id: None,
        });
    }
    let (bulk, by_row, other) = (owners[0], owners[1], owners[2]);
    // The bulk account's endpoint hears updates only; the other account's hears all.
    let unreachable = "http://127.0.0.1:9/hook";
    use ciq_leads::events::EventType;
    let (updates_only, _) =
        crate::webhooks::endpoint(&app, bulk.user_id, unreachable, &[EventType::Updated]).await;
    let (others, _) =
        crate::webhooks::endpoint(&app, other.user_id, unreachable, &EventType::ALL).await;
    let before_other = ciq_entity::Lead::find()
        .filter(ciq_entity::lead::Column::UserId.eq(other.user_id))
        .all(&app.db)
        .await
        .unwrap();

    let txn = app.db.begin().await.unwrap();
    let mut announced = Announced::default();
    let outcomes = upsert_many(&txn, bulk, rows(), &mut announced)
        .await
        .unwrap();
    announced.fan_out(&txn).await.unwrap();
    txn.commit().await.unwrap();

    let mut expected = Vec::new();
    for row in rows() {
        let txn = app.db.begin().await.unwrap();
        let outcome = upsert_in(&txn, by_row, &row.external_id, row.patch, row.new.as_ref())
            .await
            .unwrap();
        txn.commit().await.unwrap();
        expected.push(match outcome {
            Some(Upserted::Created(_)) => RowOutcome::Created,
            Some(Upserted::Updated(_)) => RowOutcome::Updated,
            None => RowOutcome::Missing,
        });
    }
    assert_eq!(outcomes, expected);
    use RowOutcome::{Created, Missing, Updated};
    assert_eq!(
        outcomes,
        [
            Updated, Updated, Created, Missing, Updated, Updated, Updated, Updated, Updated,
            Updated, Created
        ]
    );

    // Both accounts hold the same leads, field for field.
    let fields = |user_id: Uuid| {
        let db = app.db.clone();
        async move {
            let mut leads: Vec<_> = ciq_entity::Lead::find()
                .filter(ciq_entity::lead::Column::UserId.eq(user_id))
                .all(&db)
                .await
                .unwrap()
                .into_iter()
                .map(|l| {
                    (
                        l.external_id,
                        l.name,
                        l.email,
                        l.phone,
                        l.source,
                        l.industry,
                        l.score,
                        l.status.as_str(),
                        (l.monthly_revenue_cents, l.budget_cents, l.description),
                    )
                })
                .collect();
            leads.sort();
            leads
        }
    };
    let stored = fields(bulk.user_id).await;
    assert_eq!(stored, fields(by_row.user_id).await);
    let crm = |id: &str| {
        stored
            .iter()
            .find(|l| l.0.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("{id} stored"))
            .clone()
    };
    assert_eq!(crm("crm-1").1, "Ada Renamed");
    assert_eq!(crm("crm-1").7, "qualified");
    assert_eq!((crm("crm-2").3, crm("crm-2").6), (None, Some(9)));
    assert_eq!(crm("crm-2").8.1, Some(120_050));
    assert_eq!(crm("crm-2").2, "l1@x.io", "kept");
    assert_eq!(
        (
            crm("crm-3").1,
            crm("crm-3").2,
            crm("crm-3").5,
            crm("crm-3").8.2
        ),
        (
            "Cy".to_owned(),
            "cy2@x.io".to_owned(),
            "Retail".to_owned(),
            None
        )
    );
    assert!(stored.iter().all(|l| l.0.as_deref() != Some("crm-4")));
    assert!(stored.iter().any(|l| l.0.as_deref() == Some("crm-60")));
    assert_eq!(
        (crm("crm-2").1, crm("crm-2").8.2),
        (TRICKY_NAME.to_owned(), Some("NULL".to_owned()))
    );
    assert_eq!(
        (crm("crm-7").1, crm("crm-7").8.2),
        (TRICKY_NAME.to_owned(), Some(TRICKY_TEXT.to_owned()))
    );
    assert_eq!(stored.len(), 6);

    // The other account is as it was.
    let after_other = ciq_entity::Lead::find()
        .filter(ciq_entity::lead::Column::UserId.eq(other.user_id))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(after_other, before_other);

    // Every update was announced to the endpoint that hears updates, as the lead it
    // became; no create was (the endpoint did not choose them), and the other
    // account's endpoint heard nothing.
    use ciq_entity::webhook_delivery;
    let told = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.is_in([updates_only, others]))
        .all(&app.db)
        .await
        .unwrap();
    let mut heard: Vec<String> = Vec::new();
    for delivery in &told {
        assert_eq!(
            (
                delivery.endpoint_id,
                delivery.user_id,
                delivery.event_type.as_str()
            ),
            (updates_only, bulk.user_id, "lead.updated")
        );
        let payload: serde_json::Value = serde_json::from_str(&delivery.payload).unwrap();
        assert_eq!(payload["type"], "lead.updated");
        let lead = &payload["data"]["lead"];
        assert_eq!(lead["id"], json!(delivery.lead_id));
        heard.push(lead["external_id"].as_str().unwrap().to_owned());
        if lead["status"] == "qualified" {
            assert_eq!(lead["name"], "Ada Renamed", "the lead as that row left it");
        }
    }
    heard.sort();
    assert_eq!(
        heard,
        [
            "crm-1", "crm-1", "crm-2", "crm-2", "crm-3", "crm-3", "crm-5", "crm-60"
        ]
    );
}

mod bulk {
    ciq_e2e::with_each_backend!(a_chunk_upserted_in_bulk_ends_as_its_rows_one_by_one);
    use super::*;

    /// Through a transaction pooler the statements go as simple queries and the
    /// updated leads come back as text.
    mod pgbouncer {
        #[tokio::test]
        async fn a_chunk_upserted_in_bulk_ends_as_its_rows_one_by_one() {
            super::super::a_chunk_upserted_in_bulk_ends_as_its_rows_one_by_one(
                ciq_e2e::Backend::PgBouncer,
            )
            .await;
        }
    }
}

/// An import worked a few rows a turn reads each turn on from where its last chunk
/// ended (stored with its position) and ends with the leads and failed lines of one
/// pass over the file — a spreadsheet's CRLF file with a byte-order mark, `;` cells and
/// notes over several lines. An import whose resume point is unknown (started by a
/// version that did not store it) is read from the top with its done rows skipped.
async fn an_import_read_on_turn_by_turn_makes_the_leads_of_one_pass(backend: Backend) {
    use ciq_entity::{lead_import, lead_import_failure};
    use ciq_imports::worker::CHUNKS_PER_TURN;
    use ciq_imports::{ImportFile, Mapping, store};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};
    // The store alone (no gateway, so no other worker takes a turn).
    let Some(database) = ciq_e2e::TestDatabase::create(backend).await else {
        return;
    };
    let db = ciq_gateway::database::connect_and_migrate(&database.url)
        .await
        .unwrap();
    let user = ciq_admin::users::create_user(&db, "owner@acme.test", None)
        .await
        .unwrap()
        .id;
    const ROWS: usize = 70;
    let chunk_rows = 4;
    // Every third row's note spans lines; every seventh has a bad email. `expected`:
    // per row, the line it starts on and whether it fails.
    let mut file = String::from("\u{feff}Name;Email;Source;Industry;Notes\r\n");
    let mut line = 2;
    let mut expected = Vec::new();
    for i in 0..ROWS {
        let email = if i % 7 == 3 {
            "not-an-email".to_owned()
        } else {
            format!("lead{i}@example.com")
        };
        let note = if i % 3 == 0 {
            format!("\"Zoë {i};\r\nsecond line\"")
        } else {
            format!("note {i}")
        };
        file += &format!("Lead {i};{email};Fair;Retail;{note}\r\n");
        expected.push((line, i % 7 == 3));
        line += if i % 3 == 0 { 2 } else { 1 };
    }
    let bytes = file.into_bytes();
    let checked = ImportFile::read(&bytes).unwrap();
    let id = store::create(&db, user, "crm.csv", bytes.clone(), &checked)
        .await
        .unwrap();
    let mapping = Mapping::suggested(&checked.columns);
    assert!(
        store::save_mapping(&db, user, id, &mapping, true)
            .await
            .unwrap()
    );
    // Another account's import, queued after it and longer: it always waits, so each
    // turn of this one ends after its chunks (alone, an import keeps its turn).
    let (_, other) = queue_plain_import(&db, "other@acme.test", 2 * ROWS).await;
    let worker = lone_worker(&db, chunk_rows);
    let stored = || async {
        lead_import::Entity::find_by_id(id)
            .one(&db)
            .await
            .unwrap()
            .unwrap()
    };
    let others_turn = || async {
        assert!(worker.run_one().await.unwrap());
        let other = lead_import::Entity::find_by_id(other)
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert!(other.status.is_pending(), "{other:?}");
    };
    // After a turn the stored point is the end of its last row: the next row follows
    // its line end, and the stored line is the line of that byte.
    assert!(worker.run_one().await.unwrap());
    let turn = CHUNKS_PER_TURN * chunk_rows;
    let after = stored().await;
    assert_eq!(after.position as usize, turn);
    let byte = after.resume_byte.unwrap() as usize;
    let next = String::from_utf8_lossy(&bytes[byte..]);
    assert!(
        next.trim_start_matches(['\r', '\n'])
            .starts_with(&format!("Lead {turn};")),
        "{:?}",
        &next[..20]
    );
    let line_of_byte = 1 + bytes[..byte].iter().filter(|b| **b == b'\n').count();
    assert_eq!(after.resume_line, Some(line_of_byte as i64));
    assert_eq!(after.delimiter, Some(i16::from(b';')));
    // A second turn from there; then one without a stored point, from the top.
    others_turn().await;
    assert!(worker.run_one().await.unwrap());
    assert_eq!(stored().await.position as usize, 2 * turn);
    others_turn().await;
    let mut unknown = stored().await.into_active_model();
    unknown.resume_byte = Set(None);
    unknown.resume_line = Set(None);
    unknown.delimiter = Set(None);
    unknown.update(&db).await.unwrap();
    assert!(worker.run_one().await.unwrap());
    assert_eq!(stored().await.position as usize, 3 * turn);
    assert!(stored().await.resume_byte.is_some(), "stored again");
    while worker.run_one().await.unwrap() {}
    let done = stored().await;
    let failing: Vec<i32> = expected
        .iter()
        .filter(|(_, fails)| *fails)
        .map(|(line, _)| *line)
        .collect();
    assert_eq!(
        (
            done.status,
            done.created_count as usize,
            done.failed_count as usize
        ),
        (ImportStatus::Done, ROWS - failing.len(), failing.len())
    );
    let lines: Vec<i32> = lead_import_failure::Entity::find()
        .filter(lead_import_failure::Column::ImportId.eq(id))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|failure| failure.line)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(lines, failing, "each failed row by the line it starts on");
    let leads = ciq_entity::lead::Entity::find()
        .filter(ciq_entity::lead::Column::UserId.eq(user))
        .all(&db)
        .await
        .unwrap();
    let mut notes: Vec<(String, Option<String>)> = leads
        .into_iter()
        .map(|lead| (lead.name, lead.description))
        .collect();
    notes.sort();
    let mut want: Vec<(String, Option<String>)> = (0..ROWS)
        .filter(|i| i % 7 != 3)
        .map(|i| {
            let note = if i % 3 == 0 {
                format!("Zoë {i};\r\nsecond line")
            } else {
                format!("note {i}")
            };
            (format!("Lead {i}"), Some(note))
        })
        .collect();
    want.sort();
    assert_eq!(notes, want, "every good row once, its cells whole");
    drop(database);
}

mod read_on {
    ciq_e2e::with_each_backend!(an_import_read_on_turn_by_turn_makes_the_leads_of_one_pass);
    use super::*;
}

/// Queues `file` (with the suggested mapping) for a new account `email`: the account
/// and the import.
async fn queue_file(db: &ciq_store::Db, email: &str, file: String) -> (Uuid, Uuid) {
    let user = ciq_admin::users::create_user(db, email, None)
        .await
        .unwrap()
        .id;
    let checked = ciq_imports::ImportFile::read(file.as_bytes()).unwrap();
    let id = ciq_imports::store::create(db, user, "f.csv", file.into_bytes(), &checked)
        .await
        .unwrap();
    let mapping = ciq_imports::Mapping::suggested(&checked.columns);
    assert!(
        ciq_imports::store::save_mapping(db, user, id, &mapping, true)
            .await
            .unwrap()
    );
    (user, id)
}

/// `user`'s leads, as stored.
async fn stored_leads(db: &ciq_store::Db, user: Uuid) -> Vec<ciq_entity::lead::Model> {
    ciq_entity::lead::Entity::find()
        .filter(ciq_entity::lead::Column::UserId.eq(user))
        .all(db)
        .await
        .unwrap()
}

/// The names of `user`'s leads by external id.
async fn names_by_external_id(
    db: &ciq_store::Db,
    user: Uuid,
) -> std::collections::BTreeMap<String, String> {
    stored_leads(db, user)
        .await
        .into_iter()
        .map(|lead| (lead.external_id.unwrap_or_default(), lead.name))
        .collect()
}

/// The names of `user`'s leads.
async fn names_of(db: &ciq_store::Db, user: Uuid) -> Vec<String> {
    stored_leads(db, user)
        .await
        .into_iter()
        .map(|lead| lead.name)
        .collect()
}

/// Chunks are written while the one before commits (PostgreSQL), yet an external id's
/// rows land in the file's order: the first half's chunks share no external id with
/// their neighbours (written side by side), the second half's do (each waits for the
/// one before). Every lead ends as its id's last row left it, once.
async fn chunks_written_side_by_side_apply_each_lead_in_file_order(backend: Backend) {
    let Some(database) = ciq_e2e::TestDatabase::create(backend).await else {
        return;
    };
    let db = ciq_gateway::database::connect_and_migrate(&database.url)
        .await
        .unwrap();
    const ROWS: usize = 120;
    let id_of = |i: usize| if i < ROWS / 2 { i % 20 } else { i % 4 };
    let mut file = String::from("external_id,name,email,source,industry\n");
    let mut want = std::collections::BTreeMap::new();
    for i in 0..ROWS {
        let id = format!("crm-{}", id_of(i));
        file += &format!("{id},Lead {i},lead{i}@example.com,Web,Retail\n");
        want.insert(id, format!("Lead {i}"));
    }
    let (user, import) = queue_file(&db, "order@acme.test", file).await;
    let worker = lone_worker(&db, 3);
    assert!(worker.run_one().await.unwrap(), "one turn: it is alone");
    let done = ciq_imports::store::find(&db, user, import)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            done.status,
            done.position as usize,
            done.created_count as usize,
            done.updated_count as usize,
            done.failed_count
        ),
        (ImportStatus::Done, ROWS, want.len(), ROWS - want.len(), 0)
    );
    assert_eq!(names_by_external_id(&db, user).await, want);
    drop(database);
}

/// A chunk the store refuses (a trigger, here) fails the turn: the chunks before it
/// stay, it and the chunk written beside it are rolled back, the position stays at its
/// first row. The next turn goes on from there, and every row ends stored once.
async fn a_chunk_that_fails_takes_the_chunk_beside_it_back_and_loses_no_row(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let Some(database) = ciq_e2e::TestDatabase::create(backend).await else {
        return;
    };
    let db = ciq_gateway::database::connect_and_migrate(&database.url)
        .await
        .unwrap();
    const ROWS: usize = 40;
    let chunk_rows = 4;
    // Row 17 is in the fifth chunk (rows 16–19).
    let mut file = String::from("name,email,source,industry\n");
    for i in 0..ROWS {
        let name = if i == 17 {
            "Boom".to_owned()
        } else {
            format!("Lead {i}")
        };
        file += &format!("{name},lead{i}@example.com,Web,Retail\n");
    }
    let (user, import) = queue_file(&db, "boom@acme.test", file).await;
    let (arm, disarm) = match backend {
        Backend::Sqlite => (
            "CREATE TRIGGER boom BEFORE INSERT ON leads WHEN NEW.name = 'Boom' \
             BEGIN SELECT RAISE(ABORT, 'boom'); END"
                .to_owned(),
            "DROP TRIGGER boom",
        ),
        _ => (
            "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.name = 'Boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER boom BEFORE INSERT ON leads FOR EACH ROW EXECUTE FUNCTION boom()"
                .to_owned(),
            "DROP TRIGGER boom ON leads; DROP FUNCTION boom()",
        ),
    };
    db.execute_unprepared(&arm).await.unwrap();
    let worker = lone_worker(&db, chunk_rows);
    worker
        .run_one()
        .await
        .expect_err("the fifth chunk fails the turn");
    let stored = ciq_imports::store::find(&db, user, import)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.position, 16, "{stored:?}");
    assert!(stored.status.is_pending(), "{stored:?}");
    let mut names = names_of(&db, user).await;
    let mut want: Vec<String> = (0..16).map(|i| format!("Lead {i}")).collect();
    names.sort();
    want.sort();
    assert_eq!(names, want, "the chunks before it, and nothing after");
    db.execute_unprepared(disarm).await.unwrap();
    while worker.run_one().await.unwrap() {}
    let done = ciq_imports::store::find(&db, user, import)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (done.status, done.created_count as usize),
        (ImportStatus::Done, ROWS)
    );
    let mut names = names_of(&db, user).await;
    let mut want: Vec<String> = (0..ROWS)
        .map(|i| {
            if i == 17 {
                "Boom".to_owned()
            } else {
                format!("Lead {i}")
            }
        })
        .collect();
    names.sort();
    want.sort();
    assert_eq!(names, want, "every row once");
    drop(database);
}

mod overlap {
    ciq_e2e::with_each_backend!(
        chunks_written_side_by_side_apply_each_lead_in_file_order,
        a_chunk_that_fails_takes_the_chunk_beside_it_back_and_loses_no_row
    );
    use super::*;
}
