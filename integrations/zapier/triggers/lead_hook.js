// "New Lead" and "Updated Lead": instant triggers through a REST hook. Turning a Zap on
// subscribes its target URL (`POST /api/external/webhooks`, one event type; the signing
// secret is kept with the subscription), turning it off deletes it. Each delivery's
// signature is checked before the lead is handed on; the gateway's test event is not a lead.
'use strict';

const { baseUrl, signatureValid } = require('../lib');

/** A lead as the API answers it, for Zapier's field mapping before a real one arrives. */
const SAMPLE_LEAD = {
  id: '01939c7e-0000-7000-8000-000000000001',
  user_id: '01939c7e-0000-7000-8000-0000000000aa',
  name: 'Jane Doe',
  email: 'jane@example.com',
  phone: '15551234567',
  source: 'Website Form',
  industry: 'Technology',
  score: 8,
  status: 'new',
  monthly_revenue: 50000,
  budget: 10000,
  description: null,
  external_id: null,
  api_key_id: '01939c7e-0000-7000-8000-0000000000bb',
  created_at: '2026-12-01T10:15:02.123Z',
  updated_at: '2026-12-01T10:15:02.123Z',
  spam: null,
  attribution: null,
  consent: null,
};

const OUTPUT_FIELDS = [
  { key: 'id', label: 'Lead ID' },
  { key: 'name', label: 'Name' },
  { key: 'email', label: 'Email' },
  { key: 'phone', label: 'Phone' },
  { key: 'source', label: 'Source' },
  { key: 'industry', label: 'Industry' },
  { key: 'score', label: 'Score', type: 'integer' },
  { key: 'status', label: 'Status' },
  { key: 'monthly_revenue', label: 'Monthly revenue', type: 'number' },
  { key: 'budget', label: 'Budget', type: 'number' },
  { key: 'description', label: 'Notes' },
  { key: 'external_id', label: 'External ID' },
  { key: 'created_at', label: 'Created at', type: 'datetime' },
  { key: 'updated_at', label: 'Updated at', type: 'datetime' },
];

/**
 * A lead as the trigger hands it on. Zapier drops an item whose `id` it has seen, so an
 * update carries the lead's id and its `updated_at` as `id` (the lead's own id stays in
 * `lead_id`): every change of one lead triggers.
 */
const itemOf = (event, lead) =>
  event === 'lead.updated'
    ? { ...lead, id: `${lead.id}@${lead.updated_at}`, lead_id: lead.id }
    : { ...lead, lead_id: lead.id };

const hookTrigger = ({ key, event, label, description }) => ({
  key,
  noun: 'Lead',
  display: { label, description },
  operation: {
    type: 'hook',
    performSubscribe: async (z, bundle) => {
      const response = await z.request({
        url: `${baseUrl(bundle)}/api/external/webhooks`,
        method: 'POST',
        body: { url: bundle.targetUrl, events: [event], description: `Zapier: ${label}` },
      });
      // The secret is answered once, to a new subscription: kept to check deliveries.
      return { ...response.data.webhook, secret: response.data.secret || null };
    },
    performUnsubscribe: async (z, bundle) => {
      const id = encodeURIComponent(bundle.subscribeData.id);
      await z.request({ url: `${baseUrl(bundle)}/api/external/webhooks/${id}`, method: 'DELETE' });
      return {};
    },
    perform: (z, bundle) => {
      const secret = bundle.subscribeData && bundle.subscribeData.secret;
      const raw = bundle.rawRequest || {};
      if (secret && !signatureValid(secret, raw.headers, raw.content)) {
        throw new z.errors.Error(
          'This delivery does not carry a valid ConvertIQ signature: it was not sent by your gateway.',
          'InvalidSignature',
          401,
        );
      }
      const body = bundle.cleanedRequest || {};
      // `webhook.test` (Settings → Send test event) and other types carry no lead.
      if (body.type !== event || !body.data || !body.data.lead) {
        return [];
      }
      return [itemOf(event, body.data.lead)];
    },
    performList: async (z, bundle) => {
      const response = await z.request({
        url: `${baseUrl(bundle)}/api/external/leads`,
        params: { limit: 3 },
      });
      return response.data.leads.map((lead) => itemOf(event, lead));
    },
    sample: itemOf(event, SAMPLE_LEAD),
    outputFields: OUTPUT_FIELDS,
  },
});

module.exports = { hookTrigger, itemOf, SAMPLE_LEAD, OUTPUT_FIELDS };
