// "Update Lead": an upsert by your own id (`POST /api/external/leads/upsert`): the lead
// with this External ID gets the fields filled in; without one, a whole lead is created.
'use strict';

const { baseUrl, leadInputFields, leadOf } = require('../lib');
const { SAMPLE_LEAD, OUTPUT_FIELDS } = require('../triggers/lead_hook');

module.exports = {
  key: 'update_lead',
  noun: 'Lead',
  display: {
    label: 'Update Lead',
    description:
      'Updates the lead with an External ID (creates it when there is none: then name, email, source and industry are needed).',
  },
  operation: {
    inputFields: leadInputFields(['external_id']),
    perform: async (z, bundle) => {
      const response = await z.request({
        url: `${baseUrl(bundle)}/api/external/leads/upsert`,
        method: 'POST',
        body: { lead: leadOf(bundle.inputData) },
      });
      return { ...response.data.lead, created: response.data.created };
    },
    sample: { ...SAMPLE_LEAD, external_id: 'crm-4711', created: false },
    outputFields: [...OUTPUT_FIELDS, { key: 'created', label: 'Created (not updated)', type: 'boolean' }],
  },
};
