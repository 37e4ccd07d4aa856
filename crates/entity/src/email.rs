//! The email address rule of `users.email` and `leads.email`: one rule for both
//! tables, so an owner's address and a lead's are judged alike.

use email_address::{EmailAddress, Options};

/// Longest address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Whether `value` is a plausible deliverable address: `local@domain.tld`, no display
/// name, no IP-literal domain, at most [`MAX_EMAIL_LEN`] characters.
pub fn is_valid_email(value: &str) -> bool {
    value.len() <= MAX_EMAIL_LEN
        && EmailAddress::parse_with_options(
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

#[cfg(test)]
mod tests {
    use super::*;

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
