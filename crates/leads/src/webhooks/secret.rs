//! Signing secrets: made from the OS's random source, kept encrypted under the
//! gateway's webhook key (XChaCha20-Poly1305, the endpoint's id as associated data, so a
//! ciphertext cannot be moved to another endpoint), and used for Standard Webhooks
//! signatures.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use hmac::Mac;
use rand::TryRng;
use rand::rngs::SysRng;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// The prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a signing secret (Standard Webhooks asks for 24 to 64).
pub const SECRET_BYTES: usize = 32;
/// Bytes of the webhook key (`CIQ_WEBHOOK_SECRET_KEY`, base64).
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SysRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random source failed");
    bytes
}

/// A new signing secret: `whsec_` + base64 of [`SECRET_BYTES`] random bytes.
pub fn new_secret() -> SecretString {
    format!(
        "{SECRET_PREFIX}{}",
        STANDARD.encode(random::<SECRET_BYTES>())
    )
    .into()
}

/// A new webhook key, base64 (what `CIQ_WEBHOOK_SECRET_KEY` holds).
pub fn new_key() -> SecretString {
    STANDARD.encode(random::<KEY_BYTES>()).into()
}

/// Why a webhook key or a stored secret is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// `CIQ_WEBHOOK_SECRET_KEY` is not base64 of 32 bytes.
    #[error("the webhook key must be base64 of 32 bytes (e.g. `openssl rand -base64 32`)")]
    BadKey,
    /// The stored secret does not decrypt with this key (another key, or tampered with).
    #[error("a stored webhook secret does not decrypt with this webhook key")]
    Undecryptable,
}

/// The gateway's webhook key: encrypts and decrypts endpoints' signing secrets.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// The key from its base64 form.
    pub fn from_base64(key: &SecretString) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(key.expose_secret().trim())
            .map_err(|_| SecretError::BadKey)?;
        if bytes.len() != KEY_BYTES {
            return Err(SecretError::BadKey);
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SecretError::BadKey)?;
        Ok(Self { cipher })
    }

    /// `secret` encrypted for `endpoint_id`: a fresh nonce, then ciphertext and tag.
    pub fn seal(&self, endpoint_id: Uuid, secret: &SecretString) -> Vec<u8> {
        let nonce = random::<NONCE_BYTES>();
        let sealed = self
            .cipher
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: secret.expose_secret().as_bytes(),
                    aad: endpoint_id.as_bytes(),
                },
            )
            .expect("encrypting into memory cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    /// The secret `sealed` holds for `endpoint_id`.
    pub fn open(&self, endpoint_id: Uuid, sealed: &[u8]) -> Result<SecretString, SecretError> {
        if sealed.len() <= NONCE_BYTES {
            return Err(SecretError::Undecryptable);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SecretError::Undecryptable)?;
        let plain = self
            .cipher
            .decrypt(
                (&nonce).into(),
                Payload {
                    msg: ciphertext,
                    aad: endpoint_id.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| SecretError::Undecryptable)
    }
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
    fn secrets_seal_per_endpoint_and_only_open_with_their_key() {
        let key = SecretBox::from_base64(&new_key()).unwrap();
        let other = SecretBox::from_base64(&new_key()).unwrap();
        let (endpoint, elsewhere) = (Uuid::now_v7(), Uuid::now_v7());
        let secret = new_secret();
        assert!(secret.expose_secret().starts_with("whsec_"));
        let sealed = key.seal(endpoint, &secret);
        assert!(!String::from_utf8_lossy(&sealed).contains(secret.expose_secret()));
        assert_eq!(
            key.open(endpoint, &sealed).unwrap().expose_secret(),
            secret.expose_secret()
        );
        assert_eq!(
            other.open(endpoint, &sealed).unwrap_err(),
            SecretError::Undecryptable
        );
        assert_eq!(
            key.open(elsewhere, &sealed).unwrap_err(),
            SecretError::Undecryptable
        );
        assert_ne!(
            key.seal(endpoint, &secret),
            sealed,
            "a fresh nonce each time"
        );
        for bad in ["", "c2hvcnQ=", "not base64!"] {
            assert_eq!(
                SecretBox::from_base64(&bad.to_owned().into()).unwrap_err(),
                SecretError::BadKey
            );
        }
    }

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
