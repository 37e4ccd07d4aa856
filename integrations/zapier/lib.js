// What every part of the app shares: where the gateway is, the lead's fields as Zapier
// asks for them, and how a webhook delivery is checked before it is trusted.
'use strict';

const crypto = require('crypto');

/** The gateway's address as the user typed it, without a trailing slash. */
const baseUrl = (bundle) => String(bundle.authData.base_url || '').replace(/\/+$/, '');

/** The lead statuses the API takes, in pipeline order. */
const STATUSES = ['new', 'contacted', 'qualified', 'lost'];

/**
 * The fields of a lead a Zap may send (the API's `lead` object), as input fields.
 * `required` lists the keys this action needs.
 */
const leadInputFields = (required) => [
  { key: 'name', label: 'Name', helpText: "Lead's full name.", required: required.includes('name') },
  { key: 'email', label: 'Email', helpText: "Lead's email address.", required: required.includes('email') },
  { key: 'phone', label: 'Phone', helpText: 'E.164 digits, e.g. 15551234567 (a leading +, spaces and dashes are removed).' },
  { key: 'source', label: 'Source', helpText: 'Where the lead came from, e.g. "Website Form".', required: required.includes('source') },
  { key: 'industry', label: 'Industry', required: required.includes('industry') },
  { key: 'score', label: 'Score', type: 'integer', helpText: 'A whole number from 1 to 10.' },
  { key: 'status', label: 'Status', choices: STATUSES },
  { key: 'monthly_revenue', label: 'Monthly revenue', type: 'number' },
  { key: 'budget', label: 'Budget', type: 'number' },
  { key: 'description', label: 'Notes', type: 'text' },
  {
    key: 'external_id',
    label: 'External ID',
    helpText: 'Your own id for the lead (e.g. the CRM record id), unique in your account.',
    required: required.includes('external_id'),
  },
];

/** The `lead` object of a body: the fields the Zap filled in, blanks left out. */
const leadOf = (inputData) => {
  const lead = {};
  for (const { key } of leadInputFields([])) {
    const value = inputData[key];
    if (value !== undefined && value !== null && value !== '') {
      lead[key] = value;
    }
  }
  return lead;
};

/**
 * Whether a delivery carries a valid Standard Webhooks signature made with `secret`
 * (`whsec_...`) over `{webhook-id}.{webhook-timestamp}.{body}`, signed within five
 * minutes of now. Any one of the space-separated signatures may match (a rotation).
 */
const signatureValid = (secret, headers, body, nowSeconds = Math.floor(Date.now() / 1000)) => {
  const header = (name) => {
    const found = Object.keys(headers || {}).find((k) => k.toLowerCase() === name);
    return found === undefined ? undefined : String(headers[found]);
  };
  const id = header('webhook-id');
  const timestamp = header('webhook-timestamp');
  const signatures = header('webhook-signature');
  if (!id || !timestamp || !signatures || !secret) {
    return false;
  }
  if (Math.abs(nowSeconds - Number(timestamp)) > 300) {
    return false;
  }
  const key = Buffer.from(String(secret).replace(/^whsec_/, ''), 'base64');
  const expected = crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(' ').some((signature) => {
    const given = Buffer.from(signature.replace(/^v1,/, ''), 'base64');
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
};

module.exports = { baseUrl, STATUSES, leadInputFields, leadOf, signatureValid };
