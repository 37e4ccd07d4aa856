//! ConvertIQ API keys and the users who own them.
//!
//! - [`key`]: the `ciq_` key format, generation from the OS CSPRNG and parsing
//!   (checksum first, so a mistyped key never reaches the database).
//! - [`hashing`]: argon2id hashing and verification of secrets.
//! - [`users`] and [`keys`]: creating users, creating, listing and revoking keys.
//! - [`scopes`] and [`origins`]: what a key may do, and the web pages it may be used from.
//! - [`challenge`]: the challenge (Turnstile, hCaptcha, reCAPTCHA) a browser key may demand.
//! - [`verifier`]: the hot-path check of a presented key, with its cache.
//! - [`sessions`]: Settings sign-in sessions (database or Redis).
//! - [`usage`]: usage as every surface answers it (buckets, window parameters).
//! - [`operator`]: the operator API `/admin/v1`, its document, and the probes.

pub mod challenge;
pub mod error;
pub mod hashing;
pub mod key;
pub mod keys;
pub mod operator;
pub mod origins;
pub mod resets;
pub mod scopes;
pub mod sessions;
pub mod usage;
pub mod users;
pub mod verifier;

pub use challenge::{ChallengeProvider, KeyChallenge, NewChallenge};
pub use error::AdminError;
pub use hashing::SecretHasher;
pub use key::{KeyFormatError, ParsedKey, PlaintextKey};
pub use keys::{KeySummary, NewKey};
pub use origins::AllowedOrigins;
pub use scopes::{Scope, Scopes};
pub use verifier::{KeyVerifier, VerifiedKey, VerifyError};
