// A thin stand-in for the n8n host, implementing the helper calls the nodes use, as n8n
// does them: the credential's `authenticate` headers put on every request (read from the
// credential's own definition), an HTTP error thrown with its status and body, the
// workflow's static data kept between calls. Requests go to a real gateway.
'use strict';

const { ConvertIqApi } = require('../dist/credentials/ConvertIqApi.credentials');

const credentialType = new ConvertIqApi();

/** `={{ expression }}` evaluated with `$credentials`, as n8n evaluates it. */
const resolve = (value, credentials) => {
  const match = /^=\{\{(.*)\}\}$/s.exec(String(value));
  if (!match) return value;
  return new Function('$credentials', `return (${match[1]});`)(credentials);
};

/** What n8n's `httpRequestWithAuthentication` does, over fetch. */
async function authenticatedRequest(credentials, options) {
  const headers = { 'Content-Type': 'application/json', ...(options.headers || {}) };
  for (const [name, value] of Object.entries(credentialType.authenticate.properties.headers)) {
    headers[name] = resolve(value, credentials);
  }
  const url = new URL(options.url);
  for (const [name, value] of Object.entries(options.qs || {})) {
    url.searchParams.set(name, String(value));
  }
  const response = await fetch(url, {
    method: options.method || 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!response.ok) {
    throw Object.assign(new Error(`Request failed with status code ${response.status}`), {
      httpCode: String(response.status),
      response: { status: response.status, data },
    });
  }
  return data;
}

/** A node's `this`: its parameters, the credential, the webhook's request if any. */
function context({ credentials, params = {}, staticData = {}, webhookUrl, request = {} }) {
  const answer = { status: 200, body: undefined };
  const ctx = {
    getCredentials: async (name) => {
      if (name !== credentialType.name) throw new Error(`no credential ${name}`);
      return credentials;
    },
    getNode: () => ({ id: '1', name: 'ConvertIQ', type: 'convertIq', typeVersion: 1, position: [0, 0], parameters: {} }),
    getNodeParameter: (name, _item, fallback) => (name in params ? params[name] : fallback),
    getInputData: () => [{ json: {} }],
    continueOnFail: () => false,
    getNodeWebhookUrl: () => webhookUrl,
    getWorkflowStaticData: () => staticData,
    getBodyData: () => request.body,
    getHeaderData: () => request.headers || {},
    getRequestObject: () => ({ rawBody: request.rawBody }),
    getResponseObject: () => ({
      status(code) {
        answer.status = code;
        return this;
      },
      json(body) {
        answer.body = body;
        return this;
      },
    }),
    helpers: {
      httpRequestWithAuthentication: async function (name, options) {
        return authenticatedRequest(await ctx.getCredentials(name), options);
      },
      returnJsonArray: (items) => items.map((json) => ({ json })),
    },
  };
  return { ctx, answer, staticData };
}

/** n8n's credential test: the credential's own test request, authenticated. */
async function testCredential(credentials) {
  const request = credentialType.test.request;
  const base = resolve(request.baseURL, credentials);
  return authenticatedRequest(credentials, { url: `${base}${request.url}`, method: 'GET' });
}

module.exports = { context, testCredential, credentialType };
