'use strict';

const { hookTrigger } = require('./lead_hook');

module.exports = hookTrigger({
  key: 'new_lead',
  event: 'lead.created',
  label: 'New Lead',
  description: 'Triggers when a lead arrives in ConvertIQ (a form, an integration, an import).',
});
