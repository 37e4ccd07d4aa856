'use strict';

const { hookTrigger } = require('./lead_hook');

module.exports = hookTrigger({
  key: 'updated_lead',
  event: 'lead.updated',
  label: 'Updated Lead',
  description: "Triggers when a lead's fields change in ConvertIQ (its status, score, notes…).",
});
