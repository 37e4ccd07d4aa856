// The app against a real gateway (`.ci/run` starts one and passes its address and a key
// with every permission): the definition passes Zapier's schema, the connection test,
// each action and the search, and the REST-hook triggers subscribing, checking a signed
// delivery and unsubscribing. No Zapier account or server is involved.
'use strict';

const crypto = require('crypto');
const zapier = require('zapier-platform-core');
const schema = require('zapier-platform-core/src/tools/schema');

const App = require('../index');
const { signatureValid } = require('../lib');

const appTester = zapier.createAppTester(App);

const base = process.env.CIQ_BASE_URL;
const key = process.env.CIQ_API_KEY;
if (!base || !key) {
  throw new Error('CIQ_BASE_URL and CIQ_API_KEY must name a running gateway and a key (.ci/run sets them)');
}
const authData = { base_url: base, api_key: key };
const unique = `${Date.now()}-${process.pid}`;

/** A call to the gateway outside the app (to see what the app did). */
const api = async (path, init = {}) => {
  const response = await fetch(`${base}${path}`, {
    ...init,
    headers: { 'X-API-Key': key, 'Content-Type': 'application/json', ...(init.headers || {}) },
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
};

/** A delivery as the gateway signs it (Standard Webhooks) with `secret`. */
const signed = (secret, body) => {
  const id = `msg_${unique}`;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const keyBytes = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signature = crypto.createHmac('sha256', keyBytes).update(`${id}.${timestamp}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
};

describe('the definition', () => {
  it("passes Zapier's app schema", () => {
    expect(schema.validateApp(schema.compileApp(App))).toEqual([]);
  });
});

describe('authentication', () => {
  it('tests the key with GET /api/external/me', async () => {
    const me = await appTester(App.authentication.test, { authData });
    expect(me.success).toBe(true);
    expect(me.account.email).toBe('ci@example.com');
    expect(me.key.scopes).toContain('webhooks:manage');
  });

  it('names what is wrong with a wrong key', async () => {
    const bundle = { authData: { ...authData, api_key: 'ciq_wrong' } };
    await expect(appTester(App.authentication.test, bundle)).rejects.toThrow(/401|API key/i);
  });
});

describe('actions and the search', () => {
  const email = `zap-${unique}@example.com`;
  const externalId = `zap-${unique}`;

  it('creates a lead, refuses a broken one naming the field, and finds it', async () => {
    const lead = await appTester(App.creates.create_lead.operation.perform, {
      authData,
      inputData: { name: 'Zap Person', email, source: 'Zapier', industry: 'Retail', score: 7, external_id: externalId },
    });
    expect(lead.id).toBeTruthy();
    expect(lead.score).toBe(7);
    await expect(
      appTester(App.creates.create_lead.operation.perform, {
        authData,
        inputData: { name: 'No Email', email: 'not-an-email', source: 'Zapier', industry: 'Retail' },
      }),
    ).rejects.toThrow(/lead\.email: must be a valid email address/);

    const byEmail = await appTester(App.searches.find_lead.operation.perform, {
      authData,
      inputData: { email: email.toUpperCase() },
    });
    expect(byEmail.map((l) => l.id)).toEqual([lead.id]);
    const byId = await appTester(App.searches.find_lead.operation.perform, {
      authData,
      inputData: { external_id: externalId },
    });
    expect(byId.map((l) => l.id)).toEqual([lead.id]);
    await expect(
      appTester(App.searches.find_lead.operation.perform, { authData, inputData: {} }),
    ).rejects.toThrow(/email or an External ID/);
  });

  it('updates the lead with an external id, and creates one that is new', async () => {
    const updated = await appTester(App.creates.update_lead.operation.perform, {
      authData,
      inputData: { external_id: externalId, status: 'qualified', score: 9 },
    });
    expect(updated).toMatchObject({ external_id: externalId, status: 'qualified', score: 9, created: false, name: 'Zap Person' });
    const created = await appTester(App.creates.update_lead.operation.perform, {
      authData,
      inputData: { external_id: `${externalId}-new`, name: 'New One', email: `new-${email}`, source: 'Zapier', industry: 'Retail' },
    });
    expect(created.created).toBe(true);
  });
});

describe('the triggers', () => {
  const targetUrl = `https://hooks.zapier.com/hooks/standard/${unique}/new-lead`;

  it('subscribe, hand on a signed delivery, refuse a forged one, and unsubscribe', async () => {
    const trigger = App.triggers.new_lead.operation;
    const subscribeData = await appTester(trigger.performSubscribe, { authData, targetUrl });
    expect(subscribeData.id).toBeTruthy();
    expect(subscribeData.events).toEqual(['lead.created']);
    expect(subscribeData.secret).toMatch(/^whsec_/);
    const listed = await api(`/api/external/webhooks?url=${encodeURIComponent(targetUrl)}`);
    expect(listed.body.webhooks.map((w) => w.id)).toEqual([subscribeData.id]);

    const lead = { id: 'lead-1', name: 'Hook Person', updated_at: '2026-12-05T10:00:00.000Z' };
    const content = JSON.stringify({ type: 'lead.created', timestamp: lead.updated_at, data: { lead } });
    const delivery = (headers) => ({
      authData,
      subscribeData,
      cleanedRequest: JSON.parse(content),
      rawRequest: { headers, content },
    });
    const items = await appTester(trigger.perform, delivery(signed(subscribeData.secret, content)));
    expect(items).toEqual([{ ...lead, lead_id: 'lead-1' }]);
    await expect(appTester(trigger.perform, delivery(signed(`whsec_${Buffer.from('another').toString('base64')}`, content)))).rejects.toThrow(/valid ConvertIQ signature/);
    // The gateway's test event carries no lead: nothing triggers.
    const test = JSON.stringify({ type: 'webhook.test', data: { message: 'hi' } });
    const none = await appTester(trigger.perform, {
      authData,
      subscribeData,
      cleanedRequest: JSON.parse(test),
      rawRequest: { headers: signed(subscribeData.secret, test), content: test },
    });
    expect(none).toEqual([]);

    await appTester(trigger.performUnsubscribe, { authData, subscribeData });
    const gone = await api(`/api/external/webhooks/${subscribeData.id}`);
    expect(gone.status).toBe(404);
  });

  it('list recent leads for the Zap editor, each update of a lead its own item', async () => {
    const recent = await appTester(App.triggers.new_lead.operation.performList, { authData });
    expect(recent.length).toBeGreaterThan(0);
    expect(recent.length).toBeLessThanOrEqual(3);
    expect(recent[0].id).toBe(recent[0].lead_id);
    const updates = await appTester(App.triggers.updated_lead.operation.performList, { authData });
    expect(updates[0].id).toBe(`${updates[0].lead_id}@${updates[0].updated_at}`);
  });
});

describe('signatures', () => {
  it('are refused when old, unsigned or made with another secret', () => {
    const secret = `whsec_${Buffer.from('k'.repeat(24)).toString('base64')}`;
    const headers = signed(secret, 'body');
    expect(signatureValid(secret, headers, 'body')).toBe(true);
    expect(signatureValid(secret, headers, 'other body')).toBe(false);
    expect(signatureValid(secret, {}, 'body')).toBe(false);
    const old = Number(headers['webhook-timestamp']) + 301;
    expect(signatureValid(secret, headers, 'body', old)).toBe(false);
  });
});
