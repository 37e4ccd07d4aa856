//! Settings → Leads → Import: the owner uploads a CSV file, checks how its columns
//! map to lead fields against a preview of the first rows and their errors, and
//! starts the import. It runs in the background ([`ciq_imports::worker`]), so
//! its page shows the progress from the store — a reload, another device or a
//! restarted gateway show the same — and, once done, the failed rows with their line
//! and reason, downloadable as CSV.

use std::collections::HashMap;
use std::sync::Arc;

use maud::{Markup, html};
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Form, Multipart, Path};
use poem::{Request, Response, handler};
use uuid::Uuid;

use ciq_entity::lead_import::ImportStatus;
use ciq_entity::user;
use ciq_imports::store::{self as imports, ImportSummary};
use ciq_imports::{DEFAULTABLE_FIELDS, ImportFile, MAX_FILE_BYTES, Mapping, PreviewRow, preview};
use ciq_leads::rules::LEAD_FIELDS;

use crate::pages::{self, Section, layout_refreshing, owner_name, sign_out, when};
use crate::state::ConsoleState;
use crate::{html as page, redirect, signed_in, signed_in_form, store_trouble, tokens_match};

/// Largest upload body: the largest file plus room for the form around it.
pub const MAX_UPLOAD_BYTES: usize = MAX_FILE_BYTES + 64 * 1024;
/// Rows the mapping page previews.
pub const PREVIEW_ROWS: usize = 10;
/// Failed rows listed on an import's page (all of them are in its download).
pub const LISTED_FAILURES: u64 = 100;
/// Imports listed on the imports page.
pub const LISTED_IMPORTS: u64 = 20;
/// Seconds between two reloads of a running import's page.
pub const REFRESH_SECONDS: u32 = 2;

fn import_path(id: Uuid) -> String {
    format!("{}/{id}", ciq_http::routes::SETTINGS_LEADS_IMPORTS)
}

/// The answer to an upload over [`MAX_UPLOAD_BYTES`] (413), sent before it is read.
pub fn file_too_large(_max: usize) -> Response {
    page(
        StatusCode::PAYLOAD_TOO_LARGE,
        pages::message(
            "That file is too large",
            "A file to import may be at most 10 MB. Split it into smaller files and import each.",
        ),
    )
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        pages::message(
            "Import not found",
            "That import does not exist in your account.",
        ),
    )
}

/// The signed-in owner's account row, or the response to send instead.
async fn owner(state: &ConsoleState, user_id: Uuid) -> Result<user::Model, Response> {
    ciq_admin::users::find_user(&state.db, &user_id.to_string())
        .await
        .map_err(store_trouble)
}

/// The signed-in owner's account and its import `id`, or the response to send instead
/// (a missing import, another account's, or an id that is not one: "not found").
async fn owned_import(
    state: &ConsoleState,
    session: &ciq_admin::sessions::Session,
    id: &str,
) -> Result<(user::Model, ImportSummary), Response> {
    let id = id.parse::<Uuid>().map_err(|_| not_found())?;
    let user = owner(state, session.user_id).await?;
    match imports::find(&state.db, session.user_id, id).await {
        Ok(Some(import)) => Ok((user, import)),
        Ok(None) => Err(not_found()),
        Err(err) => Err(store_trouble(err)),
    }
}

/// [`owned_import`] for a page read with the session's cookie alone.
async fn signed_in_import(
    req: &Request,
    state: &ConsoleState,
    id: &str,
) -> Result<(ciq_admin::sessions::Session, user::Model, ImportSummary), Response> {
    let (_, session) = signed_in(req, state).await?;
    let (user, import) = owned_import(state, &session, id).await?;
    Ok((session, user, import))
}

/// `GET /settings/leads/imports`: the upload form and the latest imports.
#[handler]
pub async fn imports_page(req: &Request, state: Data<&Arc<ConsoleState>>) -> Response {
    let (_, session) = match signed_in(req, &state).await {
        Ok(signed) => signed,
        Err(resp) => return resp,
    };
    let user = match owner(&state, session.user_id).await {
        Ok(user) => user,
        Err(resp) => return resp,
    };
    uploads_answer(
        &state.lists_for(req),
        &user,
        &session.csrf_token,
        StatusCode::OK,
        None,
    )
    .await
}

async fn uploads_answer(
    lists: &ciq_store::Reads,
    user: &user::Model,
    csrf: &str,
    status: StatusCode,
    problem: Option<&str>,
) -> Response {
    let user_id = user.id;
    match lists
        .read(|db| async move { imports::list(&db, user_id, LISTED_IMPORTS).await })
        .await
    {
        Ok(listed) => page(status, uploads(user, csrf, &listed, problem)),
        Err(err) => store_trouble(err),
    }
}

/// `POST /settings/leads/imports` (multipart: `csrf`, `file`): keeps the file as a
/// draft import and shows its mapping. A file that cannot be imported at all is
/// refused (422) with the reason, and nothing is kept.
#[handler]
pub async fn upload(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    mut multipart: Multipart,
) -> Response {
    let (_, session) = match signed_in(req, &state).await {
        Ok(signed) => signed,
        Err(resp) => return resp,
    };
    let mut csrf = String::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) => {
                return page(
                    StatusCode::BAD_REQUEST,
                    pages::message(
                        "Upload failed",
                        "The upload did not arrive whole. Go back and try again.",
                    ),
                );
            }
        };
        match field.name() {
            Some("csrf") => csrf = field.text().await.unwrap_or_default(),
            Some("file") => {
                let name = field
                    .file_name()
                    .map_or_else(|| "upload.csv".to_owned(), str::to_owned);
                match field.bytes().await {
                    Ok(bytes) => file = Some((name, bytes)),
                    Err(_) => {
                        return page(
                            StatusCode::BAD_REQUEST,
                            pages::message(
                                "Upload failed",
                                "The file did not arrive whole. Go back and try again.",
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    if !tokens_match(&csrf, &session.csrf_token) {
        return crate::csrf_refused();
    }
    let user = match owner(&state, session.user_id).await {
        Ok(user) => user,
        Err(resp) => return resp,
    };
    let checked = match file.filter(|(_, bytes)| !bytes.is_empty()) {
        None => Err("Choose a CSV file to upload.".to_owned()),
        Some((name, bytes)) => match ImportFile::read(&bytes) {
            Ok(checked) => Ok((name, bytes, checked)),
            Err(problem) => Err(format!("{name}: {problem}")),
        },
    };
    let (name, bytes, checked) = match checked {
        Ok(checked) => checked,
        Err(problem) => {
            return uploads_answer(
                &state.lists_for(req),
                &user,
                &session.csrf_token,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&problem),
            )
            .await;
        }
    };
    match imports::create(&state.db, session.user_id, &name, bytes, &checked).await {
        Ok(id) => redirect(&import_path(id)),
        Err(err) => store_trouble(err),
    }
}

/// `GET /settings/leads/imports/{id}`: a draft's mapping and preview; a started
/// import's progress (reloading itself while it runs) or its results.
#[handler]
pub async fn import_page(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    id: Path<String>,
) -> Response {
    let (session, user, import) = match signed_in_import(req, &state, &id).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let id = import.id;
    if import.status == ImportStatus::Draft {
        let mapping = import.current_mapping();
        return draft_answer(&state, &user, &session.csrf_token, &import, &mapping, &[]).await;
    }
    let failures =
        match imports::failures(&state.db, session.user_id, id, Some(LISTED_FAILURES)).await {
            Ok(failures) => failures,
            Err(err) => return store_trouble(err),
        };
    page(
        StatusCode::OK,
        progress(&user, &session.csrf_token, &import, &failures),
    )
}

/// The mapping page of a draft, with the preview under `mapping` and `problems` (a
/// refused start: 422).
async fn draft_answer(
    state: &ConsoleState,
    user: &user::Model,
    csrf: &str,
    import: &ImportSummary,
    mapping: &Mapping,
    problems: &[String],
) -> Response {
    let bytes = match imports::content(&state.db, user.id, import.id).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return not_found(),
        Err(err) => return store_trouble(err),
    };
    let rows = ImportFile::read(&bytes)
        .and_then(|file| preview(&file, &bytes, mapping, PREVIEW_ROWS).map(|rows| (file, rows)));
    let (file, rows) = match rows {
        Ok(found) => found,
        // It was read when it was uploaded; the same bytes read the same.
        Err(problem) => return store_trouble(problem),
    };
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page(
        status,
        draft(user, csrf, import, &file.columns, mapping, &rows, problems),
    )
}

/// The mapping form as sent: `col_<i>` per column (a field name, empty = ignore),
/// `default_<field>` for the fields that take one value for every row.
fn mapping_of(form: &HashMap<String, String>, columns: usize) -> Mapping {
    let columns = (0..columns)
        .map(|i| {
            form.get(&format!("col_{i}"))
                .map(|f| f.trim().to_owned())
                .filter(|f| !f.is_empty())
        })
        .collect();
    let defaults = DEFAULTABLE_FIELDS
        .iter()
        .filter_map(|field| {
            let value = form.get(&format!("default_{field}"))?.trim();
            (!value.is_empty()).then(|| ((*field).to_owned(), value.to_owned()))
        })
        .collect();
    Mapping { columns, defaults }
}

/// `POST /settings/leads/imports/{id}` (`csrf`, the mapping, `action` = `preview` or
/// `start`): saves the mapping, and with `start` queues the import — refused (422, the
/// page names every problem) while a required field has no column or value.
#[handler]
pub async fn save_import(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    id: Path<String>,
    form: Form<HashMap<String, String>>,
) -> Response {
    let csrf = form.get("csrf").map_or("", String::as_str);
    let session = match signed_in_form(req, &state, csrf).await {
        Ok(session) => session,
        Err(resp) => return resp,
    };
    let (user, import) = match owned_import(&state, &session, &id).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let id = import.id;
    if import.status != ImportStatus::Draft {
        // Started already (another tab): its page says how far it got.
        return redirect(&import_path(id));
    }
    let columns = import.column_names();
    let mapping = mapping_of(&form, columns.len());
    let start = form.get("action").map(String::as_str) == Some("start");
    let problems = mapping.problems(&columns);
    if start && !problems.is_empty() {
        return draft_answer(
            &state,
            &user,
            &session.csrf_token,
            &import,
            &mapping,
            &problems,
        )
        .await;
    }
    match imports::save_mapping(&state.db, session.user_id, id, &mapping, start).await {
        Ok(_) => {
            if start {
                state.import_worker.wake();
            }
            redirect(&import_path(id))
        }
        Err(err) => store_trouble(err),
    }
}

/// `GET /settings/leads/imports/{id}/failures.csv`: every failed row, as it was in the
/// file, after its line and reason (cells that would start a formula get a `'`; an
/// import of this file takes it off again).
#[handler]
pub async fn failures_csv(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    id: Path<String>,
) -> Response {
    let (session, _, import) = match signed_in_import(req, &state, &id).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let id = import.id;
    let failures = match imports::failures(&state.db, session.user_id, id, None).await {
        Ok(failures) => failures,
        Err(err) => return store_trouble(err),
    };
    let mut header = vec!["line".to_owned(), "reason".to_owned()];
    header.extend(import.column_names());
    let rows = std::iter::once(header).chain(failures.iter().map(|failure| {
        let mut row = vec![
            failure.line.to_string(),
            crate::leads::cell(&failure.reason).into_owned(),
        ];
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(failure.record.as_bytes());
        if let Some(Ok(record)) = reader.records().next() {
            row.extend(record.iter().map(|c| crate::leads::cell(c).into_owned()));
        }
        row
    }));
    let stem = import.file_name.trim_end_matches(".csv");
    let name: String = format!("{stem}-failed-rows.csv")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .content_type("text/csv; charset=utf-8")
        .body(crate::leads::csv_bytes(rows));
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .expect("the name is ASCII"),
    );
    resp
}

// ---- markup ----------------------------------------------------------------------

fn header_of(user: &user::Model, csrf: &str) -> Markup {
    html! { span.muted { (owner_name(user)) } (sign_out(csrf)) }
}

fn status_badge(status: ImportStatus) -> Markup {
    let class = match status {
        ImportStatus::Done => "badge active",
        ImportStatus::Failed => "badge revoked",
        _ => "badge expired",
    };
    html! { span class=(class) { (status.as_str()) } }
}

fn dedupe_note(upserts: bool) -> Markup {
    html! {
        @if upserts {
            p.notice role="note" { "A column is mapped to external_id: a row whose external_id is already in your account updates that lead instead of creating another, so importing this file again creates nothing twice. Rows with an empty external_id are always created." }
        } @else {
            p.error role="note" { "No column is mapped to external_id: importing the same rows again creates them again. Map your CRM's record id to external_id to make a re-run update the leads it made instead." }
        }
    }
}

/// The upload form and the latest imports.
fn uploads(
    user: &user::Model,
    csrf: &str,
    listed: &[ImportSummary],
    problem: Option<&str>,
) -> Markup {
    layout_refreshing(
        "Import leads",
        Section::Leads,
        header_of(user, csrf),
        html! {
            h1 { "Import leads" }
            p.lead { "Upload a CSV file (UTF-8, a header row, up to 10 MB and 50 000 rows). You choose which column fills which field and see the first rows checked before anything is imported." }
            @if let Some(problem) = problem { div.error role="alert" { (problem) } }
            section.card aria-labelledby="upload-title" {
                h2 #upload-title { "Upload a file" }
                form method="post" action=(ciq_http::routes::SETTINGS_LEADS_IMPORTS) enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(csrf);
                    div.row {
                        div {
                            label for="file" { "CSV file" }
                            input #file type="file" name="file" accept=".csv,text/csv" required;
                        }
                        button type="submit" { "Upload and map columns" }
                    }
                }
            }
            section.card aria-labelledby="imports-title" {
                h2 #imports-title { "Your imports" }
                @if listed.is_empty() {
                    p.muted { "No imports yet." }
                } @else {
                    table.stacked {
                        thead { tr {
                            th scope="col" { "File" } th scope="col" { "Uploaded" } th scope="col" { "Status" }
                            th scope="col" { "Rows" } th scope="col" { "Created" } th scope="col" { "Updated" } th scope="col" { "Failed" }
                        } }
                        tbody {
                            @for import in listed {
                                tr {
                                    td data-label="File" { a href=(import_path(import.id)) { (import.file_name) } }
                                    td data-label="Uploaded" { (when(Some(import.created_at))) }
                                    td data-label="Status" { (status_badge(import.status)) }
                                    td data-label="Rows" { (import.position) " of " (import.total_rows) }
                                    td data-label="Created" { (import.created_count) }
                                    td data-label="Updated" { (import.updated_count) }
                                    td data-label="Failed" { (import.failed_count) }
                                }
                            }
                        }
                    }
                }
            }
            p { a.button.secondary href=(ciq_http::routes::SETTINGS_LEADS) { "Back to leads" } }
        },
        None,
    )
}

/// A draft: the mapping form, the preview, and the start button.
fn draft(
    user: &user::Model,
    csrf: &str,
    import: &ImportSummary,
    columns: &[String],
    mapping: &Mapping,
    rows: &[PreviewRow],
    problems: &[String],
) -> Markup {
    let action = import_path(import.id);
    let first = |column: usize| {
        rows.first()
            .and_then(|row| row.cells.get(column))
            .cloned()
            .unwrap_or_default()
    };
    layout_refreshing(
        &format!("Import {}", import.file_name),
        Section::Leads,
        header_of(user, csrf),
        html! {
            h1 { "Import " (import.file_name) }
            p.lead { (import.total_rows) " rows. Choose the field each column fills; the usual column names are chosen for you." }
            @for problem in problems { div.error role="alert" { (problem) } }
            (dedupe_note(mapping.upserts()))
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                section.card aria-labelledby="mapping-title" {
                    h2 #mapping-title { "Columns" }
                    table.stacked.mapping {
                        thead { tr { th scope="col" { "Column" } th scope="col" { "First row" } th scope="col" { "Field" } } }
                        tbody {
                            @for (i, column) in columns.iter().enumerate() {
                                @let chosen = mapping.columns.get(i).cloned().flatten();
                                tr {
                                    td data-label="Column" { label for=(format!("col_{i}")) { (column) } }
                                    td data-label="First row" { (first(i)) }
                                    td data-label="Field" {
                                        select id=(format!("col_{i}")) name=(format!("col_{i}")) {
                                            option value="" selected[chosen.is_none()] { "Ignore this column" }
                                            @for field in LEAD_FIELDS {
                                                option value=(field) selected[chosen.as_deref() == Some(field)] { (field) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    h3 { "Values for rows that have none" }
                    div.row {
                        @for field in DEFAULTABLE_FIELDS {
                            div {
                                label for=(format!("default_{field}")) { (field) }
                                input id=(format!("default_{field}")) type="text" name=(format!("default_{field}")) maxlength="100"
                                    value=(mapping.defaults.get(field).cloned().unwrap_or_default()) placeholder="e.g. Trade fair 2026";
                            }
                        }
                    }
                }
                section.card aria-labelledby="preview-title" {
                    h2 #preview-title { "Preview: the first " (rows.len()) " rows" }
                    div.scroll {
                        table.stacked {
                            thead { tr {
                                th scope="col" { "Line" }
                                @for column in columns { th scope="col" { (column) } }
                                th scope="col" { "Check" }
                            } }
                            tbody {
                                @for row in rows {
                                    tr {
                                        td data-label="Line" { (row.line) }
                                        @for (i, cell) in row.cells.iter().enumerate() {
                                            td data-label=(columns.get(i).map_or("", String::as_str)) { (cell) }
                                        }
                                        @match &row.problem {
                                            Some(problem) => td.problem data-label="Check" { (problem) },
                                            None => td data-label="Check" { "OK" },
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div.actions {
                        button.secondary type="submit" name="action" value="preview" { "Check again with this mapping" }
                        button type="submit" name="action" value="start" { "Import " (import.total_rows) " rows" }
                    }
                }
            }
        },
        None,
    )
}

/// A started import: progress while it runs (the page reloads itself), then the
/// counts and the failed rows.
fn progress(
    user: &user::Model,
    csrf: &str,
    import: &ImportSummary,
    failures: &[ciq_entity::lead_import_failure::Model],
) -> Markup {
    let running = import.status.is_pending();
    layout_refreshing(
        &format!("Import {}", import.file_name),
        Section::Leads,
        header_of(user, csrf),
        html! {
            h1 { "Import " (import.file_name) }
            section.card aria-labelledby="progress-title" {
                div.headline {
                    h2 #progress-title { "Progress" }
                    (status_badge(import.status))
                }
                label for="progress" { (import.position) " of " (import.total_rows) " rows done" }
                progress #progress max=(import.total_rows) value=(import.position) { (import.position) " of " (import.total_rows) }
                dl.fields {
                    dt { "Created" } dd #created { (import.created_count) }
                    dt { "Updated" } dd #updated { (import.updated_count) }
                    dt { "Failed" } dd #failed { (import.failed_count) }
                    dt { "Uploaded" } dd { (when(Some(import.created_at))) }
                    dt { "Finished" } dd { (when(import.finished_at)) }
                }
                @if running {
                    p.muted role="status" { "The import runs in the background: you can leave this page and come back. It reloads every " (REFRESH_SECONDS) " seconds." }
                }
                @if let Some(error) = &import.error {
                    div.error role="alert" { "The import stopped: " (error) ". The rows before it stay imported." }
                }
            }
            (dedupe_note(import.current_mapping().upserts()))
            @if import.failed_count > 0 {
                section.card aria-labelledby="failures-title" {
                    div.headline {
                        h2 #failures-title { "Failed rows" }
                        a.button.secondary #failures-download href=(format!("{}/failures.csv", import_path(import.id))) download { "Download failed rows (CSV)" }
                    }
                    @if failures.len() < usize::try_from(import.failed_count).unwrap_or(usize::MAX) {
                        p.muted { "The first " (failures.len()) " of " (import.failed_count) "; the download has them all." }
                    }
                    table.stacked #failures {
                        thead { tr { th scope="col" { "Line" } th scope="col" { "Reason" } } }
                        tbody {
                            @for failure in failures {
                                tr { td data-label="Line" { (failure.line) } td data-label="Reason" { (failure.reason) } }
                            }
                        }
                    }
                }
            }
            p.actions {
                a.button.secondary href=(ciq_http::routes::SETTINGS_LEADS_IMPORTS) { "All imports" }
                a.button.secondary href=(ciq_http::routes::SETTINGS_LEADS) { "Back to leads" }
            }
        },
        running.then_some(REFRESH_SECONDS),
    )
}
