//! Settings → Leads → Import: the upload form and the imports, a draft's mapping with
//! its preview, and a started import's progress and failed rows.

use maud::{Markup, html};
use uuid::Uuid;

use ciq_entity::lead_import::ImportStatus;
use ciq_entity::user;
use ciq_imports::store::ImportSummary;
use ciq_imports::{DEFAULTABLE_FIELDS, Mapping, PreviewRow};

use super::{Section, layout_refreshing, signed_in_header, when};

/// Seconds between two reloads of a running import's page.
pub const REFRESH_SECONDS: u32 = 2;

/// The page of import `id`.
pub fn import_path(id: Uuid) -> String {
    format!("{}/{id}", ciq_http::routes::SETTINGS_LEADS_IMPORTS)
}

/// An import's status as a badge.
fn status_badge(status: ImportStatus) -> Markup {
    let class = match status {
        ImportStatus::Done => "badge active",
        ImportStatus::Failed => "badge revoked",
        _ => "badge expired",
    };
    html! { span class=(class) { (status.as_str()) } }
}

/// Whether importing the file again would create its rows twice, in words.
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
pub fn uploads(
    user: &user::Model,
    csrf: &str,
    listed: &[ImportSummary],
    problem: Option<&str>,
) -> Markup {
    layout_refreshing(
        "Import leads",
        Section::Leads,
        signed_in_header(user, csrf),
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
pub fn draft(
    user: &user::Model,
    csrf: &str,
    import: &ImportSummary,
    columns: &[String],
    mapping: &Mapping,
    rows: &[PreviewRow],
    problems: &[String],
) -> Markup {
    let action = import_path(import.id);
    // Each preview cell repeats its column's name for the stacked (narrow) layout: a
    // short form of it, so ten rows of a hundred columns stay a small page.
    let labels: Vec<String> = columns
        .iter()
        .map(|name| ciq_imports::shortened(name.clone(), 24))
        .collect();
    let first = |column: usize| {
        rows.first()
            .and_then(|row| row.cells.get(column))
            .cloned()
            .unwrap_or_default()
    };
    layout_refreshing(
        &format!("Import {}", import.file_name),
        Section::Leads,
        signed_in_header(user, csrf),
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
                                            @for field in ciq_imports::MAPPABLE_FIELDS.iter() {
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
                                            td data-label=(labels.get(i).map_or("", String::as_str)) { (cell) }
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
                        button.secondary type="submit" name="action" value="discard" { "Discard this file" }
                    }
                }
            }
        },
        None,
    )
}

/// A started import: progress while it runs (the page reloads itself), then the
/// counts and the failed rows.
pub fn progress(
    user: &user::Model,
    csrf: &str,
    import: &ImportSummary,
    failures: &[ciq_entity::lead_import_failure::Model],
) -> Markup {
    let running = import.status.is_pending();
    layout_refreshing(
        &format!("Import {}", import.file_name),
        Section::Leads,
        signed_in_header(user, csrf),
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
