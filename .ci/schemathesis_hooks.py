"""Schemathesis hooks for `.ci/schemathesis` (loaded through SCHEMATHESIS_HOOKS).

Every check runs, `positive_data_acceptance` included: a request the documents call
valid must be accepted. The documents state every rule a JSON Schema can state
(lengths, patterns, formats, ranges, required fields). A few rules depend on time,
on stored state or on another request, and no schema can state them; a refusal for
one of those, and only for those, is not held against the API. Each is listed here
with its reason; anything else a schema-valid request is refused for fails the run.
"""

import json
import uuid

import schemathesis

# A 422 whose error has this code, whatever the details.
STATEFUL_CODES = {
    # The generator reuses one Idempotency-Key value with different bodies; the API
    # refuses that as the Idempotency-Key draft says (a client sends a fresh key per
    # distinct request).
    "idempotency_key_reused",
}

# `validation_failed` details a schema cannot state: (operation or None for any,
# field, the start of the message), each with its reason.
UNSTATABLE_DETAILS = [
    # Only a cursor this API returned continues a list; it is opaque.
    (None, "cursor", "must be a next_cursor this API returned"),
    # Relative to the time of the request.
    (None, "expires_at", "must be in the future"),
    # Depends on the key's stored state (revoked or expired keys are not rolled).
    (None, "key_id", "the key is revoked; only an active key can be rolled"),
    (None, "key_id", "the key is expired; only an active key can be rolled"),
    # Across two fields (origins only with scopes exactly [leads:create]); the
    # generator combines them freely.
    (None, "allowed_origins", "allowed origins are only for keys whose only scope is leads:create"),
    # Across fields too: a visitor limit and a challenge are for browser keys (keys
    # with allowed origins) only.
    (None, "visitor_rate_limit_per_minute", "applies only to a browser key"),
    (None, "challenge", "applies only to a browser key"),
    # A challenge secret is trimmed, then must be non-empty without white space or
    # control characters: Unicode classes the document's regex dialect cannot name.
    (None, "challenge_secret", "is required with a challenge"),
    (None, "challenge_secret", "must not contain spaces or control characters"),
    # Amounts have at most 2 decimal places, but `multipleOf: 0.01` is not exact in
    # binary floating point (57 * 0.01 = 0.5700000000000001): validators would refuse
    # amounts the API takes, so the rule is stated in words only.
    (None, "lead.monthly_revenue", "must have at most 2 decimal places"),
    (None, "lead.budget", "must have at most 2 decimal places"),
    # An upsert that finds its lead follows the update rules, where status cannot be
    # cleared; one that creates takes null as the default. Which one depends on stored
    # leads.
    ("POST /api/external/leads/upsert", "lead.status", "cannot be cleared"),
    # A URL's host and port are checked by a URL parser (IDNA, IPv6 literals, ports up
    # to 65535): beyond what the document's pattern can say.
    (None, "lead.attribution.page_url", "must be an absolute http:// or https:// URL"),
    (None, "lead.attribution.referrer", "must be an absolute http:// or https:// URL"),
    # Attribution and consent are taken by an upsert that creates, refused by one that
    # finds its lead: which one depends on stored leads.
    ("POST /api/external/leads/upsert", "lead.attribution", "is recorded when the lead is created"),
    ("POST /api/external/leads/upsert", "lead.consent", "is recorded when the lead is created"),
    # A webhook URL is checked by a URL parser and the address rules (https, a host, no
    # user or password, no private address): beyond what a pattern can say.
    ("POST /api/external/webhooks", "url", "must "),
    ("POST /api/external/webhooks", "url", "points at "),
    ("POST /api/external/webhooks", "url", "is required"),
    ("GET /api/external/webhooks", "url", "must be an absolute URL"),
    # A usage window's rules are across `from` and `to` (before it, at most 1 440
    # buckets before it) and relative to the time of the request (minute buckets only
    # within the last 48 hours).
    *[
        (operation, "from", rule)
        for operation in [
            "GET /api/external/usage",
            "GET /admin/v1/keys/{key_id}/usage",
            "GET /admin/v1/users/{user_id}/usage",
        ]
        for rule in ["must be before to", "must be at most ", "must be within the last "]
    ],
]

# Conflicts that depend on stored state: (operation, code), each with its reason.
STATEFUL_CONFLICTS = {
    # 50 endpoints per account, however made: the generator subscribes many.
    ("POST /api/external/webhooks", "too_many_webhooks"),
}


def _error(response):
    try:
        return json.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError):
        return None


def _not_a_documented_uuid(case):
    """Whether a path parameter documented as `format: uuid` holds something else.

    The stateful phase infers links from values in responses and plugs them into path
    parameters without checking them against the parameter's schema: a request log
    entry's `path` (`/api/external/leads/create`) once became `PATCH
    /api/external/leads/{id}` with id `create` — `PATCH /api/external/leads/create`,
    which the API rightly answers 405 (that path takes POST only). Such a request is
    not schema-valid, so its refusal is not held against the API."""
    for parameter in case.operation.path_parameters:
        if parameter.definition.get("schema", {}).get("format") != "uuid":
            continue
        value = (case.path_parameters or {}).get(parameter.name)
        try:
            uuid.UUID(str(value))
        except ValueError:
            return True
    return False


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keep every failure but a schema-valid request refused for a rule listed above."""
    if failure.code == "ST202" and _not_a_documented_uuid(case):
        return False
    if failure.code == "ST202" and response.status_code == 409:
        error = _error(response) or {}
        return (case.operation.label, error.get("code")) not in STATEFUL_CONFLICTS
    if failure.code != "ST202" or response.status_code != 422:
        return True
    error = _error(response)
    if error is None:
        return True
    if error.get("code") in STATEFUL_CODES:
        return False
    details = error.get("details") or []
    operation = case.operation.label

    def unstatable(detail):
        return any(
            (op is None or op == operation)
            and detail.get("field") == field
            and (detail.get("message") or "").startswith(message)
            for op, field, message in UNSTATABLE_DETAILS
        )

    return not (error.get("code") == "validation_failed" and details and all(map(unstatable, details)))
