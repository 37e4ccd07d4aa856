// "Create Lead": `POST /api/external/leads/create` with the fields the Zap filled in.
'use strict';

const { baseUrl, leadInputFields, leadOf } = require('../lib');
const { SAMPLE_LEAD, OUTPUT_FIELDS } = require('../triggers/lead_hook');

module.exports = {
  key: 'create_lead',
  noun: 'Lead',
  display: { label: 'Create Lead', description: 'Creates a lead in ConvertIQ.' },
  operation: {
    inputFields: leadInputFields(['name', 'email', 'source', 'industry']),
    perform: async (z, bundle) => {
      const response = await z.request({
        url: `${baseUrl(bundle)}/api/external/leads/create`,
        method: 'POST',
        body: { lead: leadOf(bundle.inputData) },
      });
      return response.data.lead;
    },
    sample: SAMPLE_LEAD,
    outputFields: OUTPUT_FIELDS,
  },
};
