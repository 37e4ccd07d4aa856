//! The reference document's request bodies, verbatim.

use serde_json::Value;

/// The reference's full Request Body, verbatim.
pub fn reference_full_body() -> Value {
    serde_json::from_str(
        r#"{
"lead": {
"name": "Jane Doe",
"email": "jane@example.com",
"phone": "15551234567",
"source": "Website Form",
"industry": "Technology",
"score": 7,
"status": "contacted",
"monthly_revenue": 50000,
"budget": 10000,
"description": "Interested in AI calling"
}
}"#,
    )
    .expect("reference body is JSON")
}

/// The reference's cURL example body, verbatim.
pub fn reference_curl_body() -> Value {
    serde_json::from_str(
        r#"{
"lead": {
"name": "Jane Doe",
"email": "jane@example.com",
"phone": "15551234567",
"source": "API",
"industry": "Technology"
}
}"#,
    )
    .expect("reference body is JSON")
}
