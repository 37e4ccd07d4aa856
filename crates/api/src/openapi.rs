//! The OpenAPI document: generated from the code's types and doc comments, then
//! given the reference's examples for the request and for every response status.

use poem::Endpoint;
use poem_openapi::OpenApiService;
use serde_json::{Value, json};

use crate::admin::AdminApi;
use crate::health::HealthApi;
use crate::leads::LeadsApi;

/// The services the document describes.
pub type Service = OpenApiService<(LeadsApi, HealthApi, AdminApi), ()>;

const DESCRIPTION: &str = "Programmatically create and manage leads in your ConvertIQ account using our REST API.\n\n\
**Authentication.** All API requests must include your API key in the `X-API-Key` header \
(`X-API-Key: ciq_your_api_key_here`). Go to Settings → API Key to generate your key.\n\n\
**Rate limiting.** 100 requests per minute per API key, as a sliding window. Every \
authenticated response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining`, \
`X-RateLimit-Reset`, `RateLimit-Policy` and `RateLimit`; a 429 also carries `Retry-After`.\n\n\
**Errors.** Every error is JSON: `{\"success\": false, \"error\": {\"code\", \"message\", \"details\": [{\"field\", \"message\"}]}}`.";

/// The poem-openapi service (routes and generated document).
pub fn service() -> Service {
    OpenApiService::new(
        (LeadsApi, HealthApi, AdminApi),
        "ConvertIQ External API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION)
}

/// The full document as served at `/openapi.json` and printed by `ciq-gateway openapi`.
pub fn document() -> String {
    let mut doc: Value =
        serde_json::from_str(&service().spec()).expect("poem-openapi emits valid JSON");
    add_examples(&mut doc);
    mark_optional_properties_nullable(&mut doc);
    document_operator_rules(&mut doc);
    serde_json::to_string_pretty(&doc).expect("a JSON value serialises") + "\n"
}

/// Swagger UI showing `document` (which Authorize and Try it out use against the
/// server that serves it).
pub fn swagger_ui(service: &Service, document: &str) -> impl Endpoint + use<> {
    let html = service.swagger_ui_html().replace(&service.spec(), document);
    poem::endpoint::make_sync(move |_| poem::web::Html(html.clone()))
}

fn error_example(code: &str, message: &str, details: Value) -> Value {
    json!({"success": false, "error": {"code": code, "message": message, "details": details}})
}

/// Rules the operator API checks itself (to answer 422 naming the field, not a
/// parser's 400), stated in the document too.
fn document_operator_rules(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    let password = &mut schemas["CreateUserRequest"]["properties"]["password"];
    password["minLength"] = json!(ciq_admin::users::MIN_PASSWORD_LEN);
    let limit = &mut schemas["CreateKeyRequest"]["properties"]["rate_limit_per_minute"];
    limit["minimum"] = json!(1);
    limit["maximum"] = json!(ciq_admin::keys::MAX_RATE_LIMIT_PER_MINUTE);
    let overlap = &mut schemas["RollKeyRequest"]["properties"]["overlap_seconds"];
    overlap["maximum"] = json!(ciq_admin::keys::MAX_ROLL_OVERLAP_SECS);
}

/// OpenAPI 3.0 needs `nullable: true` where a value may be null: every optional
/// property here is answered as null when absent (and accepted as null).
fn mark_optional_properties_nullable(doc: &mut Value) {
    let Some(schemas) = doc["components"]["schemas"].as_object_mut() else {
        return;
    };
    for schema in schemas.values_mut() {
        let required: Vec<String> = schema["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(properties) = schema["properties"].as_object_mut() {
            for (name, property) in properties.iter_mut() {
                if !required.contains(name) && property.get("$ref").is_none() {
                    property["nullable"] = Value::Bool(true);
                }
            }
        }
    }
}

fn add_examples(doc: &mut Value) {
    // The leads API is what readers come for: list it before the probes.
    if let Some(tags) = doc["tags"].as_array_mut() {
        tags.sort_by_key(|tag| tag["name"] != "Leads");
    }
    let op = &mut doc["paths"]["/api/external/leads/create"]["post"];
    // The handler checks the key itself (to answer 422 in our shape, with rate-limit
    // headers); the document states the same rule.
    if let Some(params) = op["parameters"].as_array_mut() {
        for param in params.iter_mut().filter(|p| p["name"] == "Idempotency-Key") {
            param["schema"]["minLength"] = json!(1);
            param["schema"]["maxLength"] = json!(crate::leads::idempotency::MAX_KEY_LEN);
            param["schema"]["pattern"] = json!("^[!-~]+$");
        }
    }
    let request_media = &mut op["requestBody"]["content"]["application/json"];
    assert!(
        request_media.is_object(),
        "the request body is documented as JSON"
    );
    request_media["examples"] = json!({
        "full": {
            "summary": "Request Body (every field)",
            "value": {"lead": {
                "name": "Jane Doe", "email": "jane@example.com", "phone": "15551234567",
                "source": "Website Form", "industry": "Technology", "score": 7,
                "status": "contacted", "monthly_revenue": 50000, "budget": 10000,
                "description": "Interested in AI calling"}}
        },
        "minimal": {
            "summary": "cURL Example (required fields and phone)",
            "value": {"lead": {
                "name": "Jane Doe", "email": "jane@example.com", "phone": "15551234567",
                "source": "API", "industry": "Technology"}}
        }
    });
    let examples = [
        (
            "201",
            json!({"success": true, "lead": {
            "id": "0199a3c2-7a1e-7cc0-9a57-5d8e6f1b2c3d",
            "user_id": "0199a3c0-11aa-7b2e-8f00-1c2d3e4f5a6b",
            "name": "Jane Doe", "email": "jane@example.com", "phone": "15551234567",
            "source": "Website Form", "industry": "Technology", "score": 7,
            "status": "contacted", "monthly_revenue": 50000, "budget": 10000,
            "description": "Interested in AI calling",
            "created_at": "2025-08-13T00:00:00.000Z"}}),
        ),
        (
            "400",
            error_example(
                "invalid_json",
                "the request body is not valid JSON: expected value at line 1 column 1",
                json!([]),
            ),
        ),
        (
            "401",
            error_example(
                "missing_api_key",
                "Send your API key in the X-API-Key header (Settings → API Key generates one)",
                json!([]),
            ),
        ),
        (
            "413",
            error_example(
                "payload_too_large",
                "the request body must be at most 65536 bytes",
                json!([]),
            ),
        ),
        (
            "415",
            error_example(
                "unsupported_media_type",
                "Content-Type must be application/json, not \"text/plain\"",
                json!([]),
            ),
        ),
        (
            "422",
            error_example(
                "validation_failed",
                "2 field rules were broken; see details",
                json!([
                    {"field": "lead.email", "message": "must be a valid email address"},
                    {"field": "lead.phone", "message": "must be 8 to 15 digits in E.164 format without + (e.g. 15551234567); spaces, dashes, dots and parentheses are removed"}
                ]),
            ),
        ),
        (
            "429",
            error_example(
                "rate_limited",
                "rate limit of 100 requests per 60 seconds exceeded; retry in 12 s",
                json!([]),
            ),
        ),
        (
            "503",
            error_example(
                "service_unavailable",
                "the lead store is temporarily unavailable; retry shortly",
                json!([]),
            ),
        ),
    ];
    for (status, example) in examples {
        let response = &mut op["responses"][status];
        let media = response["content"]
            .as_object_mut()
            .and_then(|content| content.values_mut().next())
            .unwrap_or_else(|| panic!("status {status} is documented with a JSON body"));
        media["example"] = example;
        canonical_header_names(response);
    }
}

/// poem-openapi upper-cases extra response headers; show them as clients see them.
fn canonical_header_names(response: &mut Value) {
    const NAMES: [&str; 7] = [
        "Idempotent-Replayed",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "RateLimit-Policy",
        "RateLimit",
        "Retry-After",
    ];
    if let Some(headers) = response["headers"].as_object_mut() {
        let renamed = std::mem::take(headers)
            .into_iter()
            .map(|(name, header)| {
                let canonical = NAMES
                    .iter()
                    .find(|n| n.eq_ignore_ascii_case(&name))
                    .map_or(name, |n| (*n).to_owned());
                (canonical, header)
            })
            .collect();
        *headers = renamed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leads::input;

    fn doc() -> Value {
        serde_json::from_str(&document()).unwrap()
    }

    #[test]
    fn the_committed_document_matches_the_code() {
        let committed = include_str!("../../../openapi/openapi.json");
        assert!(
            committed == document(),
            "openapi/openapi.json is stale: run `cargo run -q -- openapi > openapi/openapi.json`"
        );
    }

    #[test]
    fn every_status_of_the_error_table_is_documented_with_an_example() {
        let doc = doc();
        let responses = &doc["paths"]["/api/external/leads/create"]["post"]["responses"];
        for status in ["201", "400", "401", "413", "415", "422", "429", "503"] {
            let content = responses[status]["content"].as_object().unwrap();
            assert_eq!(content.len(), 1, "{status}");
            assert!(
                content.values().next().unwrap()["example"].is_object(),
                "{status}"
            );
        }
        assert!(responses["429"]["headers"]["Retry-After"].is_object());
        assert!(responses["201"]["headers"]["X-RateLimit-Remaining"].is_object());
    }

    #[test]
    fn the_api_key_scheme_is_a_header_named_x_api_key() {
        let doc = doc();
        let schemes = &doc["components"]["securitySchemes"];
        let scheme = &schemes["ApiKeyAuth"];
        assert_eq!(scheme["type"], "apiKey");
        assert_eq!(scheme["in"], "header");
        assert_eq!(scheme["name"], "X-API-Key");
        let admin = &schemes["AdminToken"];
        assert_eq!(
            (admin["type"].as_str(), admin["scheme"].as_str()),
            (Some("http"), Some("bearer"))
        );
        let create = &doc["paths"]["/api/external/leads/create"]["post"]["security"];
        assert_eq!(create, &serde_json::json!([{"ApiKeyAuth": []}]));
        let admin_op = &doc["paths"]["/admin/v1/users"]["post"];
        assert_eq!(
            admin_op["security"],
            serde_json::json!([{"AdminToken": []}])
        );
        assert_eq!(admin_op["tags"], serde_json::json!(["Admin"]));
    }

    #[test]
    fn documented_limits_are_the_enforced_ones() {
        let doc = doc();
        let props = &doc["components"]["schemas"]["LeadInput"]["properties"];
        assert_eq!(props["name"]["maxLength"], input::MAX_NAME_LEN);
        assert_eq!(props["source"]["maxLength"], input::MAX_SOURCE_LEN);
        assert_eq!(props["industry"]["maxLength"], input::MAX_INDUSTRY_LEN);
        assert_eq!(
            props["description"]["maxLength"],
            input::MAX_DESCRIPTION_LEN
        );
        assert_eq!(props["email"]["maxLength"], ciq_admin::email::MAX_EMAIL_LEN);
        assert_eq!(
            props["score"]["minimum"].as_f64(),
            Some(*input::SCORE_RANGE.start() as f64)
        );
        assert_eq!(
            props["score"]["maximum"].as_f64(),
            Some(*input::SCORE_RANGE.end() as f64)
        );
        let required: Vec<&str> = doc["components"]["schemas"]["LeadInput"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(required, ["name", "email", "source", "industry"]);
    }
}
