//! Sealed secrets: what the gateway must be able to read back but never stores in the
//! clear (webhook signing secrets, challenge secrets), encrypted under one key of the
//! operator's (`CIQ_WEBHOOK_SECRET_KEY`) with XChaCha20-Poly1305 and the owning row's id
//! as associated data, so a ciphertext cannot be moved to another row.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use rand::TryRng;
use rand::rngs::SysRng;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// Bytes of the webhook key (`CIQ_WEBHOOK_SECRET_KEY`, base64).
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

/// `N` bytes from the operating system's random source.
pub fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SysRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random source failed");
    bytes
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

/// The gateway's sealing key: encrypts and decrypts the secrets rows hold (webhook
/// endpoints' signing secrets today), each bound to its row's id.
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

    /// `secret` encrypted for the row `endpoint_id`: a fresh nonce, then ciphertext and tag.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_seal_per_endpoint_and_only_open_with_their_key() {
        let key = SecretBox::from_base64(&new_key()).unwrap();
        let other = SecretBox::from_base64(&new_key()).unwrap();
        let (endpoint, elsewhere) = (Uuid::now_v7(), Uuid::now_v7());
        let secret: SecretString = "whsec_c2VjcmV0".to_owned().into();
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
}
