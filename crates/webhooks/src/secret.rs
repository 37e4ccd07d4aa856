//! Signing secrets: made from the OS's random source, kept sealed under the gateway's
//! key ([`ciq_store::secret::SecretBox`], the endpoint's id bound to each), and used for
//! Standard Webhooks signatures.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ciq_store::secret::random;
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};

/// The prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a signing secret (Standard Webhooks asks for 24 to 64).
pub const SECRET_BYTES: usize = 32;
/// A new signing secret: `whsec_` + base64 of [`SECRET_BYTES`] random bytes.
pub fn new_secret() -> SecretString {
    format!(
        "{SECRET_PREFIX}{}",
        STANDARD.encode(random::<SECRET_BYTES>())
    )
    .into()
}

/// The HMAC key of a signing secret: the bytes its base64 (after `whsec_`) encodes.
fn hmac_key(secret: &SecretString) -> Vec<u8> {
    let text = secret.expose_secret();
    let text = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
    STANDARD
        .decode(text)
        .unwrap_or_else(|_| text.as_bytes().to_vec())
}

/// The `webhook-signature` header for `body` sent as event `id` at `timestamp` (unix
/// seconds): `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` per secret, space
/// separated (two during a rotation's overlap).
pub fn signature(secrets: &[SecretString], id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .map(|secret| {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&hmac_key(secret))
                .expect("HMAC takes a key of any length");
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body.as_bytes());
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_standard_webhooks_library() {
        let secret = new_secret();
        let body = r#"{"type":"lead.created"}"#;
        let now = chrono::Utc::now().timestamp();
        let header = signature(std::slice::from_ref(&secret), "msg_1", now, body);
        let verifier = standardwebhooks::Webhook::new(secret.expose_secret()).unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", header.parse().unwrap());
        verifier.verify(body.as_bytes(), &headers).unwrap();
        // Two secrets: either verifies.
        let old = new_secret();
        let both = signature(&[secret.clone(), old.clone()], "msg_1", now, body);
        assert_eq!(both.split(' ').count(), 2);
        headers.insert("webhook-signature", both.parse().unwrap());
        for s in [&secret, &old] {
            standardwebhooks::Webhook::new(s.expose_secret())
                .unwrap()
                .verify(body.as_bytes(), &headers)
                .unwrap();
        }
        // Another body does not.
        assert!(verifier.verify(b"{}", &headers).is_err());
    }
}
