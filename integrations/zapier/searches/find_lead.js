// "Find Lead": by email (any case) or by External ID, newest first.
'use strict';

const { baseUrl } = require('../lib');
const { SAMPLE_LEAD, OUTPUT_FIELDS } = require('../triggers/lead_hook');

module.exports = {
  key: 'find_lead',
  noun: 'Lead',
  display: { label: 'Find Lead', description: 'Finds a lead by its email or its External ID.' },
  operation: {
    inputFields: [
      { key: 'email', label: 'Email', helpText: 'Any case.' },
      { key: 'external_id', label: 'External ID' },
    ],
    perform: async (z, bundle) => {
      const { email, external_id: externalId } = bundle.inputData;
      if (!email && !externalId) {
        throw new z.errors.Error('Give an email or an External ID to find a lead by.', 'InvalidInput', 400);
      }
      const params = { limit: 10 };
      if (email) params.email = email;
      if (externalId) params.external_id = externalId;
      const response = await z.request({ url: `${baseUrl(bundle)}/api/external/leads`, params });
      return response.data.leads;
    },
    sample: SAMPLE_LEAD,
    outputFields: OUTPUT_FIELDS,
  },
};
