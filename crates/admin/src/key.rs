//! The `ciq_` API key format.
//!
//! ```text
//! ciq_ 3kTzq81LwXbA 9fJ2...32 chars...Qm 0c5XyZ
//!      lookup id    secret               checksum
//! ```
//! All of the body is base62. The lookup id (12 characters, ~71 bits) finds the
//! stored row without scanning hashes; the secret (32 characters, ~190 bits from the
//! OS CSPRNG) is what is hashed and verified; the checksum (CRC32 of everything
//! before it, 6 base62 characters) lets us — and secret scanners — reject a mistyped
//! or made-up key offline, the way GitHub tokens do.

use std::fmt;

use rand::TryRng;
use rand::rngs::SysRng;

/// The fixed prefix of every key.
pub const PREFIX: &str = "ciq_";
/// Characters of the public lookup id.
pub const LOOKUP_LEN: usize = 12;
/// Characters of the secret (32 × log2(62) ≈ 190 bits).
pub const SECRET_LEN: usize = 32;
/// Characters of the checksum (62^6 > 2^32).
pub const CHECKSUM_LEN: usize = 6;
/// Total length of a key.
pub const KEY_LEN: usize = PREFIX.len() + LOOKUP_LEN + SECRET_LEN + CHECKSUM_LEN;
/// Characters of the key shown to owners to recognise it (`ciq_` + 8).
pub const DISPLAY_PREFIX_LEN: usize = PREFIX.len() + 8;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A full key in plain text. It exists only between generation and the one time it
/// is shown; `Debug` and `Display` never print it.
#[derive(Clone, PartialEq, Eq)]
pub struct PlaintextKey(String);

impl PlaintextKey {
    /// The key itself, for the single place that shows it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlaintextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlaintextKey({}…)", &self.0[..DISPLAY_PREFIX_LEN])
    }
}

/// A key that passed the offline format and checksum checks.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedKey {
    /// The public lookup id.
    pub lookup_id: String,
    secret: String,
}

impl ParsedKey {
    /// The secret part, to hash or verify.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for ParsedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedKey")
            .field("lookup_id", &self.lookup_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a presented string is not a well-formed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// It does not start with `ciq_`.
    #[error("API keys start with \"ciq_\"")]
    Prefix,
    /// Wrong number of characters.
    #[error("API keys are {KEY_LEN} characters long")]
    Length,
    /// A character outside 0-9, A-Z, a-z after the prefix.
    #[error("API keys contain only letters and digits after \"ciq_\"")]
    Alphabet,
    /// The checksum does not match: a typo or a made-up key.
    #[error("the API key's checksum does not match (mistyped or truncated?)")]
    Checksum,
}

/// Generates a new key from the operating system's CSPRNG.
pub fn generate() -> (PlaintextKey, ParsedKey) {
    let lookup_id = random_base62(LOOKUP_LEN);
    let secret = random_base62(SECRET_LEN);
    let mut key = String::with_capacity(KEY_LEN);
    key.push_str(PREFIX);
    key.push_str(&lookup_id);
    key.push_str(&secret);
    let checksum = checksum_suffix(&key);
    key.push_str(&checksum);
    (PlaintextKey(key), ParsedKey { lookup_id, secret })
}

/// Checks a presented key offline: prefix, length, alphabet, checksum.
pub fn parse(presented: &str) -> Result<ParsedKey, KeyFormatError> {
    let body = presented
        .strip_prefix(PREFIX)
        .ok_or(KeyFormatError::Prefix)?;
    if presented.len() != KEY_LEN {
        return Err(KeyFormatError::Length);
    }
    if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(KeyFormatError::Alphabet);
    }
    let (signed, checksum) = presented.split_at(KEY_LEN - CHECKSUM_LEN);
    if checksum_suffix(signed) != checksum {
        return Err(KeyFormatError::Checksum);
    }
    let (lookup_id, secret) = signed[PREFIX.len()..].split_at(LOOKUP_LEN);
    Ok(ParsedKey {
        lookup_id: lookup_id.to_owned(),
        secret: secret.to_owned(),
    })
}

/// The display prefix of a key: enough to recognise it, useless to use it.
pub fn display_prefix(lookup_id: &str) -> String {
    format!(
        "{PREFIX}{}",
        &lookup_id[..DISPLAY_PREFIX_LEN - PREFIX.len()]
    )
}

/// `len` uniformly random base62 characters from the OS CSPRNG.
pub(crate) fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        SysRng
            .try_fill_bytes(&mut buf)
            .expect("the operating system's random source failed");
        // Rejection sampling keeps every character uniform: 248 = 4 × 62.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == len {
                break;
            }
            out.push(BASE62[usize::from(b % 62)] as char);
        }
    }
    out
}

/// The checksum suffix of `signed` (`ciq_` + lookup id + secret): CRC32, 6 base62
/// characters. Public because it is no secret: scanners and tests compute it too.
pub fn checksum_suffix(signed: &str) -> String {
    encode_checksum(crc32fast::hash(signed.as_bytes()))
}

fn encode_checksum(mut crc: u32) -> String {
    let mut digits = [b'0'; CHECKSUM_LEN];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base62 is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_back_to_its_parts() {
        let (plain, parts) = generate();
        assert_eq!(plain.expose().len(), KEY_LEN);
        assert!(plain.expose().starts_with("ciq_"));
        assert_eq!(parse(plain.expose()).unwrap(), parts);
    }

    #[test]
    fn generated_keys_differ() {
        let (a, _) = generate();
        let (b, _) = generate();
        assert_ne!(a, b);
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let (plain, _) = generate();
        let mut chars: Vec<char> = plain.expose().chars().collect();
        chars[20] = if chars[20] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert_eq!(parse(&typo), Err(KeyFormatError::Checksum));
    }

    #[test]
    fn malformed_keys_are_named_by_their_fault() {
        assert_eq!(parse("sk_live_123"), Err(KeyFormatError::Prefix));
        assert_eq!(parse("ciq_your_api_key_here"), Err(KeyFormatError::Length));
        let (plain, _) = generate();
        let with_dash = plain.expose().replacen('0', "-", 1).replacen('A', "-", 1);
        if with_dash != plain.expose() {
            assert_eq!(parse(&with_dash), Err(KeyFormatError::Alphabet));
        }
        assert_eq!(
            parse(&plain.expose()[..KEY_LEN - 1]),
            Err(KeyFormatError::Length)
        );
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let (plain, parts) = generate();
        assert!(!format!("{plain:?}").contains(parts.secret()));
        assert!(!format!("{parts:?}").contains(parts.secret()));
    }

    #[test]
    fn secrets_carry_at_least_160_bits() {
        assert!(SECRET_LEN as f64 * 62f64.log2() >= 160.0);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever arrives in the header, parsing answers (never panics), and accepts
        /// only what has the exact shape and a matching checksum.
        #[test]
        fn parsing_any_string_never_panics_and_accepts_only_well_formed_keys(input in ".{0,80}") {
            if let Ok(parts) = parse(&input) {
                prop_assert_eq!(input.len(), KEY_LEN);
                prop_assert!(input.starts_with(PREFIX));
                prop_assert_eq!(parts.lookup_id.len(), LOOKUP_LEN);
                prop_assert_eq!(parts.secret().len(), SECRET_LEN);
            }
        }

        /// Random `ciq_`-shaped strings almost never pass the checksum; a one-character
        /// change to a real key never does.
        #[test]
        fn any_single_substitution_in_a_real_key_is_caught(
            position in PREFIX.len()..KEY_LEN,
            replacement in proptest::char::ranges(vec!['0'..='9', 'A'..='Z', 'a'..='z'].into()),
        ) {
            let (plain, _) = generate();
            let mut chars: Vec<char> = plain.expose().chars().collect();
            prop_assume!(chars[position] != replacement);
            chars[position] = replacement;
            let changed: String = chars.into_iter().collect();
            prop_assert!(parse(&changed).is_err());
        }
    }
}
