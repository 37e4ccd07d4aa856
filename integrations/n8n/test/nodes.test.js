// The package against a real gateway (`.ci/run` starts one and passes its address and a
// key with every permission) through test/harness.js: the credential's test, every
// operation of the ConvertIQ node, and the trigger's activation, deliveries and
// deactivation.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { describe, it } = require('node:test');

const { ConvertIq } = require('../dist/nodes/ConvertIq/ConvertIq.node');
const { ConvertIqTrigger, signatureValid } = require('../dist/nodes/ConvertIq/ConvertIqTrigger.node');
const { context, testCredential } = require('./harness');

const base = process.env.CIQ_BASE_URL;
const apiKey = process.env.CIQ_API_KEY;
if (!base || !apiKey) {
  throw new Error('CIQ_BASE_URL and CIQ_API_KEY must name a running gateway and a key (.ci/run sets them)');
}
const credentials = { baseUrl: `${base}/`, apiKey };
const unique = `${Date.now()}-${process.pid}`;

const run = async (params) => {
  const { ctx } = context({ credentials, params });
  const [items] = await new ConvertIq().execute.call(ctx);
  return items.map((item) => item.json);
};

const signed = (secret, body) => {
  const id = `msg_${unique}`;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signature = crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
};

const hooksFor = async (url) => {
  const response = await fetch(`${base}/api/external/webhooks?url=${encodeURIComponent(url)}`, {
    headers: { 'X-API-Key': apiKey },
  });
  return (await response.json()).webhooks;
};

describe('the credential', () => {
  it('is tested with GET /api/external/me, a trailing slash in the address or not', async () => {
    const me = await testCredential(credentials);
    assert.equal(me.account.email, 'ci@example.com');
    await assert.rejects(testCredential({ ...credentials, apiKey: 'ciq_wrong' }), /401/);
  });
});

describe('the ConvertIQ node', () => {
  const email = `n8n-${unique}@example.com`;
  const externalId = `n8n-${unique}`;

  it('creates, refuses in the gateway\'s words, upserts, gets, finds and lists leads', async () => {
    const [lead] = await run({
      operation: 'create',
      name: 'N8n Person',
      email,
      source: 'n8n',
      industry: 'Retail',
      additionalFields: { score: 6, external_id: externalId },
    });
    assert.ok(lead.id);
    assert.equal(lead.score, 6);
    await assert.rejects(
      run({ operation: 'create', name: 'Broken', email: 'not-an-email', source: 'n8n', industry: 'Retail' }),
      /lead\.email: must be a valid email address/,
    );
    const [updated] = await run({ operation: 'upsert', external_id: externalId, additionalFields: { status: 'qualified' } });
    assert.equal(updated.id, lead.id);
    assert.equal(updated.status, 'qualified');
    assert.equal(updated.created, false);
    const [got] = await run({ operation: 'get', leadId: lead.id });
    assert.equal(got.email, email);
    const found = await run({ operation: 'find', findBy: 'email', value: email.toUpperCase(), limit: 10 });
    assert.deepEqual(found.map((l) => l.id), [lead.id]);
    const byId = await run({ operation: 'find', findBy: 'external_id', value: externalId, limit: 10 });
    assert.deepEqual(byId.map((l) => l.id), [lead.id]);
    await run({ operation: 'create', name: 'Second', email: `2-${email}`, source: 'n8n', industry: 'Retail' });
    const listed = await run({ operation: 'list', limit: 1 });
    assert.equal(listed.length, 1, 'the limit holds');
    assert.equal(listed[0].email, `2-${email}`, 'newest first');
    await assert.rejects(run({ operation: 'get', leadId: '01939c7e-0000-7000-8000-000000000000' }), (error) => {
      assert.equal(error.httpCode, '404');
      assert.match(error.message, /no such lead/);
      return true;
    });
  });
});

describe('the ConvertIQ Trigger', () => {
  const webhookUrl = `https://n8n.example.com/webhook/${unique}/convertiq`;
  const trigger = new ConvertIqTrigger();
  const hooks = trigger.webhookMethods.default;

  it('subscribes on activation, checks each delivery, and deletes on deactivation', async () => {
    const staticData = {};
    const activation = () => context({ credentials, params: { event: 'lead.created' }, staticData, webhookUrl }).ctx;
    assert.equal(await hooks.checkExists.call(activation()), false);
    assert.equal(await hooks.create.call(activation()), true);
    assert.ok(staticData.webhookId);
    assert.match(staticData.secret, /^whsec_/);
    assert.equal(await hooks.checkExists.call(activation()), true);
    assert.deepEqual((await hooksFor(webhookUrl)).map((h) => h.id), [staticData.webhookId]);

    const lead = { id: 'lead-1', name: 'Hook Person' };
    const body = JSON.stringify({ type: 'lead.created', timestamp: '2026-12-05T10:00:00.000Z', data: { lead } });
    const deliver = (headers, text = body) =>
      context({
        credentials,
        params: { event: 'lead.created' },
        staticData,
        request: { body: JSON.parse(text), headers, rawBody: Buffer.from(text) },
      });
    let { ctx, answer } = deliver(signed(staticData.secret, body));
    assert.deepEqual(await trigger.webhook.call(ctx), { workflowData: [[{ json: lead }]] });
    ({ ctx, answer } = deliver(signed(`whsec_${Buffer.from('another key').toString('base64')}`, body)));
    assert.deepEqual(await trigger.webhook.call(ctx), { noWebhookResponse: true });
    assert.equal(answer.status, 401);
    const test = JSON.stringify({ type: 'webhook.test', data: { message: 'hi' } });
    ({ ctx } = deliver(signed(staticData.secret, test), test));
    assert.deepEqual(await trigger.webhook.call(ctx), { workflowData: [] });

    assert.equal(await hooks.delete.call(activation()), true);
    assert.deepEqual(await hooksFor(webhookUrl), []);
    assert.equal(staticData.webhookId, undefined);
  });

  it('takes over a subscription whose secret it lost, leaving one endpoint', async () => {
    const url = `${webhookUrl}-again`;
    const first = {};
    await hooks.create.call(context({ credentials, params: { event: 'lead.updated' }, staticData: first, webhookUrl: url }).ctx);
    // The workflow's data is lost (a re-import): the same URL is subscribed once more.
    const second = {};
    const again = context({ credentials, params: { event: 'lead.updated' }, staticData: second, webhookUrl: url }).ctx;
    assert.equal(await hooks.checkExists.call(again), false);
    assert.equal(await hooks.create.call(again), true);
    assert.match(second.secret, /^whsec_/);
    assert.deepEqual((await hooksFor(url)).map((h) => h.id), [second.webhookId]);
    // Deactivating after the endpoint was deleted elsewhere is not an error.
    await hooks.delete.call(again);
    assert.equal(await hooks.delete.call(context({ credentials, params: {}, staticData: first, webhookUrl: url }).ctx), true);
  });

  it('checks signatures by the Standard Webhooks rules', () => {
    const secret = `whsec_${Buffer.from('k'.repeat(24)).toString('base64')}`;
    const headers = signed(secret, 'body');
    assert.equal(signatureValid(secret, headers, 'body'), true);
    assert.equal(signatureValid(secret, headers, 'tampered'), false);
    assert.equal(signatureValid(secret, {}, 'body'), false);
    assert.equal(signatureValid(secret, headers, 'body', Number(headers['webhook-timestamp']) + 301), false);
  });
});
