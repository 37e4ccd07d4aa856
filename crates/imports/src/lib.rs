//! CSV imports by account owners: reading the file, matching its columns to lead
//! fields, and turning each row into a lead to create or to upsert — with the same
//! field rules as the API, reported per row with the column's own name.
//!
//! - [`store`]: an import's rows in the database, its failures, its lease.
//! - [`worker`]: the background task of every instance that runs queued imports, a
//!   chunk of rows per transaction, the position committed with them.

pub mod store;
pub mod worker;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use ciq_leads::Attribution;
use ciq_leads::attribution::{ATTRIBUTION, CONSENT};
use ciq_leads::rules::{
    LEAD_FIELDS, LeadPatch, NewLead, Violation, lead_body, validate_lead, validate_patch,
};

/// Largest file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
/// Most data rows in one file (the header not counted).
pub const MAX_ROWS: usize = 50_000;
/// Most columns in one file.
pub const MAX_COLUMNS: usize = 100;
/// Longest column name, in characters (the pages show every name).
pub const MAX_COLUMN_NAME_CHARS: usize = 100;
/// Longest cell a preview shows, in characters; a longer one is cut with `…` (the
/// import reads it whole).
pub const PREVIEW_CELL_CHARS: usize = 60;
/// The fields a row needs (mapped, or given a value for every row).
pub const REQUIRED_FIELDS: [&str; 4] = ["name", "email", "source", "industry"];
/// The fields that may be given one value for every row whose cell is empty.
pub const DEFAULTABLE_FIELDS: [&str; 2] = ["source", "industry"];

/// Why an uploaded file cannot be imported at all (the owner fixes the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileProblem {
    /// Over [`MAX_FILE_BYTES`].
    #[error("the file is larger than 10 MB; split it into smaller files")]
    TooLarge,
    /// Nothing in it.
    #[error("the file is empty")]
    Empty,
    /// Not UTF-8.
    #[error(
        "the file is not UTF-8 text (line {line} is not); save it as \"CSV UTF-8\" and upload it again"
    )]
    NotUtf8 {
        /// The first line with a byte that is not UTF-8.
        line: usize,
    },
    /// No data row after the header.
    #[error("the file has a header row but no rows of leads")]
    NoRows,
    /// Over [`MAX_ROWS`].
    #[error("the file has more than 50000 rows; split it into smaller files")]
    TooManyRows,
    /// Over [`MAX_COLUMNS`], or a header cell that is empty, repeated or too long.
    #[error("{0}")]
    Header(String),
    /// A data row with more cells than the header has columns.
    #[error(
        "line {line} has {cells} cells but the header row names {columns} columns; every row needs a column name for each of its cells"
    )]
    RowTooWide {
        /// Where the row starts.
        line: u64,
        /// Its cells.
        cells: usize,
        /// The header's columns.
        columns: usize,
    },
    /// The CSV itself is broken (e.g. a quote that never closes).
    #[error("the file is not valid CSV near line {line}: {reason}")]
    Malformed {
        /// Where the reader stopped.
        line: u64,
        /// What it found.
        reason: String,
    },
}

/// An uploaded file that can be imported: its header and how many rows follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportFile {
    /// The header row's names, trimmed.
    pub columns: Vec<String>,
    /// The cell separator found in the header row (`,`, `;` or tab).
    pub delimiter: u8,
    /// Data rows.
    pub rows: usize,
}

/// The text of `bytes` without a UTF-8 byte-order mark, or the line that is not UTF-8.
fn text_of(bytes: &[u8]) -> Result<&str, FileProblem> {
    utf8_from_line(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes), 1)
}

/// `bytes` as text, or the line that is not UTF-8, counting `bytes`' first line as
/// `first_line`.
fn utf8_from_line(bytes: &[u8], first_line: u64) -> Result<&str, FileProblem> {
    std::str::from_utf8(bytes).map_err(|err| FileProblem::NotUtf8 {
        line: usize::try_from(first_line).unwrap_or(usize::MAX)
            + bytes[..err.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
    })
}

/// The separator a spreadsheet used: whichever of `,` `;` tab the header row holds
/// most of (spreadsheets in many locales write `;`).
fn delimiter_of(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| header.bytes().filter(|b| b == d).count())
        .filter(|d| header.as_bytes().contains(d))
        .unwrap_or(b',')
}

fn reader(text: &str, delimiter: u8, has_headers: bool) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(has_headers)
        .from_reader(text.as_bytes())
}

/// The line a record starts on. The reader places a record where the last one ended:
/// before the `\n` of a CRLF and before blank lines, so its line is one short after
/// every CRLF (spreadsheets on Windows write CRLF) and a blank line. `input` is the
/// reader's input; the line ends skipped are counted here.
fn line_of(input: &[u8], position: &csv::Position) -> u64 {
    let from = usize::try_from(position.byte()).unwrap_or(usize::MAX);
    let skipped = input
        .get(from..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .filter(|b| **b == b'\n')
        .count();
    position.line() + skipped as u64
}

fn malformed(err: &csv::Error) -> FileProblem {
    FileProblem::Malformed {
        line: err.position().map_or(0, csv::Position::line),
        reason: match err.kind() {
            csv::ErrorKind::Utf8 { .. } => "a cell is not UTF-8".to_owned(),
            _ => err.to_string(),
        },
    }
}

impl ImportFile {
    /// Checks an upload: size, UTF-8, a header of at most [`MAX_COLUMNS`] distinct
    /// non-empty names, 1 to [`MAX_ROWS`] rows, readable CSV throughout.
    pub fn read(bytes: &[u8]) -> Result<Self, FileProblem> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(FileProblem::TooLarge);
        }
        let Opened {
            columns,
            delimiter,
            rows: RowReader {
                mut reader, input, ..
            },
        } = Self::open(bytes)?;
        let mut rows = 0;
        let mut record = csv::StringRecord::new();
        while reader
            .read_record(&mut record)
            .map_err(|err| malformed(&err))?
        {
            rows += 1;
            if rows > MAX_ROWS {
                return Err(FileProblem::TooManyRows);
            }
            if record.len() > columns.len() {
                return Err(FileProblem::RowTooWide {
                    line: record.position().map_or(0, |at| line_of(input, at)),
                    cells: record.len(),
                    columns: columns.len(),
                });
            }
        }
        if rows == 0 {
            return Err(FileProblem::NoRows);
        }
        Ok(Self {
            columns,
            delimiter,
            rows,
        })
    }

    /// A stored file read again from the top: its header row's names (checked as
    /// [`ImportFile::read`] checks them: at most [`MAX_COLUMNS`] distinct non-empty
    /// names), its separator, and its data rows.
    pub fn open(bytes: &[u8]) -> Result<Opened<'_>, FileProblem> {
        let text = text_of(bytes)?;
        if text.trim().is_empty() {
            return Err(FileProblem::Empty);
        }
        let delimiter = delimiter_of(text);
        let mut reader = reader(text, delimiter, true);
        let columns: Vec<String> = reader
            .headers()
            .map_err(|err| malformed(&err))?
            .iter()
            .map(|c| c.trim().to_owned())
            .collect();
        if columns.len() > MAX_COLUMNS {
            return Err(FileProblem::Header(format!(
                "the header row has {} columns; at most {MAX_COLUMNS} are read",
                columns.len()
            )));
        }
        if let Some(place) = columns
            .iter()
            .position(|c| c.chars().count() > MAX_COLUMN_NAME_CHARS)
        {
            return Err(FileProblem::Header(format!(
                "the name of column {} of the header row is longer than {MAX_COLUMN_NAME_CHARS} characters",
                place + 1
            )));
        }
        if let Some(place) = columns.iter().position(String::is_empty) {
            return Err(FileProblem::Header(format!(
                "column {} of the header row has no name; every column needs one",
                place + 1
            )));
        }
        for (place, name) in columns.iter().enumerate() {
            if columns[..place]
                .iter()
                .any(|c| c.eq_ignore_ascii_case(name))
            {
                return Err(FileProblem::Header(format!(
                    "the header row names \"{name}\" twice; every column needs its own name"
                )));
            }
        }
        let at = Resume {
            byte: (bytes.len() - text.len()) as u64,
            line: 1,
        };
        Ok(Opened {
            columns,
            delimiter,
            rows: RowReader::new(text, reader, at),
        })
    }

    /// The data rows of `bytes` (a file [`ImportFile::read`] accepted) from the first,
    /// each with the line it starts on.
    pub fn rows<'a>(&self, bytes: &'a [u8]) -> Result<RowReader<'a>, FileProblem> {
        Self::open(bytes).map(|opened| opened.rows)
    }

    /// The data rows of a file whose cells are separated by `delimiter`, read from
    /// `tail` — the file's bytes from `at.byte` on, where a [`RowReader::resume`] of
    /// the same file pointed.
    pub fn rows_from(delimiter: u8, tail: &[u8], at: Resume) -> Result<RowReader<'_>, FileProblem> {
        // No byte-order mark to drop here: `tail` starts at a row, not at the file's top.
        let text = utf8_from_line(tail, at.line)?;
        Ok(RowReader::new(text, reader(text, delimiter, false), at))
    }
}

/// A stored file read again from the top ([`ImportFile::open`]).
pub struct Opened<'a> {
    /// The header row's names, trimmed.
    pub columns: Vec<String>,
    /// The cell separator.
    pub delimiter: u8,
    /// The data rows from the first.
    pub rows: RowReader<'a>,
}

/// Where reading a file goes on: the end of the last row read (the line ends and blank
/// lines before the next row are skipped by the reading). What an import stores with
/// its position, so its next turn reads on from there instead of parsing the file
/// from the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// Byte offset in the file as uploaded (a byte-order mark counted).
    pub byte: u64,
    /// The line that byte is on (the header is line 1).
    pub line: u64,
}

/// A file's data rows, one at a time, knowing where the next one starts.
pub struct RowReader<'a> {
    reader: csv::Reader<&'a [u8]>,
    /// The reader's input.
    input: &'a [u8],
    /// Where the reader's input starts in the file.
    base: Resume,
}

impl<'a> RowReader<'a> {
    fn new(input: &'a str, reader: csv::Reader<&'a [u8]>, base: Resume) -> Self {
        Self {
            reader,
            input: input.as_bytes(),
            base,
        }
    }

    /// `position` (relative to the reader's input) in the file.
    fn in_file(&self, position: &csv::Position) -> Resume {
        Resume {
            byte: self.base.byte + position.byte(),
            line: self.base.line + position.line() - 1,
        }
    }

    /// Where reading goes on after the rows read so far (after the last: the file's
    /// length).
    pub fn resume(&self) -> Resume {
        self.in_file(self.reader.position())
    }
}

impl Iterator for RowReader<'_> {
    type Item = Result<Row, FileProblem>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut record = csv::StringRecord::new();
        match self.reader.read_record(&mut record) {
            Ok(false) => None,
            Ok(true) => Some(Ok(Row {
                line: record.position().map_or(0, |position| {
                    self.base.line + line_of(self.input, position) - 1
                }),
                cells: record.iter().map(str::to_owned).collect(),
            })),
            Err(err) => {
                let mut problem = malformed(&err);
                if let FileProblem::Malformed { line, .. } = &mut problem {
                    *line = self.base.line + line.saturating_sub(1);
                }
                Some(Err(problem))
            }
        }
    }
}

/// One data row: where it starts in the file, and its cells as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The line it starts on (the header is line 1; a quoted cell may span lines).
    pub line: u64,
    /// Its cells.
    pub cells: Vec<String>,
}

impl Row {
    /// The row as one CSV record, as it could be imported again.
    pub fn to_record(&self) -> String {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        writer
            .write_record(&self.cells)
            .expect("writing to memory cannot fail");
        let mut text = String::from_utf8(writer.into_inner().expect("writing to memory"))
            .expect("the cells were UTF-8");
        text.truncate(text.trim_end_matches('\n').len());
        text
    }
}

/// How a file's columns become lead fields: per column the field it fills (or
/// `None`: ignored), and one value for every row that has none, for the fields of
/// [`DEFAULTABLE_FIELDS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// Per column, in the file's order.
    pub columns: Vec<Option<String>>,
    /// Field → the value of rows whose cell is empty or whose file lacks the column.
    #[serde(default)]
    pub defaults: std::collections::BTreeMap<String, String>,
}

/// The lead fields a column can fill, in the lead's order: every field of `lead` but the
/// two objects, whose parts are fields of their own here, named as the export names
/// them (`utm_source` … `referrer`; `consent_text`, `consent_granted`). Attribution and
/// consent are taken when a row creates its lead, and left as they are when it updates
/// one (they never change).
pub static MAPPABLE_FIELDS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| {
        LEAD_FIELDS
            .iter()
            .flat_map(|&field| match field {
                ATTRIBUTION => Attribution::FIELDS.iter().map(|(f, _)| *f).collect(),
                CONSENT => CONSENT_PARTS.iter().map(|(column, _)| *column).collect(),
                _ => vec![field],
            })
            .collect()
    });

/// The consent columns an import reads, and the part of `lead.consent` each fills (the
/// time and the address are the gateway's).
const CONSENT_PARTS: [(&str, &str); 2] = [("consent_text", "text"), ("consent_granted", "granted")];

/// A cell of `consent_granted` as the API's boolean: yes/no words a spreadsheet holds,
/// any case (anything else is left as text, which the rule refuses naming the column).
fn granted(cell: &str) -> Value {
    match cell.to_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "x" => Value::Bool(true),
        "false" | "no" | "n" | "0" => Value::Bool(false),
        _ => Value::String(cell.to_owned()),
    }
}

/// The import field a rule's path names (`lead.attribution.utm_source` → `utm_source`,
/// `lead.consent.text` → `consent_text`, `lead.email` → `email`).
fn field_of_path(path: &str) -> std::borrow::Cow<'_, str> {
    let path = path.strip_prefix("lead.").unwrap_or(path);
    if let Some(part) = path.strip_prefix("attribution.") {
        return part.into();
    }
    if let Some(part) = path.strip_prefix("consent.") {
        return format!("consent_{part}").into();
    }
    path.into()
}

/// The usual header names of each field, lower case, letters and digits only.
const HEADER_NAMES: [(&str, &[&str]); 15] = [
    (
        "name",
        &["name", "fullname", "contactname", "leadname", "contact"],
    ),
    (
        "email",
        &["email", "emailaddress", "mail", "workemail", "email1"],
    ),
    (
        "phone",
        &[
            "phone",
            "phonenumber",
            "mobile",
            "mobilephone",
            "mobilenumber",
            "telephone",
            "tel",
            "cell",
            "cellphone",
        ],
    ),
    ("source", &["source", "leadsource", "channel"]),
    ("industry", &["industry", "vertical", "sector"]),
    ("score", &["score", "leadscore", "rating"]),
    ("status", &["status", "leadstatus", "stage"]),
    (
        "monthly_revenue",
        &["monthlyrevenue", "mrr", "revenuemonthly", "revenue"],
    ),
    ("budget", &["budget"]),
    (
        "description",
        &[
            "description",
            "notes",
            "note",
            "comments",
            "comment",
            "message",
            "details",
        ],
    ),
    (
        "external_id",
        &["externalid", "crmid", "recordid", "sourceid", "externalref"],
    ),
    ("page_url", &["pageurl", "landingpage", "landingpageurl"]),
    ("referrer", &["referrer", "referer", "referringurl"]),
    (
        "consent_granted",
        &[
            "consentgranted",
            "consent",
            "optin",
            "marketingconsent",
            "gdprconsent",
        ],
    ),
    ("consent_text", &["consenttext", "consentwording"]),
];

impl Mapping {
    /// The mapping the usual header names suggest: `E-mail Address` → `email`,
    /// `Lead Source` → `source`, `Notes` → `description`, …, or the field's own name;
    /// each field for the first column that names it; anything else is ignored (our own export's `id`,
    /// `created_at`, `api_key_id` among them).
    pub fn suggested(columns: &[String]) -> Self {
        let mut taken = Vec::new();
        let columns = columns
            .iter()
            .map(|column| {
                let plain: String = column
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
                    .to_ascii_lowercase();
                let field = HEADER_NAMES
                    .iter()
                    .find(|(field, names)| {
                        names.contains(&plain.as_str()) && !taken.contains(field)
                    })
                    .map(|(field, _)| *field)
                    // A field with no usual names of its own: by its name.
                    .or_else(|| {
                        MAPPABLE_FIELDS
                            .iter()
                            .copied()
                            .find(|field| field.replace('_', "") == plain && !taken.contains(field))
                    })?;
                taken.push(field);
                Some(field.to_owned())
            })
            .collect();
        Self {
            columns,
            defaults: Default::default(),
        }
    }

    /// Every problem that keeps this mapping from importing `columns`: a field that is
    /// not one, a field mapped twice, a required field neither mapped nor given a value
    /// for every row. Each problem is a sentence naming the field.
    pub fn problems(&self, columns: &[String]) -> Vec<String> {
        let mut problems = Vec::new();
        if self.columns.len() != columns.len() {
            problems.push(format!(
                "the mapping has {} columns; the file has {}",
                self.columns.len(),
                columns.len()
            ));
        }
        for (place, field) in self.columns.iter().enumerate() {
            let Some(field) = field else { continue };
            if !MAPPABLE_FIELDS.contains(&field.as_str()) {
                problems.push(format!("\"{field}\" is not a lead field"));
            } else if self.columns[..place]
                .iter()
                .any(|f| f.as_deref() == Some(field))
            {
                problems.push(format!("{field} is chosen for more than one column"));
            }
        }
        for field in self.defaults.keys() {
            if !DEFAULTABLE_FIELDS.contains(&field.as_str()) {
                problems.push(format!("{field} cannot have a value for every row"));
            }
        }
        for field in REQUIRED_FIELDS {
            let mapped = self.columns.iter().any(|f| f.as_deref() == Some(field));
            let defaulted = self
                .defaults
                .get(field)
                .is_some_and(|v| !v.trim().is_empty());
            if !mapped && !defaulted {
                problems.push(if DEFAULTABLE_FIELDS.contains(&field) {
                    format!("{field} is required: choose its column or give a value for every row")
                } else {
                    format!("{field} is required: choose its column")
                });
            }
        }
        problems
    }

    /// Whether rows are matched to existing leads by their `external_id`.
    pub fn upserts(&self) -> bool {
        self.columns
            .iter()
            .any(|f| f.as_deref() == Some("external_id"))
    }

    /// The column a field was read from, for messages (the field's own name when it
    /// came from [`Mapping::defaults`]).
    fn column_of<'a>(&self, columns: &'a [String], field: &'a str) -> &'a str {
        self.columns
            .iter()
            .position(|f| f.as_deref() == Some(field))
            .and_then(|place| columns.get(place))
            .map_or(field, String::as_str)
    }
}

/// A cell as the API would have received it: a spreadsheet's formula guard (a `'`
/// before `=`, `+`, `-`, `@` — our own export writes one) is taken off; numbers stay
/// text unless the field takes a number; a status is read in any case.
fn cell_value(field: &str, cell: &str) -> Value {
    let cell = match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => cell,
    };
    ciq_leads::rules::typed_value(field, cell)
}

/// What to do with one row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowPlan {
    /// Create this lead.
    Create(NewLead),
    /// Update the lead with this `external_id` as `patch` says, or, when the account has
    /// none, create `new` — which is the reason it cannot be created when the row lacks
    /// a required field.
    Upsert {
        /// The row's external id.
        external_id: String,
        /// The row's fields, as an update.
        patch: Box<LeadPatch>,
        /// The row's fields as a new lead, or why they are not one.
        new: Result<NewLead, String>,
    },
    /// The row breaks the rules: why, in words, naming the file's columns.
    Refused(String),
}

/// Every broken rule of a row, joined, each naming the column it was read from.
fn reason(mapping: &Mapping, columns: &[String], violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            let field = field_of_path(&v.field);
            format!("{}: {}", mapping.column_of(columns, &field), v.message)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The plan for `row` under `mapping` (one [`Mapping::problems`] found nothing in). An
/// empty cell is no value: a new lead goes without it, an updated one keeps its own.
pub fn plan(mapping: &Mapping, columns: &[String], row: &Row) -> RowPlan {
    checked(mapping, columns, row).0
}

/// The places (column indexes) of the cells whose fields broke a rule; a required field
/// no column fills has no cell, and no place.
fn faulted<'a>(
    mapping: &'a Mapping,
    violations: &'a [Violation],
) -> impl Iterator<Item = usize> + 'a {
    violations.iter().filter_map(|v| {
        let field = field_of_path(&v.field);
        mapping
            .columns
            .iter()
            .position(|f| f.as_deref() == Some(field.as_ref()))
    })
}

/// [`plan`], and the places of the cells that break a rule (the preview marks them).
pub fn checked(mapping: &Mapping, columns: &[String], row: &Row) -> (RowPlan, Vec<usize>) {
    if row.cells.len() != columns.len() {
        let refused = RowPlan::Refused(format!(
            "the row has {} cells; the header row has {}",
            row.cells.len(),
            columns.len()
        ));
        return (refused, Vec::new());
    }
    let mut faults = Vec::new();
    let (mut lead, mut attribution, mut consent) = (Map::new(), Map::new(), Map::new());
    for (field, cell) in mapping.columns.iter().zip(&row.cells) {
        let (Some(field), cell) = (field, cell.trim()) else {
            continue;
        };
        if cell.is_empty() {
            continue;
        }
        if Attribution::is_field(field) {
            attribution.insert(field.clone(), cell_value(field, cell));
        } else if let Some((_, part)) = CONSENT_PARTS.iter().find(|(c, _)| c == field) {
            let value = match *part {
                "granted" => granted(cell),
                _ => cell_value(field, cell),
            };
            consent.insert((*part).to_owned(), value);
        } else {
            lead.insert(field.clone(), cell_value(field, cell));
        }
    }
    let external_id = lead
        .get("external_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    // The patch carries only what the row says; the defaults are for new leads. The
    // bodies are put together as values (`json!` would serialise the map into a copy).
    let patch_body = external_id
        .is_some()
        .then(|| lead_body(Value::Object(lead.clone())));
    for (field, value) in &mapping.defaults {
        if !value.trim().is_empty() && !lead.contains_key(field) {
            lead.insert(field.clone(), Value::String(value.trim().to_owned()));
        }
    }
    // Taken by a create only: an update leaves them as they are.
    if !attribution.is_empty() {
        lead.insert(ATTRIBUTION.to_owned(), Value::Object(attribution));
    }
    if !consent.is_empty() {
        lead.insert(CONSENT.to_owned(), Value::Object(consent));
    }
    let new = validate_lead(&Value::Object(lead)).map_err(|v| {
        faults.extend(faulted(mapping, &v));
        reason(mapping, columns, &v)
    });
    let plan = match (external_id, patch_body) {
        (Some(external_id), Some(patch_body)) => match validate_patch(&patch_body) {
            Ok(patch) => RowPlan::Upsert {
                external_id,
                patch: Box::new(patch),
                new,
            },
            // Refused either way: the create rules name every problem (the fields
            // given break the same rules, and a missing required field is named too).
            Err(violations) => RowPlan::Refused(new.err().unwrap_or_else(|| {
                faults.extend(faulted(mapping, &violations));
                reason(mapping, columns, &violations)
            })),
        },
        // No external id (and so no patch).
        _ => match new {
            Ok(new) => RowPlan::Create(new),
            Err(reason) => RowPlan::Refused(reason),
        },
    };
    faults.sort_unstable();
    faults.dedup();
    (plan, faults)
}

/// What importing a whole file under a mapping would do, row by row, before it starts
/// (the account's leads aside: a row with an `external_id` may update one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Rows that will be created or update a lead.
    pub import: u64,
    /// Rows that will fail.
    pub fail: u64,
    /// Rows that update the lead with their `external_id` if the account has one, and
    /// fail if not (they cannot be created).
    pub unless_existing: u64,
    /// The lines of the first failing rows (at most [`TALLY_LINES`]).
    pub failing_lines: Vec<u64>,
}

/// Failing lines a [`Tally`] names.
pub const TALLY_LINES: usize = 10;

/// Counts what [`plan`] makes of every row of `bytes` under `mapping` (CPU only: run it
/// off the async runtime for a large file).
pub fn tally(file: &ImportFile, bytes: &[u8], mapping: &Mapping) -> Result<Tally, FileProblem> {
    let mut tally = Tally::default();
    for row in file.rows(bytes)? {
        let row = row?;
        match plan(mapping, &file.columns, &row) {
            RowPlan::Create(_) | RowPlan::Upsert { new: Ok(_), .. } => tally.import += 1,
            RowPlan::Upsert { new: Err(_), .. } => tally.unless_existing += 1,
            RowPlan::Refused(_) => {
                tally.fail += 1;
                if tally.failing_lines.len() < TALLY_LINES {
                    tally.failing_lines.push(row.line);
                }
            }
        }
    }
    Ok(tally)
}

/// A row of the preview: its line, its cells, and what is wrong with it (`None`: it
/// would be imported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewRow {
    /// The line it starts on.
    pub line: u64,
    /// Its cells.
    pub cells: Vec<String>,
    /// Why it would fail, if it would. A row with an `external_id` that only an
    /// existing lead could satisfy is shown with the reason it could not be created.
    pub problem: Option<String>,
    /// The places of the cells that break a rule.
    pub faults: Vec<usize>,
}

/// `text` cut to its first `chars` characters and `…`, when it is longer.
pub fn shortened(text: String, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The first `count` rows of `bytes` under `mapping`, each with its problem.
pub fn preview(
    file: &ImportFile,
    bytes: &[u8],
    mapping: &Mapping,
    count: usize,
) -> Result<Vec<PreviewRow>, FileProblem> {
    file.rows(bytes)?
        .take(count)
        .map(|row| {
            let row = row?;
            let (plan, faults) = checked(mapping, &file.columns, &row);
            let problem = match plan {
                RowPlan::Create(_) | RowPlan::Upsert { new: Ok(_), .. } => None,
                RowPlan::Upsert {
                    new: Err(reason), ..
                } => Some(format!(
                    "unless a lead has this external_id already: {reason}"
                )),
                RowPlan::Refused(reason) => Some(reason),
            };
            // What a page shows of the row: the header's columns only (a draft stored
            // before wider rows were refused may have more), each cell cut short.
            let cells = row
                .cells
                .into_iter()
                .take(file.columns.len())
                .map(|cell| shortened(cell, PREVIEW_CELL_CHARS))
                .collect();
            Ok(PreviewRow {
                line: row.line,
                cells,
                problem,
                faults,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn row(line: u64, cells: &[&str]) -> Row {
        Row {
            line,
            cells: cells.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    #[test]
    fn usual_headers_are_matched_and_the_rest_ignored() {
        let mapping = Mapping::suggested(&columns(&[
            "id",
            "Full Name",
            "E-mail Address",
            "Lead Source",
            "Industry",
            "Notes",
            "api_key_id",
            "external_id",
            "Email",
        ]));
        assert_eq!(
            mapping.columns,
            [
                None,
                Some("name".into()),
                Some("email".into()),
                Some("source".into()),
                Some("industry".into()),
                Some("description".into()),
                None,
                Some("external_id".into()),
                None,
            ]
        );
        assert!(mapping.upserts());
    }

    #[test]
    fn a_mapping_names_every_problem() {
        let cols = columns(&["a", "b", "c"]);
        let mapping = Mapping {
            columns: vec![
                Some("email".into()),
                Some("email".into()),
                Some("colour".into()),
            ],
            defaults: [("score".to_owned(), "3".to_owned())].into(),
        };
        assert_eq!(
            mapping.problems(&cols),
            [
                "email is chosen for more than one column",
                "\"colour\" is not a lead field",
                "score cannot have a value for every row",
                "name is required: choose its column",
                "source is required: choose its column or give a value for every row",
                "industry is required: choose its column or give a value for every row",
            ]
        );
    }

    #[test]
    fn files_are_refused_with_the_reason() {
        let problem = |bytes: &[u8]| ImportFile::read(bytes).unwrap_err().to_string();
        assert_eq!(problem(b""), "the file is empty");
        assert_eq!(
            problem(b"name,email\n"),
            "the file has a header row but no rows of leads"
        );
        assert!(problem(b"name,email\nAda,\xff@x.io\n").contains("line 2 is not"));
        assert!(problem(b"name,,email\nA,b,c\n").contains("column 2 of the header row"));
        assert!(problem(b"Email,email\na,b\n").contains("names \"email\" twice"));
        // The line as an editor numbers it, also in a CRLF file with a blank line.
        assert!(
            problem(b"name,email\r\na,b\r\n\r\nc,d,e\r\n").starts_with("line 4 has 3 cells"),
            "{}",
            problem(b"name,email\r\na,b\r\n\r\nc,d,e\r\n")
        );
        let many = format!("name\n{}", "x\n".repeat(MAX_ROWS + 1));
        assert_eq!(
            problem(many.as_bytes()),
            FileProblem::TooManyRows.to_string()
        );
    }

    #[test]
    fn semicolons_bom_and_multiline_cells_are_read() {
        let bytes =
            "\u{feff}Name;Email;Notes\nAda;ada@example.com;\"two\nlines\"\nBob;bob@example.com;x\n";
        let file = ImportFile::read(bytes.as_bytes()).unwrap();
        assert_eq!(file.columns, ["Name", "Email", "Notes"]);
        assert_eq!(file.rows, 2);
        let rows: Vec<Row> = file
            .rows(bytes.as_bytes())
            .unwrap()
            .skip(1)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [row(4, &["Bob", "bob@example.com", "x"])]);
    }

    /// Read a few rows at a time, each turn from where the last one said the next row
    /// starts (as the worker does), a file gives the rows of one pass from the top:
    /// same cells, same lines — with a byte-order mark, CRLF and LF line ends, quoted
    /// cells over several lines (a quoted CRLF too), a quoted separator, blank lines,
    /// non-ASCII text and no line end after the last row.
    #[test]
    fn rows_read_on_from_a_resume_point_are_the_rows_of_one_pass() {
        let bytes = "\u{feff}Name;Notes\r\nZoë;\"one\r\ntwo\nthree\"\r\n\r\nBob;\"a;b\"\n\nÅsa;x\n\"multi\nline name\";\"\"\r\nLast;end"
            .as_bytes();
        let file = ImportFile::read(bytes).unwrap();
        let all: Vec<Row> = file.rows(bytes).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 5, "{all:?}");
        let lines: Vec<u64> = all.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 6, 8, 9, 11], "where each row starts: {all:?}");
        assert_eq!(all[0].cells, ["Zoë", "one\r\ntwo\nthree"]);
        for step in 1..=3 {
            let mut read = Vec::new();
            let mut rows = file.rows(bytes).unwrap();
            loop {
                let chunk: Vec<Row> = rows.by_ref().take(step).map(Result::unwrap).collect();
                let at = rows.resume();
                read.extend(chunk);
                if read.len() == all.len() {
                    assert_eq!(at.byte, bytes.len() as u64, "the end, after {step}s");
                    break;
                }
                // The next row starts exactly there.
                let tail = &bytes[usize::try_from(at.byte).unwrap()..];
                rows = ImportFile::rows_from(file.delimiter, tail, at).unwrap();
            }
            assert_eq!(read, all, "{step} rows a turn");
        }
    }

    #[test]
    fn a_broken_row_read_on_from_a_resume_point_names_its_line_in_the_file() {
        let bytes = b"name,notes\na,1\nb,2\nc,\"never closed\n";
        let mut rows = ImportFile::open(bytes).unwrap().rows;
        assert_eq!(rows.next().unwrap().unwrap().line, 2);
        let at = rows.resume();
        let tail = &bytes[usize::try_from(at.byte).unwrap()..];
        let rows: Vec<_> = ImportFile::rows_from(b',', tail, at).unwrap().collect();
        assert_eq!(rows[0].as_ref().unwrap(), &row(3, &["b", "2"]));
        assert_eq!(rows[1].as_ref().unwrap(), &row(4, &["c", "never closed\n"]));
        let not_utf8 = ImportFile::rows_from(b',', b"x,\xff\n", at).err();
        assert_eq!(not_utf8, Some(FileProblem::NotUtf8 { line: 3 }));
    }

    #[test]
    fn rows_are_planned_with_the_api_rules_and_the_files_column_names() {
        let cols = columns(&["Name", "E-mail", "Score", "Status", "Ref"]);
        let mut mapping = Mapping::suggested(&cols);
        mapping.columns[4] = None;
        mapping
            .defaults
            .insert("source".into(), "Trade fair".into());
        mapping.defaults.insert("industry".into(), "Retail".into());
        let RowPlan::Create(new) = plan(
            &mapping,
            &cols,
            &row(2, &["Ada", "ada@example.com", "7", "Qualified", ""]),
        ) else {
            panic!("should be created");
        };
        assert_eq!((new.score, new.status.as_str()), (Some(7), "qualified"));
        assert_eq!(new.source, "Trade fair");
        assert_eq!(
            plan(&mapping, &cols, &row(3, &["", "nope", "11", "", ""])),
            RowPlan::Refused(
                "Name: is required; E-mail: must be a valid email address; \
                 Score: must be a whole number from 1 to 10"
                    .into()
            )
        );
        assert_eq!(
            plan(&mapping, &cols, &row(4, &["Ada"])),
            RowPlan::Refused("the row has 1 cells; the header row has 5".into())
        );
    }

    #[test]
    fn an_external_id_makes_an_upsert_and_empty_cells_keep_values() {
        let cols = columns(&[
            "external_id",
            "name",
            "email",
            "source",
            "industry",
            "phone",
        ]);
        let mapping = Mapping::suggested(&cols);
        let RowPlan::Upsert {
            external_id,
            patch,
            new,
        } = plan(&mapping, &cols, &row(2, &["crm-1", "Ada", "", "", "", ""]))
        else {
            panic!("should be an upsert");
        };
        assert_eq!(external_id, "crm-1");
        assert_eq!(patch.name.as_deref(), Some("Ada"));
        assert_eq!(patch.email, None);
        assert_eq!(patch.phone, ciq_leads::rules::Change::Keep);
        assert_eq!(
            new.unwrap_err(),
            "email: is required; source: is required; industry: is required"
        );
    }

    #[test]
    fn the_exports_formula_guard_comes_off() {
        assert_eq!(
            cell_value("name", "'=SUM(A1)"),
            Value::String("=SUM(A1)".into())
        );
        assert_eq!(
            cell_value("name", "'quoted"),
            Value::String("'quoted".into())
        );
        assert_eq!(
            cell_value("budget", "50000.10"),
            serde_json::json!(50000.10)
        );
    }

    #[test]
    fn a_row_is_written_back_as_it_was() {
        let r = row(9, &["Ada, Countess", "say \"hi\"", ""]);
        assert_eq!(r.to_record(), "\"Ada, Countess\",\"say \"\"hi\"\"\",");
    }
    #[test]
    fn a_tally_counts_every_row_and_the_faults_name_the_cells() {
        let csv = "external_id,name,email,source,industry\n\
                   ,Ann,ann@example.com,Web,Retail\n\
                   ,Bob,not-an-email,Web,Retail\n\
                   x-1,,carl@example.com,Web,Retail\n\
                   ,,,Web,Retail\n";
        let file = ImportFile::read(csv.as_bytes()).unwrap();
        let mapping = Mapping::suggested(&file.columns);
        let tally = tally(&file, csv.as_bytes(), &mapping).unwrap();
        assert_eq!(
            tally,
            Tally {
                import: 1,
                fail: 2,
                unless_existing: 1,
                failing_lines: vec![3, 5],
            }
        );
        let rows = preview(&file, csv.as_bytes(), &mapping, 10).unwrap();
        let faults: Vec<&[usize]> = rows.iter().map(|r| r.faults.as_slice()).collect();
        // The bad email's cell; the missing name's (the row with an external id can
        // still update); both empty cells of the last row.
        assert_eq!(faults, [&[][..], &[2], &[1], &[1, 2]]);
    }
}
