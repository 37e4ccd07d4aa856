//! Challenges a browser key may demand of every submission: the provider (Cloudflare
//! Turnstile, hCaptcha, Google reCAPTCHA) and its secret, which the gateway keeps sealed
//! under its secret key (as webhook signing secrets are), bound to the key's id.

use std::sync::Arc;

use secrecy::SecretString;
use uuid::Uuid;

use crate::AdminError;

/// A challenge provider whose widget a form embeds and whose siteverify the gateway asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeProvider {
    /// Cloudflare Turnstile.
    Turnstile,
    /// hCaptcha.
    Hcaptcha,
    /// Google reCAPTCHA (v2, or v3 with a score of at least [`RECAPTCHA_MIN_SCORE`]).
    Recaptcha,
}

/// The lowest reCAPTCHA v3 score taken for a person.
pub const RECAPTCHA_MIN_SCORE: f64 = 0.5;

/// Longest provider secret accepted.
pub const MAX_SECRET_LEN: usize = 200;

impl ChallengeProvider {
    /// Every provider.
    pub const ALL: [ChallengeProvider; 3] = [Self::Turnstile, Self::Hcaptcha, Self::Recaptcha];

    /// The name the CLI, the APIs and the store use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Turnstile => "turnstile",
            Self::Hcaptcha => "hcaptcha",
            Self::Recaptcha => "recaptcha",
        }
    }

    /// The provider's name for people.
    pub const fn title(self) -> &'static str {
        match self {
            Self::Turnstile => "Cloudflare Turnstile",
            Self::Hcaptcha => "hCaptcha",
            Self::Recaptcha => "Google reCAPTCHA",
        }
    }

    /// The provider named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The provider's documented siteverify endpoint.
    pub const fn verify_url(self) -> &'static str {
        match self {
            Self::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            Self::Hcaptcha => "https://api.hcaptcha.com/siteverify",
            Self::Recaptcha => "https://www.google.com/recaptcha/api/siteverify",
        }
    }

    /// The form field the provider's widget writes its token into.
    pub const fn token_field(self) -> &'static str {
        match self {
            Self::Turnstile => "cf-turnstile-response",
            Self::Hcaptcha => "h-captcha-response",
            Self::Recaptcha => "g-recaptcha-response",
        }
    }
}

impl std::str::FromStr for ChallengeProvider {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Self::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
            format!("must be one of {}", names.join(", "))
        })
    }
}

impl std::fmt::Display for ChallengeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A challenge as an owner sets it on a new key: the provider and its secret in clear.
#[derive(Clone)]
pub struct NewChallenge {
    /// The provider.
    pub provider: ChallengeProvider,
    /// The provider's secret key for the site (sealed before it is stored).
    pub secret: SecretString,
}

impl std::fmt::Debug for NewChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewChallenge")
            .field("provider", &self.provider)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl NewChallenge {
    /// The secret, checked: 1 to [`MAX_SECRET_LEN`] characters, no white space or
    /// control character (a pasted secret is trimmed first).
    pub fn checked(provider: ChallengeProvider, secret: &str) -> Result<Self, AdminError> {
        let secret = secret.trim();
        let invalid = |rule: &str| AdminError::Invalid {
            field: "challenge_secret",
            rule: rule.into(),
        };
        if secret.is_empty() {
            return Err(invalid(
                "is required with a challenge: the provider's secret key",
            ));
        }
        if secret.chars().count() > MAX_SECRET_LEN {
            return Err(invalid(&format!(
                "must be at most {MAX_SECRET_LEN} characters"
            )));
        }
        if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("must not contain spaces or control characters"));
        }
        Ok(Self {
            provider,
            secret: secret.to_owned().into(),
        })
    }
}

/// A verified key's challenge: the provider and its sealed secret, opened only when a
/// submission is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyChallenge {
    /// The provider.
    pub provider: ChallengeProvider,
    /// The secret as stored (sealed, bound to the key's id).
    pub sealed: Arc<[u8]>,
}

impl KeyChallenge {
    /// The challenge a key's row holds, if any: both columns set, with a provider this
    /// gateway knows.
    pub fn of_row(provider: Option<&str>, sealed: Option<&[u8]>) -> Option<Self> {
        Some(Self {
            provider: ChallengeProvider::from_name(provider?)?,
            sealed: sealed?.into(),
        })
    }

    /// The provider's secret, opened with the gateway's secret key for the key `key_id`.
    pub fn secret(
        &self,
        secrets: &ciq_store::secret::SecretBox,
        key_id: Uuid,
    ) -> Result<SecretString, ciq_store::secret::SecretError> {
        secrets.open(key_id, &self.sealed)
    }
}

/// `challenge`'s secret sealed for the key `key_id`, or why it cannot be: sealing needs
/// the gateway's secret key (`CIQ_WEBHOOK_SECRET_KEY`).
pub fn seal(
    secrets: Option<&ciq_store::secret::SecretBox>,
    key_id: Uuid,
    challenge: &NewChallenge,
) -> Result<Vec<u8>, AdminError> {
    let secrets = secrets.ok_or_else(|| AdminError::Invalid {
        field: "challenge",
        rule: "needs the gateway's secret key (CIQ_WEBHOOK_SECRET_KEY) to keep the provider's \
               secret sealed; ask the operator to set it"
            .into(),
    })?;
    Ok(secrets.seal(key_id, &challenge.secret))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn providers_round_trip_by_name_and_unknown_names_are_refused() {
        for provider in ChallengeProvider::ALL {
            assert_eq!(provider.as_str().parse(), Ok(provider));
        }
        assert!("captcha".parse::<ChallengeProvider>().is_err());
    }

    #[test]
    fn secrets_are_checked_and_never_printed() {
        let ok = NewChallenge::checked(ChallengeProvider::Turnstile, " 0x4AAAAAAA \n").unwrap();
        assert_eq!(ok.secret.expose_secret(), "0x4AAAAAAA");
        assert!(!format!("{ok:?}").contains("0x4A"));
        for bad in ["", "two words", &"x".repeat(MAX_SECRET_LEN + 1)] {
            assert!(
                NewChallenge::checked(ChallengeProvider::Hcaptcha, bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_sealed_secret_opens_for_its_key_only() {
        let secrets =
            ciq_store::secret::SecretBox::from_base64(&ciq_store::secret::new_key()).unwrap();
        let key = Uuid::now_v7();
        let challenge = NewChallenge::checked(ChallengeProvider::Recaptcha, "s3cret").unwrap();
        let sealed = seal(Some(&secrets), key, &challenge).unwrap();
        let stored = KeyChallenge::of_row(Some("recaptcha"), Some(&sealed)).unwrap();
        assert_eq!(
            stored.secret(&secrets, key).unwrap().expose_secret(),
            "s3cret"
        );
        assert!(stored.secret(&secrets, Uuid::now_v7()).is_err());
        assert!(seal(None, key, &challenge).is_err());
    }
}
