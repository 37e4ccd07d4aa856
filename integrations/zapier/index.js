// ConvertIQ for Zapier: the app's definition. Requests carry the key in `X-API-Key`;
// a refused request becomes an error that says what the gateway said (its message and,
// for a broken field, which one), a 429 a throttle Zapier retries after `Retry-After`.
'use strict';

const { version } = require('./package.json');
const { version: platformVersion } = require('zapier-platform-core');

const authentication = require('./authentication');
const newLead = require('./triggers/new_lead');
const updatedLead = require('./triggers/updated_lead');
const createLead = require('./creates/create_lead');
const updateLead = require('./creates/update_lead');
const findLead = require('./searches/find_lead');

const addApiKey = (request, z, bundle) => {
  request.headers = request.headers || {};
  request.headers['X-API-Key'] = bundle.authData.api_key;
  request.headers.Accept = 'application/json';
  return request;
};

const explainErrors = (response, z) => {
  if (response.status < 400) {
    return response;
  }
  let error = {};
  try {
    error = (response.data && response.data.error) || JSON.parse(response.content).error || {};
  } catch (_) {
    error = {};
  }
  const details = (error.details || []).map((d) => `${d.field}: ${d.message}`).join('; ');
  const message = [error.message || `ConvertIQ answered ${response.status}`, details]
    .filter(Boolean)
    .join(' — ');
  if (response.status === 429) {
    const wait = Number(response.getHeader('retry-after')) || 60;
    throw new z.errors.ThrottledError(message, wait);
  }
  throw new z.errors.Error(message, error.code || `http_${response.status}`, response.status);
};

module.exports = {
  version,
  platformVersion,
  authentication,
  beforeRequest: [addApiKey],
  afterResponse: [explainErrors],
  triggers: { [newLead.key]: newLead, [updatedLead.key]: updatedLead },
  creates: { [createLead.key]: createLead, [updateLead.key]: updateLead },
  searches: { [findLead.key]: findLead },
};
