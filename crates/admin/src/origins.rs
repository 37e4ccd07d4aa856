//! Browser keys: the web origins a key may be used from.
//!
//! An origin is what a browser sends in `Origin`: `scheme://host[:port]`, nothing
//! more. Origins are kept in their serialized form (lower-case scheme and host,
//! punycode host, no default port), so the `Origin` of a request matches by plain
//! string equality once it is put in the same form.

use std::sync::Arc;

use serde::Serialize;

/// Most origins one key may have: a site, its `www.` twin, staging and a few more.
pub const MAX_ORIGINS: usize = 20;

/// `text` as an origin in its serialized form, or why it is not one (said so that the
/// owner who typed it knows what to change).
pub fn parse_origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    let refuse = |why: &str| Err(format!("{text:?} is not a web origin: {why}"));
    if text.contains('*') {
        return refuse("wildcards are not allowed; list each origin");
    }
    let Ok(url) = url::Url::parse(text) else {
        return refuse("write it as scheme://host[:port], e.g. https://www.example.com");
    };
    if !matches!(url.scheme(), "http" | "https") {
        return refuse("only http:// and https:// origins can be allowed");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return refuse("it has no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("it may not carry a user name or password");
    }
    // "https://example.com/" is how an address bar shows the origin; anything after
    // that slash is a page, not an origin.
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || text.ends_with("//")
    {
        return refuse("an origin has no path, query or fragment (e.g. https://www.example.com)");
    }
    Ok(url.origin().ascii_serialization())
}

/// A `pattern` for the documents: origins written the usual way (a DNS name of
/// letter-led labels of at most 63 characters without two hyphens in a row — `xn--`
/// starts an international name, which must then be valid punycode —, an optional port
/// of up to four digits, an optional trailing `/`). Every text it matches is accepted;
/// [`parse_origin`] also takes IP literals, international names and higher ports.
pub const ORIGIN_PATTERN: &str = r"^https?://[A-Za-z](?:-?[A-Za-z0-9]){0,31}(?:\.[A-Za-z](?:-?[A-Za-z0-9]){0,31})*(?::[0-9]{1,4})?/?$";

/// The `Origin` header of a request in the stored form, if it is a web origin at all
/// (`null`, sent by sandboxed pages and local files, is not).
pub fn request_origin(header: &str) -> Option<String> {
    parse_origin(header).ok()
}

/// The origins of one key: none for a key meant for servers. Cheap to clone (it
/// travels with every verified key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AllowedOrigins(Option<Arc<[Box<str>]>>);

impl AllowedOrigins {
    /// The owner's list, each parsed (every bad one reported, joined by "; "),
    /// duplicates dropped, at most [`MAX_ORIGINS`].
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<Self, String> {
        let mut origins: Vec<String> = Vec::new();
        let mut errors = Vec::new();
        for text in texts
            .iter()
            .map(AsRef::as_ref)
            .filter(|t| !t.trim().is_empty())
        {
            match parse_origin(text) {
                Ok(origin) if !origins.contains(&origin) => origins.push(origin),
                Ok(_) => {}
                Err(why) => errors.push(why),
            }
        }
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        if origins.len() > MAX_ORIGINS {
            return Err(format!(
                "a key may have at most {MAX_ORIGINS} allowed origins ({} given)",
                origins.len()
            ));
        }
        Ok(Self::of(origins))
    }

    fn of(origins: Vec<String>) -> Self {
        if origins.is_empty() {
            return Self(None);
        }
        Self(Some(
            origins.into_iter().map(String::into_boxed_str).collect(),
        ))
    }

    /// From the stored form (space-separated, already serialized).
    pub fn from_stored(stored: &str) -> Self {
        Self::of(stored.split_whitespace().map(str::to_owned).collect())
    }

    /// As stored: space-separated.
    pub fn to_stored(&self) -> String {
        self.iter().collect::<Vec<_>>().join(" ")
    }

    /// Whether the key has no origins (it is not a browser key).
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Whether `origin` (in the stored form) is one of them.
    pub fn allows(&self, origin: &str) -> bool {
        self.iter().any(|o| o == origin)
    }

    /// The origins, in the owner's order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().flat_map(|o| o.iter().map(|s| &**s))
    }
}

impl Serialize for AllowedOrigins {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// Refuses origins on a key that may do more than create leads: a page's source is
/// public, so a key in it must not be able to read or change anything.
pub fn check_origins_allowed(
    scopes: crate::Scopes,
    origins: &AllowedOrigins,
) -> Result<(), String> {
    if origins.is_empty() || scopes == crate::Scopes::of(&[crate::Scope::LeadsCreate]) {
        return Ok(());
    }
    Err(format!(
        "allowed origins are only for keys whose only scope is leads:create (this key has {}): \
         a key in a web page is public, so it must not be able to read or change leads",
        scopes.names().join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_bad_ones_named() {
        assert_eq!(
            parse_origin("https://WWW.Example.com").unwrap(),
            "https://www.example.com"
        );
        assert_eq!(
            parse_origin("https://example.com:443/").unwrap(),
            "https://example.com"
        );
        assert_eq!(
            parse_origin("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            parse_origin("https://bücher.de").unwrap(),
            "https://xn--bcher-kva.de"
        );
        for (bad, why) in [
            ("https://example.com/form", "no path"),
            ("https://example.com?x=1", "no path"),
            ("https://*.example.com", "wildcards"),
            ("*", "wildcards"),
            ("ftp://example.com", "only http"),
            ("file:///tmp/x.html", "only http"),
            ("example.com", "scheme://host"),
            ("null", "scheme://host"),
            ("https://user:pw@example.com", "user name"),
        ] {
            let err = parse_origin(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert_eq!(request_origin("null"), None);
    }

    #[test]
    fn a_list_reports_every_bad_origin_and_round_trips() {
        let err =
            AllowedOrigins::parse(&["https://a.example", "ftp://b", "https://c/x"]).unwrap_err();
        assert!(
            err.contains("\"ftp://b\"") && err.contains("\"https://c/x\""),
            "{err}"
        );
        let list =
            AllowedOrigins::parse(&["https://a.example", "https://A.example/", " "]).unwrap();
        assert_eq!(list.to_stored(), "https://a.example");
        assert_eq!(AllowedOrigins::from_stored(&list.to_stored()), list);
        assert!(list.allows("https://a.example") && !list.allows("https://b.example"));
        assert!(AllowedOrigins::from_stored("").is_empty());
        let many: Vec<String> = (0..21).map(|i| format!("https://s{i}.example")).collect();
        assert!(
            AllowedOrigins::parse(&many)
                .unwrap_err()
                .contains("at most 20")
        );
    }

    #[test]
    fn only_create_only_keys_may_have_origins() {
        let origins = AllowedOrigins::parse(&["https://a.example"]).unwrap();
        let create = crate::Scopes::default();
        let read = crate::Scopes::of(&[crate::Scope::LeadsCreate, crate::Scope::LeadsRead]);
        assert!(check_origins_allowed(create, &origins).is_ok());
        assert!(
            check_origins_allowed(read, &origins)
                .unwrap_err()
                .contains("leads:create, leads:read")
        );
        assert!(check_origins_allowed(read, &AllowedOrigins::default()).is_ok());
    }

    proptest::proptest! {
        /// The documents' origin pattern promises less than the parser takes, never more.
        #[test]
        fn every_origin_the_pattern_matches_is_accepted(
            text in proptest::string::string_regex(
                ORIGIN_PATTERN.trim_start_matches('^').trim_end_matches('$')
            ).unwrap()
        ) {
            proptest::prop_assert!(parse_origin(&text).is_ok(), "{:?}", text);
        }
    }
}
