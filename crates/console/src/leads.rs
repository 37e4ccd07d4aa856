//! Settings → Leads: the owner's leads, newest first, filtered and paged; one lead's
//! detail; and the current filter's CSV export, streamed a page at a time so that an
//! account with millions of leads exports in constant memory.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, TimeDelta, Utc};
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Query};
use poem::{Body, Request, Response, Route, get, handler, post};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use ciq_admin::keys;
use ciq_leads::store::{self, After, LeadFilter};
use ciq_leads::{Lead, LeadError, LeadStatus};

use crate::extract::{InAccount, Owned, OwnedForm, PageError, SignedIn};
use crate::middleware::page;
use crate::session::CsrfOnly;
use crate::state::ConsoleState;
use crate::views;

/// The leads pages' routes (the import pages are [`crate::imports`]'s).
pub(crate) fn routes(route: Route, state: &Arc<ConsoleState>) -> Route {
    route
        .at(
            ciq_http::routes::SETTINGS_LEADS,
            page(state, get(list_page)),
        )
        .at(
            ciq_http::routes::SETTINGS_LEADS_EXPORT,
            page(state, get(export_csv)),
        )
        .at(SETTINGS_SPAM, page(state, get(spam_page)))
        .at(SETTINGS_BLOCK_LIST, page(state, post(save_block_list)))
        .at(SETTINGS_BULK, page(state, post(bulk)))
        .at("/settings/leads/:lead_id", page(state, get(detail_page)))
        .at(
            "/settings/leads/:lead_id/edit",
            page(state, get(edit_page).post(save)),
        )
        .at(
            "/settings/leads/:lead_id/status",
            page(state, post(set_status)),
        )
        .at(
            "/settings/leads/:lead_id/not-spam",
            page(state, post(release)),
        )
        .at(
            "/settings/leads/:lead_id/delete",
            page(state, get(confirm_erase).post(erase)),
        )
}

/// Where the list's "with the chosen leads" form posts (the list's filters in its
/// query, to show the same list afterwards).
pub const SETTINGS_BULK: &str = "/settings/leads/bulk";

/// Most leads one bulk action takes: a page of the list.
pub const BULK_MAX: usize = PAGE_SIZE as usize;

/// The list counts the leads its filter matches up to this many ("more than 10,000"
/// past it): a count costs at most this many index entries.
pub const COUNT_CAP: u64 = 10_000;

/// The lead fields an owner edits in Settings: every field a client sends but those
/// set once at creation (attribution and consent).
pub fn editable_fields() -> impl Iterator<Item = &'static str> {
    ciq_leads::rules::LEAD_FIELDS
        .iter()
        .copied()
        .filter(|field| !matches!(*field, "attribution" | "consent"))
}

/// Settings → Leads → Spam.
pub const SETTINGS_SPAM: &str = "/settings/leads/spam";
/// Where the Spam page's block list form posts.
pub const SETTINGS_BLOCK_LIST: &str = "/settings/leads/spam/block-list";

/// Leads per page of the list.
pub const PAGE_SIZE: u64 = 50;
/// Leads per query of an export: its memory is about this many leads, whatever the
/// account holds.
pub const EXPORT_CHUNK: u64 = 1000;

/// The longest search the list takes (a name is at most 200 characters, an email 254;
/// a prefix longer than this finds what a shorter one does).
pub const SEARCH_MAX_CHARS: usize = 100;

/// The key filter's value for leads imported from a CSV file (created with no key).
pub const IMPORTED: &str = "imported";

/// The list's filters as the form sends them (every field optional; empty = any).
#[derive(Debug, Default, Deserialize)]
pub struct LeadsQuery {
    /// The start of a name or an email address, any case.
    #[serde(default)]
    pub q: String,
    /// A status name.
    #[serde(default)]
    pub status: String,
    /// A source, any case.
    #[serde(default)]
    pub source: String,
    /// A key id, or [`IMPORTED`].
    #[serde(default)]
    pub key: String,
    /// First day, `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    pub from: String,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    pub to: String,
    /// Where the page starts (a list's "next page" link).
    #[serde(default)]
    pub cursor: String,
}

impl LeadsQuery {
    /// The filter, the page's start, and every problem with the form (field label,
    /// rule) — a broken filter is shown, never silently ignored.
    pub fn parse(&self) -> (LeadFilter, Option<After>, Vec<(&'static str, String)>) {
        let mut problems = Vec::new();
        let status = match self.status.trim() {
            "" => None,
            name => {
                let found = LeadStatus::from_name(name);
                if found.is_none() {
                    problems.push(("Status", format!("{name:?} is not a status")));
                }
                found
            }
        };
        let imported = self.key.trim() == IMPORTED;
        let key = match self.key.trim() {
            "" | IMPORTED => None,
            id => {
                let parsed = id.parse::<Uuid>().ok();
                if parsed.is_none() {
                    problems.push(("Key", "choose one of your keys".to_owned()));
                }
                parsed
            }
        };
        // A day's first moment; `To` is taken up to the end of its day. A year outside
        // 1..=9999 is refused (chrono's own range ends near ±262 000, where the day
        // after would not exist).
        let mut day = |label: &'static str, text: &str, days_after: i64| match text.trim() {
            "" => None,
            text => {
                let at = NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .filter(|day| (1..=9999).contains(&day.year()))
                    .and_then(|day| day.checked_add_signed(TimeDelta::days(days_after)))
                    .map(|day| day.and_time(chrono::NaiveTime::MIN).and_utc());
                if at.is_none() {
                    problems.push((
                        label,
                        "must be a date like 2026-12-01 (years 1 to 9999)".to_owned(),
                    ));
                }
                at
            }
        };
        let from = day("From", &self.from, 0);
        let to = day("To", &self.to, 1);
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            problems.push(("To", "must be the same day as From or after it".to_owned()));
        }
        let after = match self.cursor.trim() {
            "" => None,
            cursor => {
                let after = After::from_cursor(cursor);
                if after.is_none() {
                    problems.push(("Page", "that page link is broken; start again".to_owned()));
                }
                after
            }
        };
        let search = Some(self.q.trim()).filter(|q| !q.is_empty());
        let search = search.filter(|q| {
            let rule = if q.chars().any(char::is_control) {
                Some("must not contain control characters".to_owned())
            } else if q.chars().count() > SEARCH_MAX_CHARS {
                Some(format!("must be at most {SEARCH_MAX_CHARS} characters"))
            } else {
                None
            };
            let clean = rule.is_none();
            problems.extend(rule.map(|rule| ("Search", rule)));
            clean
        });
        let source = Some(self.source.trim()).filter(|s| !s.is_empty());
        let source = source.filter(|s| {
            let clean = !s.chars().any(char::is_control);
            if !clean {
                problems.push(("Source", "must not contain control characters".to_owned()));
            }
            clean
        });
        let filter = LeadFilter {
            status,
            source: source.map(str::to_owned),
            created_after: from,
            created_before: to,
            api_key_id: key,
            imported,
            source_any_case: true,
            search: search.map(str::to_owned),
            ..LeadFilter::default()
        };
        (filter, after, problems)
    }

    /// The query string of these filters (without the cursor), for links.
    pub fn filters_query(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("q", &self.q),
            ("status", &self.status),
            ("source", &self.source),
            ("key", &self.key),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !value.trim().is_empty() {
                query.append_pair(name, value.trim());
            }
        }
        query.finish()
    }
}

/// `GET /settings/leads`.
#[handler]
pub async fn list_page(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    query: Query<LeadsQuery>,
    signed_in: SignedIn,
) -> Result<Response, PageError> {
    render_list(&state, req, &signed_in, &query, views::Flash::default()).await
}

/// The list page with `query`'s filters, and what the last action did.
async fn render_list(
    state: &ConsoleState,
    req: &Request,
    signed_in: &SignedIn,
    query: &LeadsQuery,
    flash: views::Flash,
) -> Result<Response, PageError> {
    let user = signed_in.owner(state).await?;
    let csrf = &signed_in.session.csrf_token;
    let lists = state.lists_for(req);
    let user_id = user.id;
    let owned_keys = lists
        .read(|db| async move { keys::list_keys(&db, user_id).await })
        .await?;
    let (filter, after, problems) = query.parse();
    let mut view = views::leads::LeadsView {
        query,
        keys: &owned_keys,
        leads: &[],
        total: None,
        next: None,
        problems: &problems,
        flash: &flash,
    };
    if !problems.is_empty() {
        let markup = views::leads::leads(&user, csrf, &view);
        return Ok(views::page(StatusCode::UNPROCESSABLE_ENTITY, markup));
    }
    // The account is in the query: a key id of another account matches nothing.
    let filter = &filter;
    let (leads, more) = lists
        .read(|db| async move { store::list(&db, user_id, filter, after, PAGE_SIZE).await })
        .await
        .map_err(PageError::store)?;
    let total = lists
        .read(|db| async move { store::count(&db, user_id, filter, COUNT_CAP).await })
        .await
        .map_err(PageError::store)?;
    let next = more
        .then(|| leads.last().map(|l| After::lead(l).to_cursor()))
        .flatten();
    view.leads = &leads;
    view.total = Some(total);
    view.next = next.as_deref();
    Ok(views::page(
        flash.status(),
        views::leads::leads(&user, csrf, &view),
    ))
}

impl InAccount for Lead {
    const PARAM: &'static str = "lead_id";
    const NOT_FOUND: (&'static str, &'static str) = (
        "Lead not found",
        "That lead does not exist in your account.",
    );

    async fn find_in_account(
        state: &ConsoleState,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<Option<Self>, PageError> {
        match store::find(&state.db, user_id, id).await {
            Ok(lead) => Ok(Some(lead)),
            Err(LeadError::NotFound) => Ok(None),
            Err(err) => Err(PageError::store(err)),
        }
    }
}

/// `GET /settings/leads/:lead_id`: another account's lead is "not found", like a
/// missing one (the account is in the query).
#[handler]
pub async fn detail_page(
    state: Data<&Arc<ConsoleState>>,
    owned: Owned<Lead>,
) -> Result<Response, PageError> {
    render_detail(
        &state,
        &owned.signed_in,
        &owned.row,
        views::Flash::default(),
    )
    .await
}

/// One lead's page, and what the last action did.
async fn render_detail(
    state: &ConsoleState,
    signed_in: &SignedIn,
    lead: &Lead,
    flash: views::Flash,
) -> Result<Response, PageError> {
    let user = signed_in.owner(state).await?;
    let key = match lead.api_key_id {
        Some(id) => keys::find_key(&state.db, id).await.ok(),
        None => None,
    };
    let key_name = key
        .filter(|key| key.user_id == user.id)
        .map(|key| format!("{} ({}…)", key.name, key.display_prefix));
    let csrf = &signed_in.session.csrf_token;
    Ok(views::page(
        flash.status(),
        views::leads::lead_detail(&user, csrf, lead, key_name.as_deref(), &flash),
    ))
}

/// `GET /settings/leads/:lead_id/edit`: the lead's fields in a form.
#[handler]
pub async fn edit_page(
    state: Data<&Arc<ConsoleState>>,
    owned: Owned<Lead>,
) -> Result<Response, PageError> {
    let user = owned.signed_in.owner(&state).await?;
    let lead = &owned.row;
    let texts = lead.texts();
    let typed: HashMap<String, String> = editable_fields()
        .map(|field| {
            (
                field.to_owned(),
                text_in(&texts, field).unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let csrf = &owned.signed_in.session.csrf_token;
    Ok(views::page(
        StatusCode::OK,
        views::leads::lead_edit(&user, csrf, lead, &typed, &[]),
    ))
}

/// The text of `field` among a lead's [`Lead::texts`] (`None`: null).
fn text_in<'a>(texts: &'a [(&str, Option<String>)], field: &str) -> Option<&'a str> {
    texts
        .iter()
        .find(|(name, _)| *name == field)
        .and_then(|(_, text)| text.as_deref())
}

/// The update a sent edit form asks for: each editable field whose text differs from
/// the lead's, typed as the API's body would carry it (an emptied field is `null`).
fn changes_of(lead: &Lead, form: &HashMap<String, String>) -> serde_json::Map<String, Value> {
    let texts = lead.texts();
    editable_fields()
        .filter_map(|field| {
            let typed = form.get(field)?;
            let current = text_in(&texts, field).unwrap_or_default();
            (typed.trim() != current.trim()).then(|| {
                let value = if typed.trim().is_empty() {
                    Value::Null
                } else {
                    ciq_leads::rules::typed_value(field, typed)
                };
                (field.to_owned(), value)
            })
        })
        .collect()
}

/// `POST /settings/leads/:lead_id/edit`: the fields changed are checked by the API's
/// update rules (the same messages, each beside its field: 422 with the form as it was
/// typed, nothing saved) and saved in one update with its `lead.updated` event.
#[handler]
async fn save(
    state: Data<&Arc<ConsoleState>>,
    sent: OwnedForm<Lead, HashMap<String, String>>,
) -> Result<Response, PageError> {
    let state: &ConsoleState = &state;
    let lead = &sent.row;
    let signed_in = &sent.signed.signed_in;
    let changes = changes_of(lead, &sent.signed.form);
    if changes.is_empty() {
        let flash = views::Flash {
            notice: Some("Nothing was changed.".to_owned()),
            ..views::Flash::default()
        };
        return render_detail(state, signed_in, lead, flash).await;
    }
    let changed: Vec<String> = changes
        .keys()
        .map(|field| views::leads::label(field))
        .collect();
    let refused = |problems: Vec<(String, String)>| async move {
        let user = signed_in.owner(state).await?;
        Ok::<_, PageError>(views::page(
            StatusCode::UNPROCESSABLE_ENTITY,
            views::leads::lead_edit(
                &user,
                &signed_in.session.csrf_token,
                lead,
                &sent.signed.form,
                &problems,
            ),
        ))
    };
    let patch = match ciq_leads::rules::validate_patch(&serde_json::json!({ "lead": changes })) {
        Ok(patch) => patch,
        Err(violations) => {
            let problems = violations
                .into_iter()
                .map(|v| {
                    let field = v.field.strip_prefix("lead.").unwrap_or(&v.field).to_owned();
                    (field, v.message)
                })
                .collect();
            return refused(problems).await;
        }
    };
    match store::update(&state.db, lead.user_id, lead.id, patch).await {
        Ok(updated) => {
            let flash = views::Flash {
                notice: Some(format!("Saved. Changed: {}.", changed.join(", "))),
                ..views::Flash::default()
            };
            render_detail(state, signed_in, &updated, flash).await
        }
        Err(LeadError::DuplicateLead(other)) => {
            refused(vec![(
                "external_id".to_owned(),
                format!("another lead of your account has this external id (lead {other})"),
            )])
            .await
        }
        Err(LeadError::NotFound) => Err(PageError::not_found::<Lead>()),
        Err(err) => Err(PageError::store(err)),
    }
}

/// The status form: one status name.
#[derive(Deserialize)]
struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
}

impl crate::extract::CsrfForm for StatusForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /settings/leads/:lead_id/status`: the lead's status changes (its
/// `lead.updated` event with it), or stays when it already is that one.
#[handler]
async fn set_status(
    state: Data<&Arc<ConsoleState>>,
    sent: OwnedForm<Lead, StatusForm>,
) -> Result<Response, PageError> {
    let lead = &sent.row;
    let signed_in = &sent.signed.signed_in;
    let Some(status) = LeadStatus::from_name(sent.signed.form.status.trim()) else {
        let flash = views::Flash::refused(format!(
            "Status: must be one of {}.",
            status_names().join(", ")
        ));
        return render_detail(&state, signed_in, lead, flash).await;
    };
    let changed = store::set_status_many(&state.db, lead.user_id, &[lead.id], status)
        .await
        .map_err(PageError::store)?;
    let (shown, notice) = match changed.into_iter().next() {
        Some(updated) => (updated, format!("Status set to {}.", status.as_str())),
        None => (
            lead.clone(),
            format!("The status already is {}.", status.as_str()),
        ),
    };
    let flash = views::Flash {
        notice: Some(notice),
        ..views::Flash::default()
    };
    render_detail(&state, signed_in, &shown, flash).await
}

/// Every status name, in the pipeline's order.
fn status_names() -> Vec<&'static str> {
    LeadStatus::ALL.iter().map(|s| s.as_str()).collect()
}

/// `GET /settings/leads/:lead_id/delete`: asks before erasing.
#[handler]
async fn confirm_erase(
    state: Data<&Arc<ConsoleState>>,
    owned: Owned<Lead>,
) -> Result<Response, PageError> {
    let user = owned.signed_in.owner(&state).await?;
    let leads = std::slice::from_ref(&owned.row);
    Ok(views::page(
        StatusCode::OK,
        views::leads::confirm_erase(&user, &owned.signed_in.session.csrf_token, leads, ""),
    ))
}

/// `POST /settings/leads/bulk` (`csrf`, `action` = `status:<name>` or `delete`,
/// `lead_<id>` per ticked lead; `confirm` once a delete was confirmed): sets the
/// status of the ticked leads, or erases them after a confirmation page. A ticked id
/// of another account is passed over (the account is in every statement).
#[handler]
async fn bulk(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    query: Query<LeadsQuery>,
    sent: crate::extract::SignedInForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let form = &sent.form;
    let signed_in = &sent.signed_in;
    let user_id = sent.session().user_id;
    let ids: Vec<Uuid> = form
        .keys()
        .filter_map(|name| name.strip_prefix("lead_")?.parse().ok())
        .collect();
    let action = form.get("action").map_or("", |a| a.trim());
    let refuse = |problem: String| {
        render_list(
            &state,
            req,
            signed_in,
            &query,
            views::Flash::refused(problem),
        )
    };
    if ids.is_empty() {
        return refuse("Tick the leads to change first.".to_owned()).await;
    }
    if ids.len() > BULK_MAX {
        return refuse(format!("At most {BULK_MAX} leads at a time.")).await;
    }
    let notice = if action == "delete" {
        if !form.contains_key("confirm") {
            let user = signed_in.owner(&state).await?;
            let leads = store::find_many(&state.db, user_id, &ids)
                .await
                .map_err(PageError::store)?;
            if leads.is_empty() {
                return refuse("None of the ticked leads is in your account any more.".to_owned())
                    .await;
            }
            return Ok(views::page(
                StatusCode::OK,
                views::leads::confirm_erase(
                    &user,
                    &signed_in.session.csrf_token,
                    &leads,
                    &query.filters_query(),
                ),
            ));
        }
        let erased = store::erase_many(&state.db, user_id, &ids)
            .await
            .map_err(PageError::store)?;
        format!("Deleted {}.", leads_count(erased.len()))
    } else if let Some(status) = action
        .strip_prefix("status:")
        .and_then(LeadStatus::from_name)
    {
        let changed = store::set_status_many(&state.db, user_id, &ids, status)
            .await
            .map_err(PageError::store)?;
        let unchanged = ids.len() - changed.len();
        let mut notice = format!("Set {} to {}.", leads_count(changed.len()), status.as_str());
        if unchanged > 0 {
            notice.push_str(&format!(
                " {} already {} (or spam, or no longer in your account): left as {}.",
                leads_count(unchanged),
                if unchanged == 1 { "was" } else { "were" },
                if unchanged == 1 {
                    "it was"
                } else {
                    "they were"
                },
            ));
        }
        notice
    } else {
        return refuse("Choose what to do with the ticked leads.".to_owned()).await;
    };
    let flash = views::Flash {
        notice: Some(notice),
        ..views::Flash::default()
    };
    render_list(&state, req, signed_in, &query, flash).await
}

/// "1 lead", "3 leads".
fn leads_count(n: usize) -> String {
    format!("{n} lead{}", if n == 1 { "" } else { "s" })
}

/// The export's first columns; every other field of the lead follows in the lead's
/// own order (a new field is exported without being named here).
const FIRST_COLUMNS: [&str; 3] = ["id", "created_at", "updated_at"];

/// Fields of the lead the export leaves out: the account is the one exporting, and an
/// export holds no spam.
const LEFT_OUT: [&str; 2] = ["user_id", "spam"];

/// The export's columns, in order (attribution and consent spread into their own:
/// `utm_source` … `referrer`, `consent_text` … `consent_ip`).
pub fn csv_columns() -> Vec<&'static str> {
    let rest = Lead::columns()
        .iter()
        .copied()
        .filter(|field| !FIRST_COLUMNS.contains(field) && !LEFT_OUT.contains(field));
    FIRST_COLUMNS.into_iter().chain(rest).collect()
}

/// A text value as a spreadsheet should see it: one that would start a formula
/// (`=`, `+`, `-`, `@`, tab, carriage return) gets a leading `'`, so opening the file
/// never runs what a form visitor typed.
pub(crate) fn cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// One lead as the export's record, in [`csv_columns`]' order: behind the formula
/// guard, numbers as the API writes them, an empty cell for null.
fn record(columns: &[&str], lead: &Lead) -> Vec<String> {
    let texts = lead.texts();
    columns
        .iter()
        .map(|column| {
            text_in(&texts, column)
                .map(|text| cell(text).into_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// `rows` as CSV bytes (RFC 4180: quoted where needed, CRLF line ends).
pub(crate) fn csv_bytes<I: IntoIterator<Item = R>, R: AsRef<[String]>>(rows: I) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        writer
            .write_record(row.as_ref())
            .expect("writing to memory cannot fail");
    }
    writer.into_inner().expect("writing to memory cannot fail")
}

struct Export {
    reads: ciq_store::Reads,
    user_id: Uuid,
    filter: LeadFilter,
    after: Option<After>,
    done: bool,
}

/// The next chunk of an export: the header first, then [`EXPORT_CHUNK`] leads per
/// query, each query starting after the last lead of the one before.
async fn next_chunk(mut export: Export) -> Result<Option<(Vec<u8>, Export)>, std::io::Error> {
    if export.done {
        return Ok(None);
    }
    let header = export.after.is_none();
    let (user_id, filter, after) = (export.user_id, &export.filter, export.after);
    let (leads, more) = export
        .reads
        .read(|db| async move { store::list(&db, user_id, filter, after, EXPORT_CHUNK).await })
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "lead export stopped: the store failed");
            std::io::Error::other(err.to_string())
        })?;
    let columns = csv_columns();
    let mut bytes = if header {
        csv_bytes([columns.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>()])
    } else {
        Vec::new()
    };
    bytes.extend(csv_bytes(leads.iter().map(|lead| record(&columns, lead))));
    export.done = !more;
    export.after = leads.last().map(After::lead).or(export.after);
    if header && export.after.is_none() {
        // No lead at all: the header alone, then the end.
        export.done = true;
    }
    Ok(Some((bytes, export)))
}

/// `GET /settings/leads/export.csv`: the current filter's leads, every page of them,
/// newest first.
#[handler]
pub async fn export_csv(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    query: Query<LeadsQuery>,
    signed_in: SignedIn,
) -> Result<Response, PageError> {
    let (filter, _, problems) = query.parse();
    if let Some((label, rule)) = problems.first() {
        return Ok(views::page(
            StatusCode::UNPROCESSABLE_ENTITY,
            views::message("Export refused", &format!("{label}: {rule}")),
        ));
    }
    let export = Export {
        reads: state.lists_for(req),
        user_id: signed_in.session.user_id,
        filter,
        after: None,
        done: false,
    };
    let stream = futures_util::stream::try_unfold(export, next_chunk);
    let name = format!("leads-{}.csv", Utc::now().format("%Y%m%d-%H%M%S"));
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .content_type("text/csv; charset=utf-8")
        .body(Body::from_bytes_stream(futures_util::TryStreamExt::map_ok(
            stream,
            bytes::Bytes::from,
        )));
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .expect("the name is ASCII"),
    );
    Ok(resp)
}

/// The Spam page's one parameter: where the page starts.
#[derive(Debug, Default, Deserialize)]
pub struct SpamQuery {
    /// A "next page" link's cursor.
    #[serde(default)]
    pub cursor: String,
}

/// `GET /settings/leads/spam`: the leads held back as spam, newest first, each with why.
#[handler]
pub async fn spam_page(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    query: Query<SpamQuery>,
    signed_in: SignedIn,
) -> Result<Response, PageError> {
    render_spam(
        &state,
        req,
        &signed_in,
        &query.cursor,
        views::Flash::default(),
        None,
    )
    .await
}

/// The Spam page; `typed` is a block list form sent back with its problems (shown as it
/// was typed, never lost).
async fn render_spam(
    state: &ConsoleState,
    req: &Request,
    signed_in: &SignedIn,
    cursor: &str,
    flash: views::Flash,
    typed: Option<&str>,
) -> Result<Response, PageError> {
    let user = signed_in.owner(state).await?;
    let user_id = user.id;
    let block_list = match typed {
        Some(typed) => typed.to_owned(),
        None => ciq_leads::spam::block_list(&state.db, user_id)
            .await
            .map_err(PageError::store)?
            .entries()
            .join("\n"),
    };
    let after = After::from_cursor(cursor.trim());
    let filter = LeadFilter {
        spam: true,
        ..LeadFilter::default()
    };
    let filter = &filter;
    let (leads, more) = state
        .lists_for(req)
        .read(|db| async move { store::list(&db, user_id, filter, after, PAGE_SIZE).await })
        .await
        .map_err(PageError::store)?;
    let next = more
        .then(|| leads.last().map(|l| After::lead(l).to_cursor()))
        .flatten();
    let status = flash.status();
    let view = views::leads::SpamView {
        leads: &leads,
        next: next.as_deref(),
        paged: after.is_some(),
        flash: &flash,
        block_list: &block_list,
    };
    Ok(views::page(
        status,
        views::leads::spam(&user, &signed_in.session.csrf_token, &view),
    ))
}

/// `POST /settings/leads/{id}/not-spam`: the lead joins the list, and its `lead.created`
/// event is sent now.
#[handler]
async fn release(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: OwnedForm<Lead, CsrfOnly>,
) -> Result<Response, PageError> {
    let lead = &sent.row;
    let flash = match store::release_spam(&state.db, lead.user_id, lead.id).await {
        Ok(lead) => views::Flash {
            notice: Some(format!(
                "“{}” is not spam: it is in your leads now, and your webhooks hear of it as a new lead.",
                lead.name
            )),
            ..views::Flash::default()
        },
        Err(LeadError::NotFound) => {
            views::Flash::refused(format!("“{}” is not in the spam list.", lead.name))
        }
        Err(err) => return Err(PageError::store(err)),
    };
    render_spam(&state, req, &sent.signed.signed_in, "", flash, None).await
}

/// `POST /settings/leads/{id}/delete`: the lead is erased (a spam lead without any
/// event, as it never had one); the page it came from is shown (the spam list for a
/// spam lead, the lead list for another).
#[handler]
async fn erase(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: OwnedForm<Lead, CsrfOnly>,
) -> Result<Response, PageError> {
    let lead = &sent.row;
    match store::erase(&state.db, lead.user_id, lead.id).await {
        Ok(()) | Err(LeadError::NotFound) => {}
        Err(err) => return Err(PageError::store(err)),
    }
    let flash = views::Flash {
        notice: Some(format!("Deleted “{}”.", lead.name)),
        ..views::Flash::default()
    };
    let signed_in = &sent.signed.signed_in;
    if lead.spam.is_some() {
        render_spam(&state, req, signed_in, "", flash, None).await
    } else {
        render_list(&state, req, signed_in, &LeadsQuery::default(), flash).await
    }
}

/// The block list form.
#[derive(Deserialize)]
struct BlockListForm {
    csrf: String,
    #[serde(default)]
    block_list: String,
}

impl crate::extract::CsrfForm for BlockListForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /settings/leads/spam/block-list`: replaces the account's block list, or names
/// every entry that is neither an email address nor a domain (422, nothing saved).
#[handler]
async fn save_block_list(
    req: &Request,
    state: Data<&Arc<ConsoleState>>,
    sent: crate::extract::SignedInForm<BlockListForm>,
) -> Result<Response, PageError> {
    let typed = &sent.form.block_list;
    let list = match ciq_leads::spam::BlockList::parse(typed) {
        Ok(list) => list,
        Err(problems) => {
            let flash =
                views::Flash::refused(format!("Block list not saved: {}.", problems.join("; ")));
            return render_spam(&state, req, &sent.signed_in, "", flash, Some(typed)).await;
        }
    };
    ciq_leads::spam::set_block_list(&state.db, sent.session().user_id, &list)
        .await
        .map_err(PageError::store)?;
    let flash = views::Flash {
        notice: Some(format!(
            "Block list saved ({} {}). Web form leads from them are held back as spam within \
             {} seconds.",
            list.entries().len(),
            if list.entries().len() == 1 {
                "entry"
            } else {
                "entries"
            },
            BLOCK_LIST_DELAY_SECS
        )),
        ..views::Flash::default()
    };
    render_spam(&state, req, &sent.signed_in, "", flash, None).await
}

/// How long a saved block list takes to apply everywhere (the API's cache of it).
const BLOCK_LIST_DELAY_SECS: u64 = 5;
