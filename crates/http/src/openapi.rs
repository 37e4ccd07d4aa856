//! What every OpenAPI document of the gateway needs after poem-openapi generated it,
//! so that validators accept it and client generators keep every operation:
//! nullability stated the OpenAPI 3.0 way, no `$ref` wrapped in `allOf` just to carry
//! a description, `application/json` without parameters, header names as clients see
//! them, a `servers` entry, and error examples in the contract's shape.

use serde_json::{Value, json};

use crate::error::ErrorCode;

/// Header names as clients see them (poem-openapi upper-cases extra headers).
pub const HEADER_NAMES: [&str; 7] = [
    "Idempotent-Replayed",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "RateLimit-Policy",
    "RateLimit",
    "Retry-After",
];

// Patterns of text fields, stated exactly as the API checks them: surrounding white
// space is trimmed first (`str::trim`), then what is left must hold no control
// character (`char::is_control`), and a required field must not be blank. Character
// classes are spelled out rather than `\s`, whose meaning differs between
// ECMAScript, Python and Rust.

/// Unicode's control characters (`char::is_control`).
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";
/// Control characters but tab, line feed and carriage return (multi-line text).
const CONTROL_BUT_LINES: &str = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f";
/// Exactly the characters `str::trim` removes (Unicode White_Space).
const WHITE_SPACE: &str =
    r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Control characters and white space: what a non-blank text's first kept
/// character is not.
const BLANK: &str = r"\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// `pattern` of an optional field whose value must match `core` once trimmed, and
/// which is absent when blank (web forms send `""`).
pub fn trimmed_or_blank_pattern(core: &str) -> String {
    format!("^[{WHITE_SPACE}]*(?:{core})?[{WHITE_SPACE}]*$")
}

/// `pattern` of an optional absolute http(s) URL (blank: absent). Its host and port are
/// checked by a URL parser beyond what the pattern says.
pub fn web_url_pattern() -> String {
    trimmed_or_blank_pattern(&format!("https?://[^{BLANK}/?#]+(?:[/?#][^{CONTROL}]*)?"))
}

/// `pattern` of a one-line text field (or filter).
pub fn single_line_pattern() -> String {
    format!("^[{WHITE_SPACE}]*[^{CONTROL}]*[{WHITE_SPACE}]*$")
}

/// `pattern` of a one-line text field that must not be blank.
pub fn required_single_line_pattern() -> String {
    format!("^[{WHITE_SPACE}]*[^{CONTROL}]*[^{BLANK}][^{CONTROL}]*[{WHITE_SPACE}]*$")
}

/// `pattern` of a multi-line text field: tabs and line breaks are text.
pub fn multi_line_pattern() -> String {
    format!("^[{WHITE_SPACE}]*[^{CONTROL_BUT_LINES}]*[{WHITE_SPACE}]*$")
}

/// Parses poem-openapi's output, applies every fix of this module, and hands the
/// document to `edit` for the surface's own examples and rules.
pub fn build(spec: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut doc: Value = serde_json::from_str(spec).expect("poem-openapi emits valid JSON");
    doc["servers"] = json!([{
        "url": "/",
        "description": "The gateway serving this document"
    }]);
    unwrap_described_refs(&mut doc);
    mark_optional_properties_nullable(&mut doc);
    plain_json_content_types(&mut doc);
    edit(&mut doc);
    canonical_header_names(&mut doc);
    serde_json::to_string_pretty(&doc).expect("a JSON value serialises") + "\n"
}

/// An error body as the contract sends it.
pub fn error_example(code: ErrorCode, message: &str, details: Value) -> Value {
    json!({"success": false, "error": {"code": code.as_str(), "message": message, "details": details}})
}

/// Sets the example of `status`'s (only) media type in `operation`'s responses.
/// Panics when the status is not documented: an example for a status the operation
/// does not answer with would be a lie.
pub fn set_example(operation: &mut Value, status: &str, example: Value) {
    let media = operation["responses"][status]["content"]
        .as_object_mut()
        .and_then(|content| content.values_mut().next())
        .unwrap_or_else(|| panic!("status {status} is documented with a JSON body"));
    media["example"] = example;
}

/// Removes the response headers `names` from the responses `statuses` of `operation`
/// (poem-openapi puts an operation's extra headers on every status).
pub fn drop_headers(operation: &mut Value, statuses: &[&str], names: &[&str]) {
    for status in statuses {
        let headers = operation
            .get_mut("responses")
            .and_then(|r| r.get_mut(*status))
            .and_then(|r| r.get_mut("headers"))
            .and_then(Value::as_object_mut);
        if let Some(headers) = headers {
            headers.retain(|name, _| !names.iter().any(|n| n.eq_ignore_ascii_case(name)));
        }
    }
}

/// poem-openapi writes a property that has its own description as
/// `{"description", "allOf": [{"$ref"}, {"description"}]}`; generators such as
/// openapi-python-client then drop every operation that uses the schema. A required
/// reference becomes the bare `$ref`; an optional one a single-element `allOf` with
/// `nullable` (and its description), the OpenAPI 3.0 way to say "nullable reference",
/// which generators turn into `Type | None`.
fn unwrap_described_refs(doc: &mut Value) {
    let Some(all) = doc
        .get_mut("components")
        .and_then(|c| c.get_mut("schemas"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for schema in all.values_mut() {
        // `get`, never `schema["..."]` on a mutable value: indexing inserts `null`,
        // and validators reject `"properties": null`.
        let required: Vec<Value> = schema
            .get("required")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (field, property) in properties.iter_mut() {
            let Some(target) = property["allOf"]
                .as_array()
                .and_then(|parts| parts.iter().find_map(|p| p["$ref"].as_str()))
                .map(str::to_owned)
            else {
                continue;
            };
            let description = property.get("description").cloned();
            let nullable = !required.contains(&Value::String(field.clone()));
            *property = if nullable {
                json!({"allOf": [{"$ref": target}], "nullable": true})
            } else {
                json!({"$ref": target})
            };
            if let (Some(description), false) = (description, property.get("$ref").is_some()) {
                property["description"] = description;
            }
        }
    }
}

/// OpenAPI 3.0 needs `nullable: true` where a value may be null: every optional
/// property here is answered as null when absent (and accepted as null).
fn mark_optional_properties_nullable(doc: &mut Value) {
    let Some(schemas) = doc
        .get_mut("components")
        .and_then(|c| c.get_mut("schemas"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for schema in schemas.values_mut() {
        let required: Vec<String> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            for (name, property) in properties.iter_mut() {
                if !required.contains(name) && property.get("$ref").is_none() {
                    property["nullable"] = Value::Bool(true);
                }
            }
        }
    }
}

/// Runs `edit` on every response object of every operation.
fn for_each_response(doc: &mut Value, mut edit: impl FnMut(&mut serde_json::Map<String, Value>)) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operations in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in operations.values_mut() {
            let responses = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut);
            for response in responses.into_iter().flat_map(|r| r.values_mut()) {
                if let Some(response) = response.as_object_mut() {
                    edit(response);
                }
            }
        }
    }
}

/// Renames the keys of the object at `field` of `response` with `rename`.
fn rename_keys(
    response: &mut serde_json::Map<String, Value>,
    field: &str,
    rename: impl Fn(String) -> String,
) {
    if let Some(map) = response.get_mut(field).and_then(Value::as_object_mut) {
        *map = std::mem::take(map)
            .into_iter()
            .map(|(name, value)| (rename(name), value))
            .collect();
    }
}

/// Documents `application/json; charset=utf-8` as `application/json`: what the
/// server sends is the same media type, and generators match the bare name.
fn plain_json_content_types(doc: &mut Value) {
    for_each_response(doc, |response| {
        rename_keys(response, "content", |ct| {
            ct.split(';').next().unwrap_or(&ct).trim().to_owned()
        });
    });
}

fn canonical_header_names(doc: &mut Value) {
    for_each_response(doc, |response| {
        rename_keys(response, "headers", |name| {
            HEADER_NAMES
                .iter()
                .find(|n| n.eq_ignore_ascii_case(&name))
                .map_or(name, |n| (*n).to_owned())
        });
    });
}

/// The shapes in `doc` that validators reject or client generators mishandle: an
/// `allOf` that is more than one reference (generators drop the operation), a
/// `multipleOf` (validators reject 19.99 against 0.01 in binary floating point), a
/// `null` where a schema or its `properties` belong. Empty for a sound document.
pub fn generator_hazards(doc: &Value) -> Vec<String> {
    fn walk(value: &Value, at: &str, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    let here = format!("{at}/{key}");
                    match (key.as_str(), inner) {
                        ("allOf", Value::Array(parts))
                            if parts.len() != 1 || parts[0].get("$ref").is_none() =>
                        {
                            found.push(format!("{here}: allOf beyond one $ref"));
                        }
                        ("multipleOf", _) => found.push(format!("{here}: multipleOf")),
                        ("properties" | "schema" | "items", Value::Null) => {
                            found.push(format!("{here}: null"));
                        }
                        _ => {}
                    }
                    walk(inner, &here, found);
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    walk(inner, &format!("{at}/{i}"), found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(doc, "", &mut found);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn described_references_become_plain_or_nullable_ones() {
        let spec = json!({
            "paths": {},
            "components": {"schemas": {
                "Status": {"type": "string", "enum": ["a", "b"]},
                "Inner": {"type": "object", "properties": {}},
                "Outer": {"type": "object", "required": ["inner"], "properties": {
                    "inner": {"description": "d", "allOf": [{"$ref": "#/components/schemas/Inner"}, {"description": "d"}]},
                    "status": {"description": "s", "allOf": [{"$ref": "#/components/schemas/Status"}, {"description": "s"}]},
                    "other": {"description": "o", "allOf": [{"$ref": "#/components/schemas/Inner"}, {"description": "o"}]}
                }}
            }}
        })
        .to_string();
        let doc: Value = serde_json::from_str(&build(&spec, |_| {})).unwrap();
        let props = &doc["components"]["schemas"]["Outer"]["properties"];
        assert_eq!(
            props["inner"],
            json!({"$ref": "#/components/schemas/Inner"})
        );
        assert_eq!(
            props["status"],
            json!({"allOf": [{"$ref": "#/components/schemas/Status"}], "nullable": true, "description": "s"})
        );
        assert_eq!(
            props["other"],
            json!({"allOf": [{"$ref": "#/components/schemas/Inner"}], "nullable": true, "description": "o"})
        );
        assert_eq!(doc["servers"][0]["url"], "/");
        assert_eq!(generator_hazards(&doc), Vec::<String>::new());
        let bad = json!({"a": {"allOf": [{"$ref": "#/x"}, {"description": "d"}]}, "b": {"multipleOf": 0.01}, "properties": null});
        assert_eq!(generator_hazards(&bad).len(), 3);
    }
}
