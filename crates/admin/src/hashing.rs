//! argon2id hashing of key secrets (and, later, passwords).
//!
//! Parameters are OWASP's argon2id recommendation, written out so a library
//! default change cannot silently weaken them: 19 MiB memory, 2 passes, 1 lane.
//! Verification is CPU-heavy (tens of milliseconds), so callers run it on the
//! blocking pool, never on an async worker.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use crate::AdminError;

/// Memory cost in KiB.
pub const M_COST_KIB: u32 = 19 * 1024;
/// Number of passes.
pub const T_COST: u32 = 2;
/// Degree of parallelism.
pub const P_COST: u32 = 1;

/// Hashes and verifies secrets with fixed argon2id parameters.
#[derive(Clone)]
pub struct SecretHasher {
    argon2: Argon2<'static>,
}

impl Default for SecretHasher {
    fn default() -> Self {
        let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
            .expect("argon2 parameters are valid constants");
        Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        }
    }
}

impl SecretHasher {
    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of `secret`, with a
    /// fresh random salt.
    pub fn hash(&self, secret: &str) -> Result<String, AdminError> {
        self.argon2
            .hash_password(secret.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| AdminError::Hashing(e.to_string()))
    }

    /// Whether `secret` matches the PHC string `phc`. A malformed PHC string is a
    /// mismatch, never a panic.
    pub fn verify(&self, secret: &str, phc: &str) -> bool {
        self.argon2.verify_password(secret.as_bytes(), phc).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_with_the_written_parameters_and_verifies() {
        let hasher = SecretHasher::default();
        let phc = hasher.hash("s3cret").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains("s3cret"));
        assert!(hasher.verify("s3cret", &phc));
        assert!(!hasher.verify("s3cres", &phc));
    }

    #[test]
    fn the_same_secret_hashes_differently_each_time() {
        let hasher = SecretHasher::default();
        assert_ne!(hasher.hash("x").unwrap(), hasher.hash("x").unwrap());
    }

    #[test]
    fn a_malformed_hash_is_a_mismatch() {
        assert!(!SecretHasher::default().verify("x", "not a phc string"));
    }
}
