//! A local stand-in for a challenge provider's siteverify (Cloudflare Turnstile,
//! hCaptcha, Google reCAPTCHA), speaking their documented shape: a form POST of
//! `secret`, `response` and `remoteip`, answered with JSON `{"success": …,
//! "error-codes": […]}`. Tokens are single-use, as the real ones are. Tokens it knows:
//! `pass…` (a person), `v3-0.9…` / `v3-0.3…` (reCAPTCHA v3 with that score); anything
//! else is refused (`invalid-input-response`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use poem::{Body, Endpoint, Request, Response};
use serde_json::json;

/// One verification request as it arrived: its form fields.
pub type Asked = HashMap<String, String>;

#[derive(Default)]
struct Shared {
    asked: Mutex<Vec<Asked>>,
    spent: Mutex<HashSet<String>>,
}

/// The running stand-in; stops when dropped.
pub struct FakeSiteverify {
    /// Its siteverify URL (`CIQ_CHALLENGE_VERIFY_URL`).
    pub url: String,
    secret: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

struct Verify {
    secret: String,
    shared: Arc<Shared>,
}

impl Endpoint for Verify {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let form = req.take_body().into_string().await.unwrap_or_default();
        let fields: Asked = url::form_urlencoded::parse(form.as_bytes())
            .into_owned()
            .collect();
        self.shared.asked.lock().unwrap().push(fields.clone());
        let token = fields.get("response").cloned().unwrap_or_default();
        let answer = if fields.get("secret") != Some(&self.secret) {
            json!({"success": false, "error-codes": ["invalid-input-secret"]})
        } else if !self.shared.spent.lock().unwrap().insert(token.clone()) {
            json!({"success": false, "error-codes": ["timeout-or-duplicate"]})
        } else if token.starts_with("pass") {
            json!({"success": true, "challenge_ts": "2026-12-04T20:00:00Z",
                   "hostname": "shop.example", "error-codes": []})
        } else if let Some(score) = token.strip_prefix("v3-") {
            let score: f64 = score[..3].parse().unwrap();
            json!({"success": true, "score": score, "action": "submit",
                   "challenge_ts": "2026-12-04T20:00:00Z", "hostname": "shop.example"})
        } else {
            json!({"success": false, "error-codes": ["invalid-input-response"]})
        };
        Ok(Response::builder()
            .content_type("application/json")
            .body(Body::from_json(answer).unwrap()))
    }
}

impl FakeSiteverify {
    /// Starts on a free port, taking `secret` as the site's secret key.
    pub async fn start(secret: &str) -> Self {
        let shared = Arc::new(Shared::default());
        let endpoint = Verify {
            secret: secret.to_owned(),
            shared: shared.clone(),
        };
        let (port, server) = crate::serve_on_free_port(endpoint).await;
        Self {
            url: format!("http://127.0.0.1:{port}/siteverify"),
            secret: secret.to_owned(),
            shared,
            server,
        }
    }

    /// The site secret it expects.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Every verification request so far, in order.
    pub fn asked(&self) -> Vec<Asked> {
        self.shared.asked.lock().unwrap().clone()
    }
}

impl Drop for FakeSiteverify {
    fn drop(&mut self) {
        self.server.abort();
    }
}
