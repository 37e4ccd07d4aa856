// The ConvertIQ node: create a lead, create or update one by your own id (upsert), get
// one, find by email or external id, list the newest.
import type {
	IDataObject,
	IExecuteFunctions,
	INodeExecutionData,
	INodeProperties,
	INodeType,
	INodeTypeDescription,
} from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { CREDENTIAL, convertIqRequest } from './shared';

/** The lead fields a workflow may send, as n8n properties (names as in the API). */
const LEAD_FIELDS: INodeProperties[] = [
	{ displayName: 'Phone', name: 'phone', type: 'string', default: '', description: 'E.164 digits, e.g. 15551234567' },
	{ displayName: 'Score', name: 'score', type: 'number', default: 5, typeOptions: { minValue: 1, maxValue: 10 } },
	{
		displayName: 'Status',
		name: 'status',
		type: 'options',
		default: 'new',
		options: ['new', 'contacted', 'qualified', 'lost'].map((s) => ({ name: s, value: s })),
	},
	{ displayName: 'Monthly Revenue', name: 'monthly_revenue', type: 'number', default: 0 },
	{ displayName: 'Budget', name: 'budget', type: 'number', default: 0 },
	{ displayName: 'Notes', name: 'description', type: 'string', default: '', typeOptions: { rows: 3 } },
	{ displayName: 'External ID', name: 'external_id', type: 'string', default: '' },
	{ displayName: 'Name', name: 'name', type: 'string', default: '' },
	{ displayName: 'Email', name: 'email', type: 'string', placeholder: 'name@email.com', default: '' },
	{ displayName: 'Source', name: 'source', type: 'string', default: '' },
	{ displayName: 'Industry', name: 'industry', type: 'string', default: '' },
];

const required = (operation: string, name: string, displayName: string, extra: Partial<INodeProperties> = {}): INodeProperties => ({
	displayName,
	name,
	type: 'string',
	required: true,
	default: '',
	displayOptions: { show: { operation: [operation] } },
	...extra,
} as INodeProperties);

export class ConvertIq implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'ConvertIQ',
		name: 'convertIq',
		icon: 'fa:user-plus',
		group: ['transform'],
		version: 1,
		subtitle: '={{$parameter["operation"]}}',
		description: 'Create, update and find leads in ConvertIQ',
		defaults: { name: 'ConvertIQ' },
		inputs: ['main'],
		outputs: ['main'],
		credentials: [{ name: CREDENTIAL, required: true }],
		properties: [
			{
				displayName: 'Operation',
				name: 'operation',
				type: 'options',
				noDataExpression: true,
				default: 'create',
				options: [
					{ name: 'Create', value: 'create', action: 'Create a lead', description: 'Create a lead' },
					{ name: 'Create or Update', value: 'upsert', action: 'Create or update a lead by external ID', description: 'Update the lead with this external ID, or create it' },
					{ name: 'Get', value: 'get', action: 'Get a lead', description: 'Get a lead by its ID' },
					{ name: 'Find', value: 'find', action: 'Find leads', description: 'Find leads by email or external ID' },
					{ name: 'Get Many', value: 'list', action: 'Get many leads', description: 'The newest leads' },
				],
			},
			required('create', 'name', 'Name'),
			required('create', 'email', 'Email', { placeholder: 'name@email.com' }),
			required('create', 'source', 'Source'),
			required('create', 'industry', 'Industry'),
			required('upsert', 'external_id', 'External ID'),
			required('get', 'leadId', 'Lead ID'),
			{
				displayName: 'Find By',
				name: 'findBy',
				type: 'options',
				default: 'email',
				displayOptions: { show: { operation: ['find'] } },
				options: [
					{ name: 'Email', value: 'email' },
					{ name: 'External ID', value: 'external_id' },
				],
			},
			required('find', 'value', 'Value'),
			{
				displayName: 'Limit',
				name: 'limit',
				type: 'number',
				default: 50,
				typeOptions: { minValue: 1, maxValue: 100 },
				displayOptions: { show: { operation: ['list', 'find'] } },
				description: 'Max number of results to return',
			},
			{
				displayName: 'Additional Fields',
				name: 'additionalFields',
				type: 'collection',
				placeholder: 'Add Field',
				default: {},
				displayOptions: { show: { operation: ['create', 'upsert'] } },
				options: LEAD_FIELDS,
			},
		],
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const out: INodeExecutionData[] = [];
		for (let i = 0; i < items.length; i++) {
			const operation = this.getNodeParameter('operation', i) as string;
			try {
				const leads = await run.call(this, operation, i);
				out.push(...leads.map((lead) => ({ json: lead, pairedItem: { item: i } })));
			} catch (error) {
				if (this.continueOnFail()) {
					out.push({ json: { error: (error as Error).message }, pairedItem: { item: i } });
					continue;
				}
				throw error;
			}
		}
		return [out];
	}
}

/** One item's operation: the leads it answers. */
async function run(this: IExecuteFunctions, operation: string, i: number): Promise<IDataObject[]> {
	const lead = (): IDataObject => {
		const fields = { ...(this.getNodeParameter('additionalFields', i, {}) as IDataObject) };
		for (const name of ['name', 'email', 'source', 'industry', 'external_id']) {
			const value = this.getNodeParameter(name, i, '') as string;
			if (value !== '') fields[name] = value;
		}
		return fields;
	};
	switch (operation) {
		case 'create': {
			const answer = await convertIqRequest.call(this, 'POST', '/api/external/leads/create', { lead: lead() });
			return [answer.lead as IDataObject];
		}
		case 'upsert': {
			const answer = await convertIqRequest.call(this, 'POST', '/api/external/leads/upsert', { lead: lead() });
			return [{ ...(answer.lead as IDataObject), created: answer.created }];
		}
		case 'get': {
			const id = encodeURIComponent(this.getNodeParameter('leadId', i) as string);
			const answer = await convertIqRequest.call(this, 'GET', `/api/external/leads/${id}`);
			return [answer.lead as IDataObject];
		}
		case 'find': {
			const by = this.getNodeParameter('findBy', i) as string;
			const qs = { [by]: this.getNodeParameter('value', i) as string, limit: this.getNodeParameter('limit', i, 50) };
			const answer = await convertIqRequest.call(this, 'GET', '/api/external/leads', undefined, qs);
			return answer.leads as IDataObject[];
		}
		case 'list': {
			const qs = { limit: this.getNodeParameter('limit', i, 50) };
			const answer = await convertIqRequest.call(this, 'GET', '/api/external/leads', undefined, qs);
			return answer.leads as IDataObject[];
		}
		default:
			throw new NodeOperationError(this.getNode(), `Unknown operation "${operation}"`, { itemIndex: i });
	}
}
