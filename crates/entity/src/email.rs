//! The email address rule of `users.email` and `leads.email`: one rule for both
//! tables, so an owner's address and a lead's are judged alike.

use email_address::{EmailAddress, Options};

/// Longest address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Whether `value` is a plausible deliverable address: `local@domain.tld`, no display
/// name, no IP-literal domain, at most [`MAX_EMAIL_LEN`] characters.
pub fn is_valid_email(value: &str) -> bool {
    value.len() <= MAX_EMAIL_LEN && (plainly_valid(value) || parsed(value))
}

/// Whether the full parse (`email_address`, with the options above) accepts `value`.
fn parsed(value: &str) -> bool {
    EmailAddress::parse_with_options(
        value,
        Options {
            minimum_sub_domains: 2,
            allow_domain_literal: false,
            allow_display_text: false,
            ..Options::default()
        },
    )
    .is_ok()
}

/// Characters of an unquoted local part other than letters and digits (RFC 5322's
/// `atext`, and the dot between its atoms).
const LOCAL_SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~.";

/// Whether `value` is an address of the plain shape nearly every lead's is — ASCII, one
/// `@`, a dot-atom local part of at most 64 characters, at least two domain labels of
/// letters, digits and inner hyphens, each at most 63 — which the full parse accepts
/// every time (a property test holds the two together). It answers without the parse's
/// allocation and its character-by-character search for a display name (a sixth of a
/// lead's field rules, callgrind, 2026-12-07); any other shape goes to the parse.
fn plainly_valid(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    let local_ok = (1..=64).contains(&local.len())
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(&b));
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        (1..=63).contains(&bytes.len())
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    };
    local_ok && domain.contains('.') && domain.split('.').all(label_ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the shortcut accepts, the parse accepts: texts made of the
        /// characters addresses are made of, and of those that break them (spaces,
        /// quotes, brackets, a second `@`, dots and hyphens in every place, non-ASCII).
        #[test]
        fn what_the_plain_shape_accepts_the_parse_accepts(
            value in "[a-z0-9.\\-+_@ \"<>\\[\\]()é!#~]{0,20}",
            long_local in 60usize..70,
            long_label in 60usize..66,
        ) {
            for candidate in [
                value.clone(),
                format!("{value}@example.com"),
                format!("jane@{value}"),
                format!("{}@example.com", "a".repeat(long_local)),
                format!("jane@{}.com", "b".repeat(long_label)),
            ] {
                if plainly_valid(&candidate) {
                    prop_assert!(parsed(&candidate), "{candidate:?}");
                }
            }
        }
    }

    #[test]
    fn the_plain_shape_takes_the_common_addresses_and_leaves_the_rest_to_the_parse() {
        for plain in [
            "jane@example.com",
            "jane.doe+crm@mail.example.co.uk",
            "a-b@x-y.io",
        ] {
            assert!(plainly_valid(plain), "{plain:?}");
        }
        for other in [
            "\"jane doe\"@example.com",
            "zoë@example.com",
            "jane@example",
            "jane@-example.com",
            "jane..doe@example.com",
            "jane@@example.com",
            "jane@ex_ample.com",
        ] {
            assert!(!plainly_valid(other), "{other:?}");
        }
        // Left to the parse, which accepts it.
        assert!(is_valid_email("\"jane doe\"@example.com"));
    }

    #[test]
    fn ordinary_addresses_are_accepted() {
        assert!(is_valid_email("jane@example.com"));
        assert!(is_valid_email("jane.doe+crm@mail.example.co.uk"));
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.com",
            "jane@example",
            "Jane <jane@example.com>",
            "jane@[127.0.0.1]",
            "jane doe@example.com",
        ] {
            assert!(!is_valid_email(bad), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(!is_valid_email(&long));
    }
}
