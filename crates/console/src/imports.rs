//! Settings → Leads → Import: the owner uploads a CSV file, checks how its columns
//! map to lead fields against a preview of the first rows and their errors, and
//! starts the import. It runs in the background ([`ciq_imports::worker`]), so
//! its page shows the progress from the store — a reload, another device or a
//! restarted gateway show the same — and, once done, the failed rows with their line
//! and reason, downloadable as CSV.

use std::collections::HashMap;
use std::sync::Arc;

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Multipart};
use poem::{Request, Response, Route, get, handler, post};
use uuid::Uuid;

use ciq_entity::lead_import::ImportStatus;
use ciq_entity::user;
use ciq_imports::store::{self as imports, ImportError, ImportSummary};
use ciq_imports::{DEFAULTABLE_FIELDS, ImportFile, MAX_FILE_BYTES, Mapping, preview};

use crate::extract::{InAccount, Owned, OwnedForm, PageError, SignedIn, tokens_match};
use crate::middleware::{page, page_within};
use crate::state::ConsoleState;
use crate::views::imports::import_path;
use crate::views::{self};

/// Largest upload body: the largest file plus room for the form around it.
pub const MAX_UPLOAD_BYTES: usize = MAX_FILE_BYTES + 64 * 1024;
/// Rows the mapping page previews.
pub const PREVIEW_ROWS: usize = 10;
/// Failed rows listed on an import's page (all of them are in its download).
pub const LISTED_FAILURES: u64 = 100;
/// Imports listed on the imports page.
pub const LISTED_IMPORTS: u64 = 20;

/// The import pages' routes.
pub(crate) fn routes(route: Route, state: &Arc<ConsoleState>) -> Route {
    let base = ciq_http::routes::SETTINGS_LEADS_IMPORTS;
    route
        .at(
            base,
            poem::RouteMethod::new()
                .get(page(state, get(imports_page)))
                .post(page_within(
                    state,
                    post(upload),
                    MAX_UPLOAD_BYTES,
                    file_too_large,
                )),
        )
        .at(
            format!("{base}/:import_id"),
            page(state, get(import_page).post(save_import)),
        )
        .at(
            format!("{base}/:import_id/failures.csv"),
            page(state, get(failures_csv)),
        )
}

impl InAccount for ImportSummary {
    const PARAM: &'static str = "import_id";
    const NOT_FOUND: (&'static str, &'static str) = (
        "Import not found",
        "That import does not exist in your account.",
    );

    async fn find_in_account(
        state: &ConsoleState,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<Option<Self>, PageError> {
        Ok(imports::find(&state.db, user_id, id).await?)
    }
}

/// The answer to an upload over [`MAX_UPLOAD_BYTES`] (413), sent before it is read.
pub fn file_too_large(_max: usize) -> Response {
    views::page(
        StatusCode::PAYLOAD_TOO_LARGE,
        views::message(
            "That file is too large",
            "A file to import may be at most 10 MB. Split it into smaller files and import each.",
        ),
    )
}

/// `GET /settings/leads/imports`: the upload form and the latest imports.
#[handler]
pub async fn imports_page(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    signed_in: SignedIn,
) -> Result<Response, PageError> {
    let user = signed_in.owner(&state).await?;
    let csrf = &signed_in.session.csrf_token;
    uploads_answer(&state.lists_for(req), &user, csrf, None).await
}

/// The imports page; with `problem`, a refused upload (422).
async fn uploads_answer(
    lists: &ciq_store::Reads,
    user: &user::Model,
    csrf: &str,
    problem: Option<&str>,
) -> Result<Response, PageError> {
    let user_id = user.id;
    let listed = lists
        .read(|db| async move { imports::list(&db, user_id, LISTED_IMPORTS).await })
        .await?;
    let status = match problem {
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
        None => StatusCode::OK,
    };
    Ok(views::page(
        status,
        views::imports::uploads(user, csrf, &listed, problem),
    ))
}

/// A multipart upload that did not arrive whole (400).
fn broken_upload(what: &str) -> PageError {
    views::page(
        StatusCode::BAD_REQUEST,
        views::message(
            "Upload failed",
            &format!("{what} did not arrive whole. Go back and try again."),
        ),
    )
    .into()
}

/// The upload form's `csrf` and `file` (its name and bytes, if one was sent).
async fn read_upload(
    multipart: &mut Multipart,
) -> Result<(String, Option<(String, Vec<u8>)>), PageError> {
    let mut csrf = String::new();
    let mut file = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| broken_upload("The upload"))?
    {
        match field.name() {
            Some("csrf") => csrf = field.text().await.unwrap_or_default(),
            Some("file") => {
                let name = field
                    .file_name()
                    .map_or_else(|| "upload.csv".to_owned(), str::to_owned);
                let bytes = field.bytes().await.map_err(|_| broken_upload("The file"))?;
                file = Some((name, bytes));
            }
            _ => {}
        }
    }
    Ok((csrf, file))
}

/// `POST /settings/leads/imports` (multipart: `csrf`, `file`): keeps the file as a
/// draft import and shows its mapping. A file that cannot be imported at all is
/// refused (422) with the reason, and nothing is kept.
#[handler]
pub async fn upload(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    signed_in: SignedIn,
    mut multipart: Multipart,
) -> Result<Response, PageError> {
    let (csrf, file) = read_upload(&mut multipart).await?;
    let session = &signed_in.session;
    if !tokens_match(&csrf, &session.csrf_token) {
        return Err(PageError::CsrfRefused);
    }
    let user = signed_in.owner(&state).await?;
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
            let lists = state.lists_for(req);
            return uploads_answer(&lists, &user, &session.csrf_token, Some(&problem)).await;
        }
    };
    match imports::create(&state.db, session.user_id, &name, bytes, &checked).await {
        Ok(id) => Ok(views::redirect(&import_path(id))),
        Err(ImportError::Store(err)) => Err(PageError::store(err)),
        Err(full) => {
            let lists = state.lists_for(req);
            uploads_answer(&lists, &user, &session.csrf_token, Some(&full.to_string())).await
        }
    }
}

/// `GET /settings/leads/imports/{id}`: a draft's mapping and preview; a started
/// import's progress (reloading itself while it runs) or its results.
#[handler]
pub async fn import_page(
    state: Data<&Arc<ConsoleState>>,
    owned: Owned<ImportSummary>,
) -> Result<Response, PageError> {
    let user = owned.signed_in.owner(&state).await?;
    let (csrf, import) = (&owned.signed_in.session.csrf_token, &owned.row);
    if import.status == ImportStatus::Draft {
        let mapping = import.current_mapping();
        return draft_answer(&state, &user, csrf, import, &mapping, &[]).await;
    }
    let failures = imports::failures(&state.db, user.id, import.id, Some(LISTED_FAILURES)).await?;
    Ok(views::page(
        StatusCode::OK,
        views::imports::progress(&user, csrf, import, &failures),
    ))
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
) -> Result<Response, PageError> {
    let Some(bytes) = imports::content(&state.db, user.id, import.id).await? else {
        return Err(PageError::not_found::<ImportSummary>());
    };
    // Every row is checked (up to 50 000: CPU only, off the async workers), the first
    // ones shown.
    let owned_mapping = mapping.clone();
    let (file, rows, tally) = tokio::task::spawn_blocking(move || {
        let file = ImportFile::read(&bytes)?;
        let rows = preview(&file, &bytes, &owned_mapping, PREVIEW_ROWS)?;
        let tally = ciq_imports::tally(&file, &bytes, &owned_mapping)?;
        Ok::<_, ciq_imports::FileProblem>((file, rows, tally))
    })
    .await
    .map_err(PageError::store)?
    // It was read when it was uploaded; the same bytes read the same.
    .map_err(PageError::store)?;
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let markup = views::imports::draft(
        user,
        csrf,
        import,
        &views::imports::Preview {
            columns: &file.columns,
            mapping,
            rows: &rows,
            tally: &tally,
        },
        problems,
    );
    Ok(views::page(status, markup))
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

/// `POST /settings/leads/imports/{id}` (`csrf`, the mapping, `action` = `preview`,
/// `start` or `discard`): saves the mapping, and with `start` queues the import —
/// refused (422, the page names every problem) while a required field has no column or
/// value, or while the account has its most imports waiting or running; `discard`
/// deletes the draft.
#[handler]
pub async fn save_import(
    state: Data<&Arc<ConsoleState>>,
    sent: OwnedForm<ImportSummary, HashMap<String, String>>,
) -> Result<Response, PageError> {
    let (import, form, session) = (&sent.row, &sent.signed.form, sent.session());
    if import.status != ImportStatus::Draft {
        // Started already (another tab): its page says how far it got.
        return Ok(views::redirect(&import_path(import.id)));
    }
    let columns = import.column_names();
    let mapping = mapping_of(form, columns.len());
    let action = form.get("action").map(String::as_str);
    if action == Some("discard") {
        imports::discard(&state.db, session.user_id, import.id).await?;
        return Ok(views::redirect("/settings/leads/imports"));
    }
    let start = action == Some("start");
    // A start is refused while a required field has no column or value, or while the
    // account has its most imports waiting or running; a preview only saves.
    let mut problems = if start {
        mapping.problems(&columns)
    } else {
        Vec::new()
    };
    if problems.is_empty() {
        match imports::save_mapping(&state.db, session.user_id, import.id, &mapping, start).await {
            Ok(_) => {}
            Err(ImportError::Store(err)) => return Err(PageError::store(err)),
            Err(refused) => problems.push(refused.to_string()),
        }
    }
    if !problems.is_empty() {
        let user = sent.signed.signed_in.owner(&state).await?;
        let csrf = &session.csrf_token;
        return draft_answer(&state, &user, csrf, import, &mapping, &problems).await;
    }
    if start {
        state.import_worker.wake();
    }
    Ok(views::redirect(&import_path(import.id)))
}

/// `GET /settings/leads/imports/{id}/failures.csv`: every failed row, as it was in the
/// file, after its line and reason (cells that would start a formula get a `'`; an
/// import of this file takes it off again).
#[handler]
pub async fn failures_csv(
    state: Data<&Arc<ConsoleState>>,
    owned: Owned<ImportSummary>,
) -> Result<Response, PageError> {
    let import = &owned.row;
    let failures =
        imports::failures(&state.db, owned.signed_in.session.user_id, import.id, None).await?;
    let mut header = vec!["line".to_owned(), "reason".to_owned()];
    // The owner's own column names are guarded like every cell: a header is opened in
    // the same spreadsheet.
    header.extend(
        import
            .column_names()
            .into_iter()
            .map(|name| crate::leads::cell(&name).into_owned()),
    );
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
    Ok(resp)
}
