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
                                    td data-label="Status" { (outcome_badge(import)) }
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

/// What a draft's page shows of its file under a mapping.
pub struct Preview<'a> {
    /// The file's columns.
    pub columns: &'a [String],
    /// The mapping shown (the saved one, or the one just sent).
    pub mapping: &'a Mapping,
    /// The first rows, each checked.
    pub rows: &'a [PreviewRow],
    /// Every row, counted.
    pub tally: &'a ciq_imports::Tally,
}

/// "1 row", "1,234 rows".
fn rows_text(n: u64) -> String {
    format!("{} row{}", super::grouped(n), if n == 1 { "" } else { "s" })
}

/// What starting the import will do, in words.
fn tally_summary(tally: &ciq_imports::Tally) -> Markup {
    html! {
        div #tally class=(if tally.fail > 0 { "error" } else { "notice" }) role="status" {
            strong { (rows_text(tally.import)) " will import" }
            @if tally.unless_existing > 0 {
                ", " (rows_text(tally.unless_existing)) " will update the lead with their external_id if you have one (and fail if not)"
            }
            @if tally.fail > 0 {
                ", " strong { (rows_text(tally.fail)) " will fail" }
                " (lines " (tally.failing_lines.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
                @if tally.fail > tally.failing_lines.len() as u64 { ", …" }
                "): fix them in the file, or change the mapping and check again; the failed rows can be downloaded after the import."
            } @else {
                "; none will fail."
            }
        }
    }
}

/// A draft: the mapping form, the preview, and the start button.
pub fn draft(
    user: &user::Model,
    csrf: &str,
    import: &ImportSummary,
    preview: &Preview<'_>,
    problems: &[String],
) -> Markup {
    let Preview {
        columns,
        mapping,
        rows,
        tally,
    } = *preview;
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
    let importable = tally.import + tally.unless_existing;
    layout_refreshing(
        &format!("Import {}", import.file_name),
        Section::Leads,
        signed_in_header(user, csrf),
        html! {
            h1 { "Import " (import.file_name) }
            p.lead { (rows_text(u64::try_from(import.total_rows).unwrap_or(0))) ". Choose the field each column fills; the usual column names are chosen for you." }
            @for problem in problems { div.error role="alert" { (problem) } }
            (tally_summary(tally))
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
                    p.muted { "Each row's check comes first; a cell that breaks a rule is marked." }
                    div.scroll {
                        table.stacked.preview {
                            thead { tr {
                                th scope="col" { "Line" }
                                th scope="col" { "Check" }
                                @for column in columns { th scope="col" { (column) } }
                            } }
                            tbody {
                                @for row in rows {
                                    tr {
                                        td data-label="Line" { (row.line) }
                                        @match &row.problem {
                                            Some(problem) => td.problem data-label="Check" { (problem) },
                                            None => td.ok data-label="Check" { "OK" },
                                        }
                                        @for (i, cell) in row.cells.iter().enumerate() {
                                            @if row.faults.contains(&i) {
                                                td.fault data-label=(labels.get(i).map_or("", String::as_str)) { span.sr-only { "Breaks a rule: " } (cell) }
                                            } @else {
                                                td data-label=(labels.get(i).map_or("", String::as_str)) { (cell) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div.actions {
                        button.secondary type="submit" name="action" value="preview" { "Check again with this mapping" }
                        button type="submit" name="action" value="start" {
                            @if tally.fail == 0 { "Import " (rows_text(importable)) }
                            @else { "Import " (rows_text(importable)) ", skip " (super::grouped(tally.fail)) " that fail" }
                        }
                        button.secondary type="submit" name="action" value="discard" { "Discard this file" }
                    }
                }
            }
        },
        None,
    )
}

/// A finished import's outcome as a bar: the imported share green, the failed red
/// (an SVG: the pages' policy allows no inline style), with its figures in words.
fn outcome_bar(import: &ImportSummary) -> Markup {
    let total = import.total_rows.max(1) as f64;
    let imported = (import.created_count + import.updated_count) as f64;
    let failed = import.failed_count as f64;
    let ok = 100.0 * imported / total;
    let bad = 100.0 * failed / total;
    html! {
        svg.outcome viewBox="0 0 100 4" preserveAspectRatio="none" role="img"
            aria-label=(format!("{} of {} rows imported, {} failed", import.created_count + import.updated_count, import.total_rows, import.failed_count)) {
            rect.bar-ok x="0" y="0" width=(format!("{ok:.2}")) height="4" {}
            rect.bar-server x=(format!("{ok:.2}")) y="0" width=(format!("{bad:.2}")) height="4" {}
        }
    }
}

/// The badge of an import: a finished one with failures says how many.
fn outcome_badge(import: &ImportSummary) -> Markup {
    let imported = import.created_count + import.updated_count;
    match import.status {
        ImportStatus::Done if import.failed_count > 0 && imported == 0 => {
            html! { span.badge.revoked { "nothing imported" } }
        }
        ImportStatus::Done if import.failed_count > 0 => {
            html! { span.badge.expired { "done, " (import.failed_count) " failed" } }
        }
        status => status_badge(status),
    }
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
                    h2 #progress-title { @if running { "Progress" } @else { "Result" } }
                    (outcome_badge(import))
                }
                @if running {
                    label for="progress" { (import.position) " of " (import.total_rows) " rows done" }
                    progress #progress max=(import.total_rows) value=(import.position) { (import.position) " of " (import.total_rows) }
                } @else {
                    p #outcome {
                        strong { (import.created_count + import.updated_count) " of " (import.total_rows) " rows imported" }
                        @if import.failed_count > 0 { ", " span.status-5 { (import.failed_count) " failed" } " (listed below)" }
                        "."
                    }
                    (outcome_bar(import))
                }
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
