// A ConvertIQ key and the gateway's address. Every request carries the key in
// `X-API-Key`; n8n's "Test" button calls `GET /api/external/me`.
import type {
	IAuthenticateGeneric,
	ICredentialTestRequest,
	ICredentialType,
	INodeProperties,
} from 'n8n-workflow';

export class ConvertIqApi implements ICredentialType {
	name = 'convertIqApi';

	displayName = 'ConvertIQ API';

	documentationUrl = 'https://github.com/convertiq/ciq-gateway/blob/main/docs/integrations.md#n8n';

	properties: INodeProperties[] = [
		{
			displayName: 'ConvertIQ Address',
			name: 'baseUrl',
			type: 'string',
			default: '',
			placeholder: 'https://api.example.com',
			required: true,
			description: 'Where your ConvertIQ gateway answers',
		},
		{
			displayName: 'API Key',
			name: 'apiKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			required: true,
			description:
				'A ciq_ key from Settings → API keys with the permissions the workflow needs (read, create, change, webhooks for the trigger)',
		},
	];

	authenticate: IAuthenticateGeneric = {
		type: 'generic',
		properties: {
			headers: {
				'X-API-Key': '={{$credentials.apiKey}}',
			},
		},
	};

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.baseUrl.replace(/\\/+$/, "")}}',
			url: '/api/external/me',
		},
	};
}
