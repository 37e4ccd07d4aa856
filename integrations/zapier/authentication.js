// A ConvertIQ key and the gateway's address; the connection test is `GET /api/external/me`,
// which any key (not a browser key) may call without spending its rate limit.
'use strict';

const { baseUrl } = require('./lib');

const test = async (z, bundle) => {
  const response = await z.request({ url: `${baseUrl(bundle)}/api/external/me` });
  return response.data;
};

module.exports = {
  type: 'custom',
  fields: [
    {
      key: 'base_url',
      label: 'ConvertIQ address',
      required: true,
      type: 'string',
      helpText: 'Where your ConvertIQ gateway answers, e.g. `https://api.example.com`.',
    },
    {
      key: 'api_key',
      label: 'API key',
      required: true,
      type: 'password',
      helpText:
        'A `ciq_` key from Settings → API keys with the permissions create, read, change and webhooks.',
    },
  ],
  test,
  connectionLabel: '{{json.account.email}} ({{json.key.name}})',
};
