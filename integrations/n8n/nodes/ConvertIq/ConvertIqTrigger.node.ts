// The ConvertIQ Trigger: a webhook subscription made when the workflow is activated
// (an existing one for this URL and event is found first, so a re-activation makes no
// second), deleted when it is deactivated. Each delivery's Standard Webhooks signature
// is checked with the secret kept from the subscription before its lead starts the
// workflow; the gateway's test event starts nothing.
import { createHmac, timingSafeEqual } from 'crypto';

import type {
	IDataObject,
	IHookFunctions,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';

import type { NodeApiError } from 'n8n-workflow';

import { CREDENTIAL, convertIqRequest } from './shared';

/**
 * Whether `headers` carry a valid signature of `body` by `secret` (`whsec_...`) over
 * `{webhook-id}.{webhook-timestamp}.{body}`, made within five minutes of `now`.
 */
export function signatureValid(
	secret: string,
	headers: IDataObject,
	body: string,
	now: number = Math.floor(Date.now() / 1000),
): boolean {
	const header = (name: string): string | undefined => {
		const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
		return key === undefined ? undefined : String(headers[key]);
	};
	const id = header('webhook-id');
	const timestamp = header('webhook-timestamp');
	const signatures = header('webhook-signature');
	if (!secret || !id || !timestamp || !signatures || Math.abs(now - Number(timestamp)) > 300) {
		return false;
	}
	const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
	const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
	return signatures.split(' ').some((signature) => {
		const given = Buffer.from(signature.replace(/^v1,/, ''), 'base64');
		return given.length === expected.length && timingSafeEqual(given, expected);
	});
}

export class ConvertIqTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'ConvertIQ Trigger',
		name: 'convertIqTrigger',
		icon: 'fa:user-plus',
		group: ['trigger'],
		version: 1,
		subtitle: '={{$parameter["event"]}}',
		description: 'Starts the workflow when a lead is created or updated in ConvertIQ',
		defaults: { name: 'ConvertIQ Trigger' },
		inputs: [],
		outputs: ['main'],
		credentials: [{ name: CREDENTIAL, required: true }],
		webhooks: [{ name: 'default', httpMethod: 'POST', responseMode: 'onReceived', path: 'webhook' }],
		properties: [
			{
				displayName: 'Event',
				name: 'event',
				type: 'options',
				default: 'lead.created',
				options: [
					{ name: 'Lead Created', value: 'lead.created' },
					{ name: 'Lead Updated', value: 'lead.updated' },
					{ name: 'Lead Deleted', value: 'lead.deleted' },
				],
			},
		],
	};

	webhookMethods = {
		default: {
			async checkExists(this: IHookFunctions): Promise<boolean> {
				const url = this.getNodeWebhookUrl('default') as string;
				const event = this.getNodeParameter('event') as string;
				const data = this.getWorkflowStaticData('node');
				const answer = await convertIqRequest.call(this, 'GET', '/api/external/webhooks', undefined, { url });
				const found = ((answer.webhooks as IDataObject[]) ?? []).find(
					(hook) => JSON.stringify(hook.events) === JSON.stringify([event]) && !hook.filter,
				);
				// Ours only if we still hold its secret; else a new subscription is made.
				if (found && data.webhookId === found.id && data.secret) {
					return true;
				}
				return false;
			},
			async create(this: IHookFunctions): Promise<boolean> {
				const url = this.getNodeWebhookUrl('default') as string;
				const event = this.getNodeParameter('event') as string;
				let answer = await subscribe.call(this, url, event);
				if (!answer.secret) {
					// The same subscription existed (made before, its secret not kept here):
					// delete it and subscribe again, to hold a secret that checks deliveries.
					const existing = (answer.webhook as IDataObject).id;
					await convertIqRequest.call(this, 'DELETE', `/api/external/webhooks/${existing}`);
					answer = await subscribe.call(this, url, event);
				}
				const data = this.getWorkflowStaticData('node');
				data.webhookId = (answer.webhook as IDataObject).id;
				data.secret = answer.secret;
				return Boolean(answer.secret);
			},
			async delete(this: IHookFunctions): Promise<boolean> {
				const data = this.getWorkflowStaticData('node');
				if (data.webhookId) {
					try {
						await convertIqRequest.call(this, 'DELETE', `/api/external/webhooks/${data.webhookId}`);
					} catch (error) {
						// Gone already (404 webhook_not_found): what deactivation wanted.
						if ((error as NodeApiError).httpCode !== '404') {
							throw error;
						}
					}
				}
				delete data.webhookId;
				delete data.secret;
				return true;
			},
		},
	};

	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const data = this.getWorkflowStaticData('node');
		const request = this.getRequestObject() as unknown as { rawBody?: Buffer | string };
		const raw = request.rawBody === undefined ? JSON.stringify(this.getBodyData()) : request.rawBody.toString();
		if (!signatureValid(String(data.secret ?? ''), this.getHeaderData() as IDataObject, raw)) {
			const response = this.getResponseObject();
			response.status(401).json({ error: 'invalid signature' });
			return { noWebhookResponse: true };
		}
		const body = this.getBodyData() as IDataObject;
		const event = this.getNodeParameter('event') as string;
		const payload = (body.data ?? {}) as IDataObject;
		if (body.type !== event || !payload.lead) {
			return { workflowData: [] };
		}
		return { workflowData: [this.helpers.returnJsonArray([payload.lead as IDataObject])] };
	}
}

/** Subscribes `url` to `event`: the gateway's answer (a secret only for a new endpoint). */
async function subscribe(this: IHookFunctions, url: string, event: string): Promise<IDataObject> {
	return convertIqRequest.call(this, 'POST', '/api/external/webhooks', {
		url,
		events: [event],
		description: `n8n: ${event}`,
	});
}
