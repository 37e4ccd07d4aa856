//! The public OpenAPI document (`/openapi.json`, `/docs`, `openapi/openapi.json`):
//! integrators' operations only, generated from the code's types and doc comments,
//! then given the reference's examples for the request and for every response
//! status, and the field rules that `ciq_leads::rules` enforces.

use poem::Endpoint;
use poem_openapi::OpenApiService;
use serde_json::{Value, json};

use ciq_http::ErrorCode;
use ciq_http::openapi::{drop_headers, error_example, set_example};
use ciq_leads::rules;

use crate::leads::LeadsApi;
use crate::leads::batch::BatchLeadsApi;
use crate::leads::manage::ManageLeadsApi;
use crate::leads::upsert::UpsertLeadApi;

/// The services the document describes.
pub type Service = OpenApiService<
    (
        LeadsApi,
        BatchLeadsApi,
        UpsertLeadApi,
        ManageLeadsApi,
        crate::me::MeApi,
        crate::usage::UsageApi,
        crate::webhooks::WebhooksApi,
    ),
    (),
>;

/// Title of the public document.
pub const TITLE: &str = "ConvertIQ External API";

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
        (
            LeadsApi,
            BatchLeadsApi,
            UpsertLeadApi,
            ManageLeadsApi,
            crate::me::MeApi,
            crate::usage::UsageApi,
            crate::webhooks::WebhooksApi,
        ),
        TITLE,
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION)
}

/// The document as served at `/openapi.json` and printed by `ciq-gateway openapi`.
pub fn document() -> String {
    ciq_http::openapi::build(&service().spec(), |doc| {
        add_examples(doc);
        add_manage_examples(doc);
        state_lead_rules(doc);
        type_parameters(doc);
        add_links(doc);
    })
}

/// Swagger UI showing `document` (which Authorize and Try it out use against the
/// server that serves it).
pub fn swagger_ui(service: &Service, document: &str) -> impl Endpoint + use<> {
    let html = service.swagger_ui_html().replace(&service.spec(), document);
    poem::endpoint::make_sync(move |_| poem::web::Html(html.clone()))
}

fn example_lead() -> Value {
    json!({
        "id": "0199a3c2-7a1e-7cc0-9a57-5d8e6f1b2c3d",
        "user_id": "0199a3c0-11aa-7b2e-8f00-1c2d3e4f5a6b",
        "name": "Jane Doe", "email": "jane@example.com", "phone": "15551234567",
        "source": "Website Form", "industry": "Technology", "score": 7,
        "status": "contacted", "monthly_revenue": 50000, "budget": 10000,
        "description": "Interested in AI calling",
        "created_at": "2025-08-13T00:00:00.000Z", "updated_at": "2025-08-13T00:00:00.000Z",
        "external_id": "crm-4711", "api_key_id": "0199a3c1-5b2c-7d3e-8f40-2a3b4c5d6e7f"})
}

/// The example of an error status every lead operation shares (`scope`: the one a 403
/// names); `None` for a status without one.
fn error_for(status: &str, scope: &str) -> Option<Value> {
    let (code, message, details) = match status {
        "401" => (
            ErrorCode::MissingApiKey,
            ErrorCode::MissingApiKey.default_message().to_owned(),
            json!([]),
        ),
        "403" => (
            ErrorCode::InsufficientScope,
            format!("this operation needs an API key with the {scope} scope"),
            json!([]),
        ),
        "404" => (
            ErrorCode::LeadNotFound,
            ErrorCode::LeadNotFound.default_message().to_owned(),
            json!([]),
        ),
        "422" => (
            ErrorCode::ValidationFailed,
            "1 field rule was broken; see details".to_owned(),
            json!([{"field": "limit", "message": "must be a whole number from 1 to 200"}]),
        ),
        "400" => (
            ErrorCode::InvalidJson,
            "the request body is not valid JSON: expected value at line 1 column 1".to_owned(),
            json!([]),
        ),
        "409" => {
            return Some(json!({"success": false, "error": {
                "code": "duplicate_lead",
                "message": ErrorCode::DuplicateLead.default_message(),
                "details": [],
                "lead_id": "0199a3c2-7a1e-7cc0-9a57-5d8e6f1b2c3d"}}));
        }
        "413" => (
            ErrorCode::PayloadTooLarge,
            "the request body must be at most 65536 bytes".to_owned(),
            json!([]),
        ),
        "415" => (
            ErrorCode::UnsupportedMediaType,
            "Content-Type must be application/json (the header is missing)".to_owned(),
            json!([]),
        ),
        "429" => (
            ErrorCode::RateLimited,
            "rate limit of 100 requests per 60 seconds exceeded; retry in 12 s".to_owned(),
            json!([]),
        ),
        "500" => (
            ErrorCode::InternalError,
            ErrorCode::InternalError.default_message().to_owned(),
            json!([]),
        ),
        "503" => (
            ErrorCode::ServiceUnavailable,
            ErrorCode::ServiceUnavailable.default_message().to_owned(),
            json!([]),
        ),
        _ => return None,
    };
    Some(error_example(code, &message, details))
}

/// An endpoint as the webhook operations show it.
fn example_webhook() -> Value {
    json!({"id": "0199a3c2-7a1e-7cc0-9a57-5d8e6f1b2c40",
        "url": "https://hooks.zapier.com/hooks/standard/123/abc/",
        "events": ["lead.created"], "filter": {"score": {"gte": 5}, "source": {"eq": "website form"}},
        "enabled": true, "disabled_reason": null, "description": "Zapier: new qualified leads",
        "created_at": "2025-08-13T00:00:00.000Z"})
}

/// OpenAPI links: from an answer that holds a lead or an endpoint to the operations on
/// its id, so clients (and schemathesis' stateful phase) can follow them.
fn add_links(doc: &mut Value) {
    let follow = |prefix: &str, operations: [(&str, &str); 3], id: &str| {
        let mut links = serde_json::Map::new();
        for (name, operation) in operations {
            links.insert(
                format!("{prefix}{name}"),
                json!({"operationId": operation, "parameters": {"id": id}}),
            );
        }
        Value::Object(links)
    };
    let lead_ops = [
        ("Get", "getLead"),
        ("Update", "updateLead"),
        ("Delete", "deleteLead"),
    ];
    let hook_ops = [
        ("Get", "getWebhook"),
        ("Update", "updateWebhook"),
        ("Delete", "deleteWebhook"),
    ];
    for (path, method, status, prefix, ops, id) in [
        (
            "/api/external/leads/create",
            "post",
            "201",
            "Lead",
            lead_ops,
            "$response.body#/lead/id",
        ),
        (
            "/api/external/webhooks",
            "post",
            "201",
            "Webhook",
            hook_ops,
            "$response.body#/webhook/id",
        ),
        (
            "/api/external/webhooks",
            "post",
            "200",
            "Webhook",
            hook_ops,
            "$response.body#/webhook/id",
        ),
    ] {
        let response = &mut doc["paths"][path][method]["responses"][status];
        if response.is_object() {
            response["links"] = follow(prefix, ops, id);
        }
    }
}

/// What only the webhook operations answer that way: a new endpoint with its secret,
/// their own 404, 409 and 422.
fn add_webhook_examples(doc: &mut Value) {
    let subscribe = &mut doc["paths"]["/api/external/webhooks"]["post"];
    set_example(
        subscribe,
        "201",
        json!({"success": true, "webhook": example_webhook(),
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
    );
    set_example(
        subscribe,
        "409",
        error_example(
            ErrorCode::TooManyWebhooks,
            ErrorCode::TooManyWebhooks.default_message(),
            json!([]),
        ),
    );
    set_example(
        subscribe,
        "422",
        error_example(
            ErrorCode::ValidationFailed,
            "1 field rule was broken; see details",
            json!([{"field": "filter.score.gte", "message": "must be a number"}]),
        ),
    );
    for (path, method) in [
        ("/api/external/webhooks/{id}", "get"),
        ("/api/external/webhooks/{id}", "patch"),
        ("/api/external/webhooks/{id}", "delete"),
    ] {
        set_example(
            &mut doc["paths"][path][method],
            "404",
            error_example(
                ErrorCode::WebhookNotFound,
                ErrorCode::WebhookNotFound.default_message(),
                json!([]),
            ),
        );
    }
}

/// Examples for every status of the reading and erasing operations.
fn add_manage_examples(doc: &mut Value) {
    let operations = [
        (
            "/api/external/leads/batch",
            "post",
            "leads:create",
            Some(
                json!({"success": true, "created": 1, "failed": 2, "results": [
                    {"index": 0, "status": 201, "lead": example_lead()},
                    {"index": 1, "status": 422, "error": {"code": "validation_failed",
                        "message": "1 field rule was broken; see details",
                        "details": [{"field": "leads[1].email", "message": "must be a valid email address"}]}},
                    {"index": 2, "status": 409, "error": {"code": "duplicate_lead",
                        "message": ErrorCode::DuplicateLead.default_message(), "details": [],
                        "lead_id": "0199a3c2-7a1e-7cc0-9a57-5d8e6f1b2c3d"}}
                ]}),
            ),
        ),
        (
            "/api/external/leads/upsert",
            "post",
            "leads:write",
            Some(json!({"success": true, "created": false, "lead": example_lead()})),
        ),
        (
            "/api/external/leads",
            "get",
            "leads:read",
            Some(
                json!({"success": true, "leads": [example_lead()], "next_cursor": "MTc1NTA0MzIwMDAwMC4wMTk5YTNjMi03YTFl"}),
            ),
        ),
        (
            "/api/external/leads/{id}",
            "get",
            "leads:read",
            Some(json!({"success": true, "lead": example_lead()})),
        ),
        (
            "/api/external/leads/{id}",
            "patch",
            "leads:write",
            Some(json!({"success": true, "lead": example_lead()})),
        ),
        ("/api/external/leads/{id}", "delete", "leads:write", None),
        (
            "/api/external/webhooks",
            "post",
            "webhooks:manage",
            Some(json!({"success": true, "webhook": example_webhook()})),
        ),
        (
            "/api/external/webhooks",
            "get",
            "webhooks:manage",
            Some(json!({"success": true, "webhooks": [example_webhook()]})),
        ),
        (
            "/api/external/webhooks/{id}",
            "get",
            "webhooks:manage",
            Some(json!({"success": true, "webhook": example_webhook()})),
        ),
        (
            "/api/external/webhooks/{id}",
            "patch",
            "webhooks:manage",
            Some(json!({"success": true, "webhook": example_webhook()})),
        ),
        (
            "/api/external/webhooks/{id}",
            "delete",
            "webhooks:manage",
            None,
        ),
        (
            "/api/external/me",
            "get",
            "leads:create",
            Some(json!({"success": true,
                "key": {"id": "0199a3c2-7a1e-7cc0-9a57-5d8e6f1b2c3e", "name": "CRM sync",
                    "display_prefix": "ciq_1JcSApuT", "scopes": ["leads:create", "leads:read"],
                    "allowed_origins": [], "rate_limit": 100, "visitor_rate_limit": null,
                    "expires_at": null, "created_at": "2025-08-13T00:00:00.000Z"},
                "account": {"id": "0199a3c2-7a1e-7cc0-9a57-5d8e6f1b2c3f", "name": "Acme",
                    "email": "owner@acme.example"},
                "rate_limit": {"limit": 100, "remaining": 97, "reset": 1755043260}})),
        ),
        (
            "/api/external/usage",
            "get",
            "leads:create",
            Some(json!({"success": true, "interval": "hour",
                "from": "2025-08-12T10:30:00.000Z", "to": "2025-08-13T10:30:00.000Z",
                "usage": [{"start": "2025-08-13T09:00:00.000Z", "success": 41,
                    "client_error": 3, "rate_limited": 2, "server_error": 0,
                    "leads_created": 57, "spam": 1, "dropped": 0}]})),
        ),
        (
            "/api/external/requests",
            "get",
            "leads:create",
            Some(json!({"success": true,
                "requests": [{"at": "2025-08-13T09:41:07.215Z", "method": "POST",
                    "path": "/api/external/leads/create", "status": 422,
                    "code": "validation_failed", "field": "lead.email",
                    "message": "must be a valid email address",
                    "request_id": "0199a3c2-7a1e-7cc0-9a57-5d8e6f1b2c40",
                    "client": "203.0.113.0/24", "origin": null, "user_agent": "Zapier"}],
                "next_cursor": "0199a3c2-7a1e-7cc0-9a57-5d8e6f1b2c40"})),
        ),
    ];
    for (path, method, scope, ok) in operations {
        let op = &mut doc["paths"][path][method];
        let statuses: Vec<String> = op["responses"]
            .as_object()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        for status in statuses {
            let example = if status == "200" {
                ok.clone()
            } else {
                error_for(&status, scope)
            };
            if let Some(example) = example {
                set_example(op, &status, example);
            }
        }
        drop_headers(
            op,
            &["401"],
            &[
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "RateLimit-Policy",
                "RateLimit",
            ],
        );
    }
    add_webhook_examples(doc);
    set_example(
        &mut doc["paths"]["/api/external/me"]["get"],
        "403",
        error_example(
            ErrorCode::InsufficientScope,
            "this key has allowed origins: it is public (it sits in a web page), so it cannot \
             read its own details; call with a server key",
            json!([]),
        ),
    );
    for (path, what, field, rule) in [
        (
            "/api/external/usage",
            "read its usage",
            "from",
            "must be before to",
        ),
        (
            "/api/external/requests",
            "read its request log",
            "status",
            "must be a status from 400 to 599, 4xx or 5xx (the log holds answers that were not 2xx)",
        ),
    ] {
        let op = &mut doc["paths"][path]["get"];
        set_example(
            op,
            "403",
            error_example(
                ErrorCode::InsufficientScope,
                &format!(
                    "this key has allowed origins: it is public (it sits in a web page), so \
                     it cannot {what}; call with a server key"
                ),
                json!([]),
            ),
        );
        set_example(
            op,
            "422",
            error_example(
                ErrorCode::ValidationFailed,
                "1 field rule was broken; see details",
                json!([{"field": field, "message": rule}]),
            ),
        );
    }
    let upsert = &mut doc["paths"]["/api/external/leads/upsert"]["post"];
    set_example(
        upsert,
        "201",
        json!({"success": true, "created": true, "lead": example_lead()}),
    );
    set_example(
        upsert,
        "409",
        error_example(
            ErrorCode::IdempotencyKeyInUse,
            ErrorCode::IdempotencyKeyInUse.default_message(),
            json!([]),
        ),
    );
    set_example(
        upsert,
        "422",
        error_example(
            ErrorCode::ValidationFailed,
            "1 field rule was broken; see details",
            json!([{"field": "lead.external_id", "message": "is required: an upsert finds the lead by it"}]),
        ),
    );
    set_example(
        upsert,
        "410",
        error_example(
            ErrorCode::LeadDeleted,
            ErrorCode::LeadDeleted.default_message(),
            json!([]),
        ),
    );
    drop_headers(
        upsert,
        &[
            "400", "401", "403", "409", "410", "413", "415", "422", "429", "500", "503", "default",
        ],
        &["Idempotent-Replayed"],
    );
    // What only a batch answers that way.
    let batch = &mut doc["paths"]["/api/external/leads/batch"]["post"];
    set_example(
        batch,
        "409",
        error_example(
            ErrorCode::IdempotencyKeyInUse,
            ErrorCode::IdempotencyKeyInUse.default_message(),
            json!([]),
        ),
    );
    set_example(
        batch,
        "413",
        error_example(
            ErrorCode::PayloadTooLarge,
            &format!(
                "the request body must be at most {} bytes",
                crate::leads::batch::batch_body_limit(crate::state::DEFAULT_MAX_BODY_BYTES)
            ),
            json!([]),
        ),
    );
    set_example(
        batch,
        "422",
        error_example(
            ErrorCode::ValidationFailed,
            "1 field rule was broken; see details",
            json!([{"field": "leads", "message": "must be an array of 1 to 100 leads (101 given)"}]),
        ),
    );
    drop_headers(
        batch,
        &[
            "400", "401", "403", "409", "413", "415", "422", "429", "500", "503", "default",
        ],
        &["Idempotent-Replayed"],
    );
}

/// The lead rules, from the table the validator reads: lengths, the score range, what
/// text may hold (patterns), what an update may not clear, and the upsert's required
/// `external_id` (its body gets a schema of its own saying so). The money fields' "at
/// most 2 decimal places" stays in words: `multipleOf: 0.01` is not exact in binary
/// floating point, so validators would refuse amounts the API takes.
fn state_lead_rules(doc: &mut Value) {
    use ciq_http::openapi::{
        multi_line_pattern, required_single_line_pattern, single_line_pattern,
        trimmed_or_blank_pattern,
    };
    let schemas = &mut doc["components"]["schemas"];
    for object in ["LeadInput", "LeadChanges"] {
        let props = &mut schemas[object]["properties"];
        for (field, max) in rules::MAX_LENGTHS {
            props[field]["maxLength"] = json!(max);
        }
        for field in ["name", "source", "industry"] {
            props[field]["minLength"] = json!(1);
            props[field]["pattern"] = json!(required_single_line_pattern());
        }
        props["email"]["format"] = json!("email");
        props["phone"]["pattern"] = json!(trimmed_or_blank_pattern(&rules::phone_pattern()));
        props["description"]["pattern"] = json!(multi_line_pattern());
        props["external_id"]["pattern"] = json!(single_line_pattern());
        props["score"]["minimum"] = json!(*rules::SCORE_RANGE.start());
        props["score"]["maximum"] = json!(*rules::SCORE_RANGE.end());
        schemas[object]["additionalProperties"] = json!(false);
    }
    // Attribution and consent: their lengths and rules, from the domain's lists; an
    // update carries neither (they are set when the lead is created).
    let attribution = &mut schemas["AttributionFields"];
    for (field, max) in ciq_leads::Attribution::FIELDS {
        let prop = &mut attribution["properties"][field];
        prop["maxLength"] = json!(max);
        prop["pattern"] = json!(if *max == ciq_leads::attribution::MAX_URL_LEN {
            ciq_http::openapi::web_url_pattern()
        } else {
            single_line_pattern()
        });
    }
    attribution["additionalProperties"] = json!(false);
    let consent = &mut schemas["ConsentInput"];
    consent["properties"]["text"]["maxLength"] =
        json!(ciq_leads::attribution::MAX_CONSENT_TEXT_LEN);
    consent["properties"]["text"]["minLength"] = json!(1);
    consent["properties"]["text"]["pattern"] = json!(required_single_line_pattern());
    consent["additionalProperties"] = json!(false);
    if let Some(props) = schemas["LeadChanges"]["properties"].as_object_mut() {
        props.remove(ciq_leads::attribution::ATTRIBUTION);
        props.remove(ciq_leads::attribution::CONSENT);
    }
    // An update may change a required field, never empty it.
    let changes = &mut schemas["LeadChanges"]["properties"];
    for field in ["name", "email", "source", "industry", "status"] {
        if let Some(field) = changes[field].as_object_mut() {
            field.remove("nullable");
        }
    }
    // The upsert's body: a create's, with `external_id` required and not blank.
    let mut upsert_lead = schemas["LeadInput"].clone();
    upsert_lead["title"] = json!("UpsertLeadInput");
    upsert_lead["description"] = json!(
        "A lead as an upsert submits it: a create's fields and rules, with `external_id` \
         required (the upsert finds the lead by it)."
    );
    upsert_lead["required"]
        .as_array_mut()
        .expect("LeadInput has required fields")
        .push(json!("external_id"));
    let external_id = &mut upsert_lead["properties"]["external_id"];
    if let Some(field) = external_id.as_object_mut() {
        field.remove("nullable");
    }
    external_id["minLength"] = json!(1);
    external_id["pattern"] = json!(required_single_line_pattern());
    schemas["UpsertLeadInput"] = upsert_lead;
    schemas["UpsertLeadRequest"] = json!({
        "type": "object",
        "title": "UpsertLeadRequest",
        "description": "Body of an upsert.",
        "required": ["lead"],
        "properties": {"lead": {"$ref": "#/components/schemas/UpsertLeadInput"}},
        "additionalProperties": false,
    });
    for request in ["CreateLeadRequest", "PatchLeadRequest", "BatchLeadsRequest"] {
        schemas[request]["additionalProperties"] = json!(false);
    }
    doc["paths"]["/api/external/leads/upsert"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["$ref"] = json!("#/components/schemas/UpsertLeadRequest");
    state_webhook_rules(doc);
}

/// The webhook bodies' rules: the filter's fields and operators from the one list the
/// filter reads, the event names, the description's length and text.
fn state_webhook_rules(doc: &mut Value) {
    use ciq_http::openapi::{required_single_line_pattern, single_line_pattern};
    use ciq_webhooks::filter::{FIELDS, MAX_IN_VALUES, MAX_TEXT_LEN, is_number_field};
    let text = json!({"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LEN,
        "pattern": required_single_line_pattern()});
    let number = json!({"type": "number"});
    let mut fields = serde_json::Map::new();
    for (field, _) in FIELDS {
        let numeric = is_number_field(field) == Some(true);
        let value = if numeric {
            number.clone()
        } else {
            text.clone()
        };
        let mut ops = serde_json::Map::new();
        ops.insert("eq".into(), value.clone());
        ops.insert(
            "in".into(),
            json!({"type": "array", "minItems": 1, "maxItems": MAX_IN_VALUES, "items": value}),
        );
        if numeric {
            ops.insert("gte".into(), number.clone());
            ops.insert("lte".into(), number.clone());
        }
        ops.insert("exists".into(), json!({"type": "boolean"}));
        fields.insert(
            (*field).to_owned(),
            json!({"type": "object", "minProperties": 1, "additionalProperties": false,
                "properties": ops}),
        );
    }
    let events = json!({"type": "array", "items": {"type": "string",
        "enum": ciq_leads::events::NAMES}});
    let schemas = &mut doc["components"]["schemas"];
    for (object, events_min) in [("SubscribeRequest", 0), ("WebhookChanges", 1)] {
        let props = &mut schemas[object]["properties"];
        let description = props["filter"]["description"].clone();
        props["filter"] = json!({"type": "object", "nullable": true,
            "additionalProperties": false, "properties": fields.clone(),
            "description": description});
        let description = props["events"]["description"].clone();
        let mut list = events.clone();
        list["minItems"] = json!(events_min);
        list["nullable"] = json!(true);
        list["description"] = description;
        props["events"] = list;
        props["description"]["maxLength"] = json!(crate::webhooks::MAX_DESCRIPTION_LEN);
        props["description"]["pattern"] = json!(single_line_pattern());
        schemas[object]["additionalProperties"] = json!(false);
    }
}

/// Parameters as what they are. The handlers read them as text and check them
/// themselves (to answer 422 naming the parameter, in our shape, with the rate-limit
/// headers; a malformed lead id is 404 `lead_not_found`); the document states the
/// types and rules those checks enforce, so generated clients get an integer `limit`, the
/// status enum, times and UUIDs.
fn type_parameters(doc: &mut Value) {
    use crate::leads::manage::{DEFAULT_PAGE, MAX_PAGE};
    let time = json!({"type": "string", "format": "date-time"});
    // Parameters whose name another operation uses with other rules: set after the
    // shared ones below.
    let own = [
        (
            "/api/external/requests",
            "limit",
            json!({"type": "integer", "format": "int32", "minimum": 1,
                "maximum": ciq_usage::query::MAX_LOG_PAGE,
                "default": ciq_usage::query::DEFAULT_LOG_PAGE}),
        ),
        (
            "/api/external/requests",
            "status",
            json!({"type": "string", "pattern": "^([45][0-9]{2}|[45]xx|[45]XX)?$"}),
        ),
        (
            "/api/external/requests",
            "cursor",
            json!({"type": "string", "format": "uuid"}),
        ),
    ];
    let typed = [
        (
            "Idempotency-Key",
            json!({"type": "string", "minLength": 1,
                "maxLength": ciq_leads::idempotency::MAX_KEY_LEN, "pattern": "^[!-~]+$"}),
        ),
        (
            "limit",
            json!({"type": "integer", "format": "int32", "minimum": 1, "maximum": MAX_PAGE,
                "default": DEFAULT_PAGE}),
        ),
        ("status", json!({"$ref": "#/components/schemas/LeadStatus"})),
        ("spam", json!({"type": "boolean", "default": false})),
        ("created_after", time.clone()),
        ("created_before", time),
        ("id", json!({"type": "string", "format": "uuid"})),
        // Text filters refuse control characters (422 naming the parameter).
        (
            "source",
            json!({"type": "string", "pattern": ciq_http::openapi::single_line_pattern()}),
        ),
        (
            "email",
            json!({"type": "string", "pattern": ciq_http::openapi::single_line_pattern()}),
        ),
        (
            "external_id",
            json!({"type": "string", "pattern": ciq_http::openapi::single_line_pattern()}),
        ),
        (
            "utm_source",
            json!({"type": "string", "pattern": ciq_http::openapi::single_line_pattern()}),
        ),
        (
            "utm_campaign",
            json!({"type": "string", "pattern": ciq_http::openapi::single_line_pattern()}),
        ),
    ];
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for operation in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in operation.values_mut() {
            // Looked up, not indexed: indexing would add `"parameters": null` to an
            // operation without any, which validators refuse.
            let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                continue;
            };
            for param in params.iter_mut() {
                if let Some((_, schema)) = typed.iter().find(|(name, _)| param["name"] == *name) {
                    param["schema"] = schema.clone();
                }
            }
            // Only a query can break a rule of its own: an operation without one
            // answers no 422 about its parameters (getLead had one documented).
            let has_query = params.iter().any(|p| p["in"] == "query");
            let has_body = op.get("requestBody").is_some();
            if !has_query
                && !has_body
                && let Some(responses) = op["responses"].as_object_mut()
            {
                responses.remove("422");
            }
        }
    }
    ciq_admin::usage::document_window_parameters(doc, ciq_http::routes::USAGE);
    for (path, name, schema) in own {
        if let Some(params) = doc["paths"][path]["get"]["parameters"].as_array_mut() {
            for param in params.iter_mut().filter(|p| p["name"] == name) {
                param["schema"] = schema.clone();
            }
        }
    }
}

fn add_examples(doc: &mut Value) {
    let op = &mut doc["paths"]["/api/external/leads/create"]["post"];
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
    let lead = example_lead();
    let examples = [
        ("201", json!({"success": true, "lead": lead})),
        (
            "202",
            json!({"success": true, "queued": true, "lead": lead}),
        ),
        (
            "410",
            error_example(
                ErrorCode::LeadDeleted,
                ErrorCode::LeadDeleted.default_message(),
                json!([]),
            ),
        ),
        (
            "415",
            error_example(
                ErrorCode::UnsupportedMediaType,
                "Content-Type must be application/json, not \"text/plain\"",
                json!([]),
            ),
        ),
        (
            "422",
            error_example(
                ErrorCode::ValidationFailed,
                "2 field rules were broken; see details",
                json!([
                    {"field": "lead.email", "message": "must be a valid email address"},
                    {"field": "lead.phone", "message": "must be 8 to 15 digits in E.164 format without + (e.g. 15551234567); spaces, dashes, dots and parentheses are removed"}
                ]),
            ),
        ),
    ];
    let shared = ["400", "401", "403", "409", "413", "429", "500", "503"].map(|status| {
        let example = error_for(status, "leads:create").expect("every lead error status has one");
        (status, example)
    });
    for (status, example) in examples.into_iter().chain(shared) {
        set_example(op, status, example);
    }
    // Only a queued answer applies the client's preference.
    op["responses"]["202"]["headers"]["Preference-Applied"] = json!({
        "description": "`respond-async`: the client's `Prefer: respond-async` was applied.",
        "required": true,
        "schema": {"type": "string", "enum": ["respond-async"]}
    });
    // A refused key is no authenticated request: no rate-limit state to report. Only a
    // 201 or a 202 can be a replay.
    drop_headers(
        op,
        &["401"],
        &[
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "RateLimit-Policy",
            "RateLimit",
        ],
    );
    drop_headers(
        op,
        &[
            "400", "401", "409", "413", "415", "422", "429", "500", "503", "default",
        ],
        &["Idempotent-Replayed"],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for status in [
            "201", "400", "401", "403", "409", "410", "413", "415", "422", "429", "500", "503",
        ] {
            let content = responses[status]["content"].as_object().unwrap();
            assert_eq!(content.len(), 1, "{status}");
            assert!(
                content["application/json"]["example"].is_object(),
                "{status}"
            );
        }
        assert!(responses["429"]["headers"]["Retry-After"].is_object());
        assert!(responses["503"]["headers"]["Retry-After"].is_object());
        assert!(responses["500"]["headers"]["Retry-After"].is_null());
        assert!(responses["201"]["headers"]["X-RateLimit-Remaining"].is_object());
        assert!(responses["201"]["headers"]["Idempotent-Replayed"].is_object());
        assert!(responses["401"]["headers"]["X-RateLimit-Remaining"].is_null());
        assert!(responses["422"]["headers"]["Idempotent-Replayed"].is_null());
    }

    #[test]
    fn only_integrators_operations_are_in_it() {
        let doc = doc();
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        assert_eq!(
            paths,
            [
                "/api/external/leads/create",
                "/api/external/leads/batch",
                "/api/external/leads/upsert",
                "/api/external/leads",
                "/api/external/leads/{id}",
                "/api/external/me",
                "/api/external/usage",
                "/api/external/requests",
                "/api/external/webhooks",
                "/api/external/webhooks/{id}"
            ]
        );
        for (path, operations) in doc["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    // `default` stands for any other code of the table: no one example.
                    if status == "default" {
                        continue;
                    }
                    if let Some(content) = response["content"].as_object() {
                        assert!(
                            content["application/json"]["example"].is_object(),
                            "{method} {path} {status} has no example"
                        );
                    }
                }
            }
        }
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes.as_object().unwrap().len(), 1);
        let scheme = &schemes["ApiKeyAuth"];
        assert_eq!(scheme["type"], "apiKey");
        assert_eq!(scheme["in"], "header");
        assert_eq!(scheme["name"], "X-API-Key");
        // The directly routed create reads the key from the header the scheme names.
        assert!(
            crate::auth::API_KEY_HEADER
                .as_str()
                .eq_ignore_ascii_case(scheme["name"].as_str().unwrap())
        );
        let create = &doc["paths"]["/api/external/leads/create"]["post"]["security"];
        assert_eq!(create, &serde_json::json!([{"ApiKeyAuth": []}]));
    }

    #[test]
    fn parameters_are_documented_with_the_types_their_checks_enforce() {
        let doc = doc();
        let params = |path: &str, method: &str| doc["paths"][path][method]["parameters"].clone();
        let named = |params: &Value, name: &str| {
            params
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap()["schema"]
                .clone()
        };
        let list = params("/api/external/leads", "get");
        assert_eq!(named(&list, "limit")["type"], "integer");
        assert_eq!(
            named(&list, "limit")["maximum"],
            crate::leads::manage::MAX_PAGE
        );
        assert_eq!(
            named(&list, "status")["$ref"],
            "#/components/schemas/LeadStatus"
        );
        assert_eq!(named(&list, "created_after")["format"], "date-time");
        assert_eq!(named(&list, "spam")["type"], "boolean");
        for method in ["get", "patch", "delete"] {
            let one = params("/api/external/leads/{id}", method);
            assert_eq!(named(&one, "id")["format"], "uuid", "{method}");
        }
        for path in ["create", "batch", "upsert"] {
            let op = params(&format!("/api/external/leads/{path}"), "post");
            assert_eq!(
                named(&op, "Idempotency-Key")["pattern"],
                "^[!-~]+$",
                "{path}"
            );
        }
        let get_lead = &doc["paths"]["/api/external/leads/{id}"]["get"]["responses"];
        assert!(
            get_lead.get("422").is_none(),
            "getLead has no query to break"
        );
    }

    #[test]
    fn documented_limits_are_the_enforced_ones() {
        let doc = doc();
        let props = &doc["components"]["schemas"]["LeadInput"]["properties"];
        for (field, max) in rules::MAX_LENGTHS {
            assert_eq!(props[field]["maxLength"], max, "{field}");
        }
        assert_eq!(props["name"]["maxLength"], rules::MAX_NAME_LEN);
        assert_eq!(
            props["score"]["minimum"].as_i64(),
            Some(*rules::SCORE_RANGE.start())
        );
        assert_eq!(
            props["score"]["maximum"].as_i64(),
            Some(*rules::SCORE_RANGE.end())
        );
        let required: Vec<&str> = doc["components"]["schemas"]["LeadInput"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(required, ["name", "email", "source", "industry"]);
    }

    #[test]
    fn shapes_that_generators_choke_on_are_absent() {
        let doc = doc();
        assert_eq!(
            ciq_http::openapi::generator_hazards(&doc),
            Vec::<String>::new()
        );
        let lead = &doc["components"]["schemas"]["Lead"]["properties"];
        assert_eq!(lead["created_at"]["format"], "date-time");
        assert_eq!(lead["status"]["$ref"], "#/components/schemas/LeadStatus");
        let input = &doc["components"]["schemas"]["LeadInput"]["properties"];
        assert_eq!(
            input["status"]["allOf"],
            json!([{"$ref": "#/components/schemas/LeadStatus"}])
        );
        assert_eq!(input["status"]["nullable"], true);
    }

    /// What the document says a lead field takes is what the validator takes: for
    /// every text field, a string matches its `pattern` and `maxLength` exactly when
    /// the create rules accept it (schemathesis's positive and negative checks rely on
    /// both directions).
    mod patterns_state_the_rules {
        use std::sync::LazyLock;

        use proptest::prelude::*;
        use serde_json::{Value, json};

        /// LeadInput's properties, each with its compiled pattern.
        static FIELDS: LazyLock<Vec<(String, Value, regex::Regex)>> = LazyLock::new(|| {
            let doc = super::doc();
            let props = doc["components"]["schemas"]["LeadInput"]["properties"]
                .as_object()
                .unwrap()
                .clone();
            props
                .into_iter()
                .filter_map(|(name, schema)| {
                    let pattern = schema["pattern"].as_str()?;
                    let pattern = regex::Regex::new(pattern).expect("the pattern compiles");
                    Some((name, schema, pattern))
                })
                .collect()
        });

        fn field(name: &str) -> &'static (String, Value, regex::Regex) {
            FIELDS
                .iter()
                .find(|(n, _, _)| n == name)
                .expect("a documented text field")
        }

        fn matches(name: &str, text: &str) -> bool {
            let (_, schema, pattern) = field(name);
            let short = schema["maxLength"]
                .as_u64()
                .is_none_or(|max| text.chars().count() as u64 <= max);
            let long = schema["minLength"]
                .as_u64()
                .is_none_or(|min| text.chars().count() as u64 >= min);
            short && long && pattern.is_match(text)
        }

        fn accepted(field: &str, text: &str) -> bool {
            let mut lead = json!({"name": "Jane", "email": "jane@example.com",
                "source": "API", "industry": "Tech"});
            lead[field] = json!(text);
            ciq_leads::rules::validate_submission(&json!({ "lead": lead })).is_ok()
        }

        fn tricky_text() -> impl Strategy<Value = String> {
            let chars = prop::sample::select(vec![
                'a', 'Z', '0', '5', '1', ' ', '+', '-', '.', '(', ')', '@', '\t', '\n', '\r',
                '\u{b}', '\u{0}', '\u{1f}', '\u{7f}', '\u{85}', '\u{9f}', '\u{a0}', '\u{2028}',
                '\u{3000}', '\u{feff}', '\u{180e}', 'é', '日',
            ]);
            prop::collection::vec(chars, 0..40).prop_map(|c| c.into_iter().collect())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]
            #[test]
            fn for_every_text_field(text in tricky_text()) {
                for field in ["name", "source", "industry", "phone", "description", "external_id"] {
                    prop_assert_eq!(
                        matches(field, &text),
                        accepted(field, &text),
                        "{} = {:?}", field, text
                    );
                }
            }
        }

        #[test]
        fn for_long_and_padded_values() {
            for (field, text) in [
                ("phone", "\u{85}".repeat(33)),
                ("phone", format!("  {}  ", "1".repeat(15))),
                ("phone", "+1 (555) 123-4567".to_owned()),
                ("phone", "1".repeat(16)),
                ("name", format!("{} ", "a".repeat(200))),
                ("name", "a".repeat(200)),
                ("description", "line one\r\nline two\t".to_owned()),
            ] {
                assert_eq!(
                    matches(field, &text),
                    accepted(field, &text),
                    "{field} = {text:?}"
                );
            }
        }
    }
}
