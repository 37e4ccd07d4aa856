// What both nodes share: the credential's name, the gateway's address, one request
// helper that turns a refusal into an error in the gateway's words.
import type {
	IDataObject,
	IExecuteFunctions,
	IHookFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	ILoadOptionsFunctions,
} from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

export const CREDENTIAL = 'convertIqApi';

type Caller = IExecuteFunctions | IHookFunctions | ILoadOptionsFunctions;

/** A call to the gateway with the node's credential: the JSON answer. */
export async function convertIqRequest(
	this: Caller,
	method: IHttpRequestMethods,
	path: string,
	body?: IDataObject,
	qs?: IDataObject,
): Promise<IDataObject> {
	const credentials = await this.getCredentials(CREDENTIAL);
	const base = String(credentials.baseUrl ?? '').replace(/\/+$/, '');
	const options: IHttpRequestOptions = {
		method,
		url: `${base}${path}`,
		json: true,
		headers: { Accept: 'application/json' },
	};
	if (body !== undefined) options.body = body;
	if (qs !== undefined) options.qs = qs;
	try {
		return ((await this.helpers.httpRequestWithAuthentication.call(this, CREDENTIAL, options)) ??
			{}) as IDataObject;
	} catch (error) {
		const answer = error as {
			response?: { body?: unknown; data?: unknown };
			cause?: { response?: { data?: unknown } };
		};
		const data = (answer.response?.body ?? answer.response?.data ?? answer.cause?.response?.data) as
			| { error?: { message?: string; details?: Array<{ field: string; message: string }> } }
			| undefined;
		const details = (data?.error?.details ?? []).map((d) => `${d.field}: ${d.message}`).join('; ');
		const message = [data?.error?.message, details].filter(Boolean).join(' — ');
		throw new NodeApiError(this.getNode(), error as never, message ? { message } : {});
	}
}
