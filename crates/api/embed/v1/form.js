/*
 * ConvertIQ embed script, version 1: turns a plain HTML form into a lead form.
 *
 *   <script src="https://GATEWAY/embed/v1/form.js" integrity="sha384-…"
 *           crossorigin="anonymous" defer></script>
 *   <form data-ciq-key="ciq_…">
 *     <input name="name" required> <input name="email" type="email" required> …
 *     <button type="submit">Send</button>
 *   </form>
 *
 * What it does, per form with a data-ciq-key attribute:
 * - inputs named like lead fields (name, email, phone, source, industry, score,
 *   status, monthly_revenue, budget, description, external_id) become the lead;
 *   data-ciq-source and data-ciq-industry give source and industry when no input does
 *   (source defaults to "Website Form"); a checkbox named "consent" becomes
 *   lead.consent with the words of its label;
 * - attribution: utm_* and ad click ids of the page's address (or of the page the
 *   visitor landed on earlier in the session), the page's address with only those
 *   parameters kept, and the referrer;
 * - a honeypot input it adds itself, which people never see and bots fill in;
 * - the challenge widget's token (Turnstile, hCaptcha, reCAPTCHA) as X-Challenge-Token,
 *   and the widget reset after any refusal;
 * - one Idempotency-Key per submission (a double click, or a retry after a network
 *   error, makes one lead), the submit buttons disabled while sending;
 * - success and errors in plain words in the page, each field's error beside its input
 *   (class "ciq-error", linked with aria-describedby), the rest in a status line
 *   (the form's [data-ciq-status] element, or one added after the form);
 * - events on the form: "ciq:success" (detail: status, lead) and "ciq:error" (detail:
 *   status, code, message, fields); calling preventDefault() on either keeps the
 *   script's own message out of the page.
 *
 * Attributes: data-ciq-key (required), data-ciq-endpoint (default: the create
 * endpoint of the gateway this script came from), data-ciq-source,
 * data-ciq-industry, data-ciq-success (the thank-you text).
 *
 * No dependency, no global but window.ConvertIQForms, no inline style or script (it
 * runs under a strict Content-Security-Policy). Released bytes never change: a new
 * version ships at /embed/v2/.
 */
(function () {
  "use strict";

  var VERSION = "1";
  var LEAD_FIELDS = [
    "name", "email", "phone", "source", "industry", "score", "status",
    "monthly_revenue", "budget", "description", "external_id"
  ];
  var NUMBER_FIELDS = ["score", "monthly_revenue", "budget"];
  var ATTRIBUTION_PARAMS = [
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
    "gclid", "fbclid", "msclkid"
  ];
  var TOKEN_INPUTS = ["cf-turnstile-response", "h-captcha-response", "g-recaptcha-response"];
  var HONEYPOT_NAME = "ciq_website";
  var STORED_ATTRIBUTION = "ciq:attribution";
  var DEFAULT_SOURCE = "Website Form";
  var SUCCESS_TEXT = "Thank you! We received your message and will be in touch.";

  // The gateway this script was loaded from: the default endpoint's origin.
  var scriptOrigin = (function () {
    var script = document.currentScript;
    try {
      return script && script.src ? new URL(script.src).origin : null;
    } catch (err) {
      return null;
    }
  })();

  // ---- attribution -------------------------------------------------------------

  function httpUrl(text) {
    try {
      var url = new URL(text);
      return url.protocol === "http:" || url.protocol === "https:" ? url : null;
    } catch (err) {
      return null;
    }
  }

  // The attribution parameters of the current address, the address with only them
  // kept (no other query, no fragment), and the referrer.
  function attributionHere() {
    var here = new URL(window.location.href);
    var found = {};
    var kept = new URLSearchParams();
    ATTRIBUTION_PARAMS.forEach(function (name) {
      var value = here.searchParams.get(name);
      if (value && value.trim()) {
        found[name] = value.trim().slice(0, 255);
        kept.set(name, found[name]);
      }
    });
    var query = kept.toString();
    var page = here.origin + here.pathname + (query ? "?" + query : "");
    if (httpUrl(page)) {
      found.page_url = page.slice(0, 2048);
    }
    var referrer = httpUrl(document.referrer);
    if (referrer) {
      found.referrer = referrer.href.slice(0, 2048);
    }
    return found;
  }

  function hasCampaign(attribution) {
    return ATTRIBUTION_PARAMS.some(function (name) {
      return attribution[name];
    });
  }

  function readStored() {
    try {
      return JSON.parse(window.sessionStorage.getItem(STORED_ATTRIBUTION) || "null");
    } catch (err) {
      return null;
    }
  }

  // First touch within the visit: the landing page's campaign is kept for the form a
  // few pages later (when this script is on the landing page too).
  function rememberLanding() {
    var here = attributionHere();
    if (hasCampaign(here) && !readStored()) {
      try {
        window.sessionStorage.setItem(STORED_ATTRIBUTION, JSON.stringify(here));
      } catch (err) {
        // Storage refused (private mode, quota): this page's own address still counts.
      }
    }
  }

  // This page's campaign if it has one, else the landing page's; the page is always
  // this one (where the form is).
  function attributionForSubmission() {
    var here = attributionHere();
    if (hasCampaign(here)) {
      return here;
    }
    var landing = readStored() || {};
    var merged = {};
    ATTRIBUTION_PARAMS.forEach(function (name) {
      if (typeof landing[name] === "string") {
        merged[name] = landing[name];
      }
    });
    if (here.page_url) {
      merged.page_url = here.page_url;
    }
    var referrer = typeof landing.referrer === "string" ? landing.referrer : here.referrer;
    if (referrer) {
      merged.referrer = referrer;
    }
    return merged;
  }

  // ---- the form ----------------------------------------------------------------

  function addHoneypot(form) {
    if (form.querySelector('[name="' + HONEYPOT_NAME + '"]')) {
      return;
    }
    var wrapper = document.createElement("div");
    wrapper.setAttribute("aria-hidden", "true");
    // Set through the CSS object model, which a Content-Security-Policy allows.
    wrapper.style.position = "absolute";
    wrapper.style.left = "-10000px";
    wrapper.style.width = "1px";
    wrapper.style.height = "1px";
    wrapper.style.overflow = "hidden";
    var input = document.createElement("input");
    input.type = "text";
    input.name = HONEYPOT_NAME;
    input.setAttribute("autocomplete", "off");
    input.setAttribute("tabindex", "-1");
    input.setAttribute("aria-hidden", "true");
    wrapper.appendChild(input);
    form.appendChild(wrapper);
  }

  function labelText(form, input) {
    var label = input.id ? form.querySelector('label[for="' + input.id + '"]') : null;
    label = label || input.closest("label");
    var text = label ? label.textContent : input.getAttribute("aria-label") || "";
    return text.replace(/\s+/g, " ").trim();
  }

  // The lead the form holds now.
  function leadOf(form) {
    var lead = {};
    LEAD_FIELDS.forEach(function (name) {
      var input = form.elements.namedItem(name);
      if (!input) {
        return;
      }
      var value = (input.value || "").trim();
      if (!value) {
        return;
      }
      if (NUMBER_FIELDS.indexOf(name) >= 0 && /^-?\d+(\.\d+)?$/.test(value)) {
        lead[name] = Number(value);
      } else {
        lead[name] = value;
      }
    });
    if (!lead.source) {
      lead.source = form.getAttribute("data-ciq-source") || DEFAULT_SOURCE;
    }
    if (!lead.industry && form.getAttribute("data-ciq-industry")) {
      lead.industry = form.getAttribute("data-ciq-industry");
    }
    var consent = form.elements.namedItem("consent");
    if (consent && consent.type === "checkbox") {
      lead.consent = { text: labelText(form, consent), granted: consent.checked };
    }
    var attribution = attributionForSubmission();
    if (Object.keys(attribution).length) {
      lead.attribution = attribution;
    }
    return lead;
  }

  function challengeToken(form) {
    for (var i = 0; i < TOKEN_INPUTS.length; i++) {
      var input = form.querySelector('[name="' + TOKEN_INPUTS[i] + '"]');
      if (input && input.value) {
        return input.value;
      }
    }
    return null;
  }

  function resetChallenge() {
    ["turnstile", "hcaptcha", "grecaptcha"].forEach(function (name) {
      var widget = window[name];
      if (widget && typeof widget.reset === "function") {
        try {
          widget.reset();
        } catch (err) {
          // A page without a rendered widget of that kind.
        }
      }
    });
  }

  function newIdempotencyKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return "ciq-form-" + window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return "ciq-form-" + Array.prototype.map.call(bytes, function (b) {
      return (b + 256).toString(16).slice(1);
    }).join("");
  }

  // ---- messages ----------------------------------------------------------------

  function statusLine(form) {
    var line = form.querySelector("[data-ciq-status]");
    if (!line && form.nextElementSibling && form.nextElementSibling.hasAttribute("data-ciq-status")) {
      line = form.nextElementSibling;
    }
    if (!line) {
      line = document.createElement("p");
      line.setAttribute("data-ciq-status", "");
      form.insertAdjacentElement("afterend", line);
    }
    line.setAttribute("role", "status");
    line.setAttribute("aria-live", "polite");
    return line;
  }

  function clearErrors(form) {
    Array.prototype.forEach.call(form.querySelectorAll(".ciq-error"), function (node) {
      node.remove();
    });
    Array.prototype.forEach.call(form.querySelectorAll('[aria-invalid="true"]'), function (input) {
      input.removeAttribute("aria-invalid");
      var described = (input.getAttribute("aria-describedby") || "")
        .split(" ")
        .filter(function (id) {
          return id && id.indexOf("ciq-error-") !== 0;
        })
        .join(" ");
      if (described) {
        input.setAttribute("aria-describedby", described);
      } else {
        input.removeAttribute("aria-describedby");
      }
    });
  }

  // The input a field path of an error names: lead.email → [name=email],
  // lead.consent.* → the consent checkbox; attribution has no input.
  function inputFor(form, path) {
    var parts = path.split(".");
    if (parts[0] === "lead" && parts[1]) {
      var input = form.elements.namedItem(parts[1]);
      return input && input.nodeType === 1 && input.type !== "hidden" ? input : null;
    }
    return null;
  }

  var PLAIN = {
    "is required": "is required",
    "must not be empty": "is required",
    "must be a valid email address": "must be a valid email address, like name@example.com"
  };

  // An API rule in words for people: "Email must be a valid email address, …".
  function plainMessage(form, input, path, message) {
    var label = input ? labelText(form, input) : path.replace(/^lead\./, "").replace(/_/g, " ");
    // "Phone (optional) *:" reads as "Phone".
    label = label.replace(/\([^)]*\)/g, " ").replace(/[\s*:]+$/, "").replace(/\s+/g, " ").trim() ||
      "This field";
    if (/^phone$/.test(input ? input.name : "") && !PLAIN[message]) {
      return label + " must be a phone number with 8 to 15 digits, e.g. +1 555 123 4567";
    }
    if (input && input.name === "consent") {
      return "Please tick the box to let us contact you";
    }
    return label + " " + (PLAIN[message] || message);
  }

  function showFieldError(form, input, text, index) {
    var note = document.createElement("span");
    note.className = "ciq-error";
    note.id = "ciq-error-" + (input.id || input.name) + "-" + index;
    note.textContent = text;
    input.setAttribute("aria-invalid", "true");
    var described = input.getAttribute("aria-describedby");
    input.setAttribute("aria-describedby", (described ? described + " " : "") + note.id);
    var label = input.type === "checkbox" ? input.closest("label") : null;
    (label || input).insertAdjacentElement("afterend", note);
  }

  function wait(seconds) {
    if (!seconds) {
      return "in a minute";
    }
    return seconds < 60 ? "in " + seconds + " seconds" : "in " + Math.ceil(seconds / 60) + " minutes";
  }

  // What people read for an answer that is not a success.
  function refusalText(status, code, retryAfter) {
    if (status === 422) {
      return "Please check the highlighted fields and send again.";
    }
    if (status === 429) {
      return "Too many messages were sent from your network. Please try again " + wait(retryAfter) + ".";
    }
    if (code === "challenge_failed") {
      return "Please complete the check above, then send again.";
    }
    if (code === "origin_not_allowed" || code === "invalid_api_key" || code === "insufficient_scope") {
      return "This form cannot send messages right now. Please contact us another way.";
    }
    if (status === 0 || status >= 500) {
      return "We could not send your message. Please try again in a moment.";
    }
    return "We could not send your message. Please check the form and try again.";
  }

  // ---- submitting --------------------------------------------------------------

  function endpointOf(form) {
    var given = form.getAttribute("data-ciq-endpoint");
    if (given) {
      return given;
    }
    return scriptOrigin ? scriptOrigin + "/api/external/leads/create" : null;
  }

  function setBusy(form, busy) {
    form.setAttribute("aria-busy", busy ? "true" : "false");
    Array.prototype.forEach.call(
      form.querySelectorAll('button[type="submit"], button:not([type]), input[type="submit"]'),
      function (button) {
        button.disabled = busy;
      }
    );
  }

  function announce(form, name, detail) {
    var event = new CustomEvent(name, { bubbles: true, cancelable: true, detail: detail });
    return form.dispatchEvent(event);
  }

  function attach(form) {
    if (form.__ciqForm) {
      return;
    }
    form.__ciqForm = true;
    addHoneypot(form);
    var sending = false;
    // The submission not yet answered with success: a resend of the same lead keeps
    // its Idempotency-Key, so a retry after a network error makes one lead.
    var pending = null;

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (sending) {
        return;
      }
      var endpoint = endpointOf(form);
      var key = form.getAttribute("data-ciq-key");
      var status = statusLine(form);
      clearErrors(form);
      if (!endpoint || !key) {
        status.textContent = "This form cannot send messages right now. Please contact us another way.";
        return;
      }
      var honeypot = form.elements.namedItem(HONEYPOT_NAME);
      var body = JSON.stringify({
        lead: leadOf(form),
        honeypot: honeypot ? honeypot.value : ""
      });
      if (!pending || pending.body !== body) {
        pending = { body: body, key: newIdempotencyKey() };
      }
      var headers = {
        "Content-Type": "application/json",
        "X-API-Key": key,
        "Idempotency-Key": pending.key,
        "Prefer": "respond-async"
      };
      var token = challengeToken(form);
      if (token) {
        headers["X-Challenge-Token"] = token;
      }
      sending = true;
      setBusy(form, true);
      status.removeAttribute("data-ciq-outcome");
      status.textContent = "Sending…";
      fetch(endpoint, { method: "POST", mode: "cors", headers: headers, body: body })
        .then(function (response) {
          return response.text().then(function (text) {
            var answer = null;
            try {
              answer = JSON.parse(text);
            } catch (err) {
              answer = null;
            }
            return { status: response.status, answer: answer, headers: response.headers };
          });
        }, function () {
          return { status: 0, answer: null, headers: null };
        })
        .then(function (result) {
          sending = false;
          setBusy(form, false);
          if (result.status === 201 || result.status === 202) {
            pending = null;
            var lead = result.answer && result.answer.lead ? result.answer.lead : null;
            var shown = announce(form, "ciq:success", { status: result.status, lead: lead });
            status.setAttribute("data-ciq-outcome", "success");
            status.textContent = shown ? form.getAttribute("data-ciq-success") || SUCCESS_TEXT : "";
            form.reset();
            resetChallenge();
            return;
          }
          var error = result.answer && result.answer.error ? result.answer.error : {};
          var details = Array.isArray(error.details) ? error.details : [];
          if (result.status !== 0 && result.status < 500 && result.status !== 429) {
            // Refused for good (a new challenge token, or fixed fields, make a new
            // submission): the next attempt gets a key of its own.
            pending = null;
          }
          var retryAfter = result.headers ? parseInt(result.headers.get("Retry-After") || "", 10) : NaN;
          var fields = details.map(function (detail) {
            return { field: detail.field, message: detail.message };
          });
          var shown = announce(form, "ciq:error", {
            status: result.status,
            code: error.code || (result.status === 0 ? "network_error" : null),
            message: error.message || null,
            fields: fields
          });
          resetChallenge();
          status.setAttribute("data-ciq-outcome", "error");
          if (!shown) {
            status.textContent = "";
            return;
          }
          var elsewhere = [];
          var first = null;
          details.forEach(function (detail, index) {
            var input = inputFor(form, String(detail.field || ""));
            var text = plainMessage(form, input, String(detail.field || ""), String(detail.message || ""));
            if (input) {
              showFieldError(form, input, text, index);
              first = first || input;
            } else {
              elsewhere.push(text);
            }
          });
          var summary = refusalText(result.status, error.code, isNaN(retryAfter) ? 0 : retryAfter);
          status.textContent = [summary].concat(elsewhere).join(" ");
          if (first) {
            first.focus();
          }
        });
    });
  }

  function attachAll() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-ciq-key]"), attach);
  }

  rememberLanding();
  window.ConvertIQForms = { version: VERSION, attach: attach };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", attachAll);
  } else {
    attachAll();
  }
})();
