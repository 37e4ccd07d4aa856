//! The error contract's vocabulary, below every crate that raises an error: the one
//! table of stable error codes (code, HTTP status, default message) and [`Coded`],
//! which each domain's error implements to name its code. The domains stay free of
//! our HTTP layer (ciq-http, poem): they name a code; ciq-http's one conversion
//! (`From<E: Coded> for HttpError`) turns any of them into the JSON error.
//!
//! The status is the `http` crate's type, the one poem re-exports: the table is the
//! contract, so it says the status beside the code.

use http::StatusCode;
use uuid::Uuid;

/// An error of a domain (leads, keys, webhooks…) that knows which code of the table it
/// is answered with. Its `Display` text is the cause the access log keeps for a 5xx;
/// for the others the client reads [`Coded::message`].
pub trait Coded: std::fmt::Display {
    /// The code of the table it is answered with.
    fn code(&self) -> ErrorCode;

    /// What the client reads; `None`: the code's default message.
    fn message(&self) -> Option<String> {
        None
    }

    /// For `validation_failed`: the field and the rule it broke.
    fn field(&self) -> Option<(&'static str, String)> {
        None
    }

    /// For `duplicate_lead`: the lead that already has the `external_id`.
    fn lead_id(&self) -> Option<Uuid> {
        None
    }
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => ($code:literal, $status:ident, $message:literal), )*) => {
        /// Every stable error code, with its HTTP status and default message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as clients see it in `error.code`.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status this code is always answered with.
            pub const fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status,)* }
            }

            /// The message used when the raiser has nothing more specific to say.
            pub const fn default_message(self) -> &'static str {
                match self { $(ErrorCode::$variant => $message,)* }
            }
        }
    };
}

error_codes! {
    /// A path or body the framework could not parse (operator API).
    BadRequest => ("bad_request", BAD_REQUEST, "the request could not be parsed"),
    /// The body is not JSON.
    InvalidJson => ("invalid_json", BAD_REQUEST, "the request body is not valid JSON"),
    /// No `X-API-Key` header.
    MissingApiKey => ("missing_api_key", UNAUTHORIZED,
        "Send your API key in the X-API-Key header (Settings → API Key generates one)"),
    /// Malformed, unknown, revoked or expired key.
    InvalidApiKey => ("invalid_api_key", UNAUTHORIZED, "the API key is not valid"),
    /// No operator token.
    MissingAdminToken => ("missing_admin_token", UNAUTHORIZED,
        "send the operator token as Authorization: Bearer <CIQ_ADMIN_TOKEN>"),
    /// A wrong operator token.
    InvalidAdminToken => ("invalid_admin_token", UNAUTHORIZED, "the operator token is not valid"),
    /// The key lacks the scope the operation needs (the message names it).
    InsufficientScope => ("insufficient_scope", FORBIDDEN, "the API key lacks the scope this operation needs"),
    /// A browser request from a web origin the key does not allow (the message names it).
    OriginNotAllowed => ("origin_not_allowed", FORBIDDEN,
        "this API key may not be used from this web page's origin"),
    /// A browser submission whose challenge token is missing, or refused by the key's
    /// challenge provider (Turnstile, hCaptcha, reCAPTCHA).
    ChallengeFailed => ("challenge_failed", FORBIDDEN,
        "the form's challenge was not passed; complete it and send the form again"),
    /// No such route, user or key.
    NotFound => ("not_found", NOT_FOUND, "no such endpoint"),
    /// No such lead in this account (also another account's, or an id that is not one).
    LeadNotFound => ("lead_not_found", NOT_FOUND, "no such lead in this account"),
    /// No such webhook endpoint in this account (also another account's).
    WebhookNotFound => ("webhook_not_found", NOT_FOUND, "no such webhook endpoint in this account"),
    /// The route exists but not with this method (`Allow` says which).
    MethodNotAllowed => ("method_not_allowed", METHOD_NOT_ALLOWED,
        "this endpoint does not accept that method"),
    /// A request with the same `Idempotency-Key` is still running.
    IdempotencyKeyInUse => ("idempotency_key_in_use", CONFLICT,
        "a request with this Idempotency-Key is still being processed; retry shortly"),
    /// The account already has a lead with this `external_id` (`lead_id` names it).
    DuplicateLead => ("duplicate_lead", CONFLICT, "a lead with this external_id already exists in this account"),
    /// A user with this email exists.
    EmailTaken => ("email_taken", CONFLICT, "a user with this email already exists"),
    /// The account holds the most active keys allowed.
    TooManyKeys => ("too_many_keys", CONFLICT, "the account holds the most active keys allowed"),
    /// The account holds the most webhook endpoints allowed (50), however they were made.
    TooManyWebhooks => ("too_many_webhooks", CONFLICT,
        "the account holds the most webhook endpoints allowed (50); delete one first"),
    /// A remembered idempotent answer whose lead was erased since.
    LeadDeleted => ("lead_deleted", GONE, "the lead this Idempotency-Key created has been erased"),
    /// The body exceeds the size limit.
    PayloadTooLarge => ("payload_too_large", PAYLOAD_TOO_LARGE, "the request body is too large"),
    /// The body is not `application/json`.
    UnsupportedMediaType => ("unsupported_media_type", UNSUPPORTED_MEDIA_TYPE,
        "Content-Type must be application/json"),
    /// Field or query rules broken; every one is in `details`.
    ValidationFailed => ("validation_failed", UNPROCESSABLE_ENTITY, "field rules were broken; see details"),
    /// The `Idempotency-Key` was used with another body.
    IdempotencyKeyReused => ("idempotency_key_reused", UNPROCESSABLE_ENTITY,
        "this Idempotency-Key was used with a different request body in the last 24 hours"),
    /// Over the limit; `Retry-After` says when to come back.
    RateLimited => ("rate_limited", TOO_MANY_REQUESTS, "too many requests; retry later"),
    /// A fault of ours. Never carries `Retry-After`: retrying will not help by itself.
    InternalError => ("internal_error", INTERNAL_SERVER_ERROR, "an unexpected error occurred"),
    /// A store or dependency is unreachable; `Retry-After` says when to try again.
    ServiceUnavailable => ("service_unavailable", SERVICE_UNAVAILABLE,
        "the lead store is temporarily unavailable; retry shortly"),
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
