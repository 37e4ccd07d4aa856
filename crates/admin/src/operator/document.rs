//! The operator document (`/admin/v1/openapi.json`, `ciq-gateway openapi --admin`,
//! `openapi/admin.json`): the operator API and the probes, with an example for every
//! status and the rules the handlers check themselves.

use poem_openapi::OpenApiService;
use serde_json::{Value, json};

use ciq_http::ErrorCode;
use ciq_http::openapi::{error_example, set_example};

use super::api::AdminApi;
use super::health::HealthApi;

/// Title of the operator document.
pub const TITLE: &str = "ConvertIQ Gateway Operator API";

const DESCRIPTION: &str = "Users and API keys of every account, for operators and their scripts, \
plus the probes every instance serves.\n\n\
**Authentication.** Every `/admin/v1` operation, this document included, needs \
`Authorization: Bearer $CIQ_ADMIN_TOKEN`; without a configured token the operator API is off \
and every `/admin/v1` path answers 404. The probes (`/healthz`, `/readyz`, `/metrics`) need no \
token: keep them off the public network.\n\n\
**Errors.** Every error is JSON: `{\"success\": false, \"error\": {\"code\", \"message\", \"details\": [{\"field\", \"message\"}]}}`.";

/// The operator document, as served and committed.
pub fn document() -> String {
    let service = OpenApiService::new((AdminApi, HealthApi), TITLE, env!("CARGO_PKG_VERSION"))
        .description(DESCRIPTION);
    ciq_http::openapi::build(&service.spec(), |doc| {
        document_operator_rules(doc);
        add_error_examples(doc);
    })
}

/// Rules the operator API checks itself (to answer 422 naming the field, not a
/// parser's 400), stated in the document too.
fn document_operator_rules(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    let password = &mut schemas["CreateUserRequest"]["properties"]["password"];
    password["minLength"] = json!(crate::users::MIN_PASSWORD_LEN);
    password["maxLength"] = json!(crate::users::MAX_PASSWORD_LEN);
    for field in ["rate_limit_per_minute", "visitor_rate_limit_per_minute"] {
        let limit = &mut schemas["CreateKeyRequest"]["properties"][field];
        limit["minimum"] = json!(1);
        limit["maximum"] = json!(crate::keys::MAX_RATE_LIMIT_PER_MINUTE);
    }
    let overlap = &mut schemas["RollKeyRequest"]["properties"]["overlap_seconds"];
    overlap["minimum"] = json!(0);
    overlap["maximum"] = json!(crate::keys::MAX_ROLL_OVERLAP_SECS);
    schemas["CreateUserRequest"]["properties"]["email"]["format"] = json!("email");
    let key = &mut schemas["CreateKeyRequest"]["properties"];
    key["name"]["pattern"] = json!(ciq_http::openapi::single_line_pattern());
    key["allowed_origins"]["maxItems"] = json!(crate::origins::MAX_ORIGINS);
    key["allowed_origins"]["items"]["pattern"] = json!(crate::origins::ORIGIN_PATTERN);
    for path in [
        "/admin/v1/keys/{key_id}/usage",
        "/admin/v1/users/{user_id}/usage",
    ] {
        crate::usage::document_window_parameters(doc, path);
    }
}

/// The example each documented error status of an operator operation shows.
fn example_for(status: &str) -> Option<Value> {
    let (code, message, details) = match status {
        "400" => (
            ErrorCode::BadRequest,
            "failed to parse path `user_id`: invalid uuid",
            json!([]),
        ),
        "401" => (
            ErrorCode::MissingAdminToken,
            ErrorCode::MissingAdminToken.default_message(),
            json!([]),
        ),
        "404" => (ErrorCode::NotFound, "no such user", json!([])),
        "409" => (
            ErrorCode::EmailTaken,
            ErrorCode::EmailTaken.default_message(),
            json!([]),
        ),
        "413" => (
            ErrorCode::PayloadTooLarge,
            "the request body must be at most 16384 bytes",
            json!([]),
        ),
        "415" => (
            ErrorCode::UnsupportedMediaType,
            "Content-Type must be application/json (the header is missing)",
            json!([]),
        ),
        "422" => (
            ErrorCode::ValidationFailed,
            "1 field rule was broken; see details",
            json!([{"field": "rate_limit_per_minute", "message": "must be from 1 to 1000000"}]),
        ),
        "500" => (
            ErrorCode::InternalError,
            ErrorCode::InternalError.default_message(),
            json!([]),
        ),
        "503" => (
            ErrorCode::ServiceUnavailable,
            ErrorCode::ServiceUnavailable.default_message(),
            json!([]),
        ),
        _ => return None,
    };
    Some(error_example(code, message, details))
}

fn add_error_examples(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for operations in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in operations.values_mut() {
            let statuses: Vec<String> = operation["responses"]
                .as_object()
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default();
            for status in statuses {
                let has_body = operation["responses"][&status]["content"].is_object();
                if let (true, Some(example)) = (has_body, example_for(&status)) {
                    set_example(operation, &status, example);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        serde_json::from_str(&document()).unwrap()
    }

    #[test]
    fn the_committed_document_matches_the_code() {
        let committed = include_str!("../../../../openapi/admin.json");
        assert!(
            committed == document(),
            "openapi/admin.json is stale: run `cargo run -q -- openapi --admin > openapi/admin.json`"
        );
    }

    #[test]
    fn it_holds_the_operator_api_and_the_probes_and_nothing_else() {
        let doc = doc();
        let mut paths: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                "/admin/v1/keys/{key_id}/revoke",
                "/admin/v1/keys/{key_id}/roll",
                "/admin/v1/keys/{key_id}/usage",
                "/admin/v1/users",
                "/admin/v1/users/{user_id}/keys",
                "/admin/v1/users/{user_id}/usage",
                "/healthz",
                "/metrics",
                "/readyz",
            ]
        );
        let admin_op = &doc["paths"]["/admin/v1/users"]["post"];
        assert_eq!(admin_op["security"], json!([{"AdminToken": []}]));
        let scheme = &doc["components"]["securitySchemes"]["AdminToken"];
        assert_eq!(
            (scheme["type"].as_str(), scheme["scheme"].as_str()),
            (Some("http"), Some("bearer"))
        );
        assert!(doc["components"]["securitySchemes"]["ApiKeyAuth"].is_null());
    }

    #[test]
    fn every_error_status_has_an_example_and_times_are_date_times() {
        let doc = doc();
        for (path, operations) in doc["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if status.starts_with(['4', '5']) {
                        assert!(
                            response["content"]["application/json"]["example"].is_object(),
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
        let key = &doc["components"]["schemas"]["AdminKey"]["properties"];
        assert_eq!(key["created_at"]["format"], "date-time");
        assert_eq!(key["status"]["$ref"], "#/components/schemas/AdminKeyStatus");
        assert_eq!(
            ciq_http::openapi::generator_hazards(&doc),
            Vec::<String>::new()
        );
    }

    #[test]
    fn every_error_code_is_answered_with_its_status() {
        ciq_http::error::assert_variants_match_table::<
            super::super::api::AdminResponse<super::super::api::KeyList>,
        >(&[ErrorCode::ServiceUnavailable]);
    }
}
