// Creates a lead through openapi-fetch typed by what openapi-typescript generated from
// openapi/openapi.json, unmodified; compiled with `tsc --strict`, so the generated
// models are what the answers are read with.
//
//     node create_lead.js BASE_URL API_KEY
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

type Lead = components["schemas"]["Lead"];
type ErrorBody = components["schemas"]["ErrorBody"];

function check(condition: boolean, what: string): void {
  if (!condition) {
    console.error(`typescript client: ${what}`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const [baseUrl, key] = process.argv.slice(2);
  const client = createClient<paths>({ baseUrl, headers: { "X-API-Key": key } });
  const { data, error, response } = await client.POST("/api/external/leads/create", {
    body: {
      lead: {
        name: "Jane Doe",
        email: "jane@example.com",
        phone: "15551234567",
        source: "API",
        industry: "Technology",
      },
    },
    params: { header: { "Idempotency-Key": "ts-client-1" } },
  });
  check(response.status === 201, `status ${response.status}: ${JSON.stringify(error)}`);
  check(data !== undefined, "no body");
  const lead: Lead = data!.lead;
  check(data!.success === true, "success is not true");
  check(lead.email === "jane@example.com", `email ${lead.email}`);
  check(lead.status === "new", `status ${lead.status}`);
  check(!Number.isNaN(Date.parse(lead.created_at)), `created_at ${lead.created_at}`);

  const refused = await client.POST("/api/external/leads/create", {
    body: { lead: { name: "Jane", email: "not-an-email", source: "API", industry: "Tech" } },
  });
  check(refused.response.status === 422, `status ${refused.response.status}`);
  const body: ErrorBody | undefined = refused.error;
  check(body?.error.code === "validation_failed", `code ${body?.error.code}`);
  check(body?.error.details[0]?.field === "lead.email", "the broken rule is named");
  console.log(`typescript client: created lead ${lead.id}; 422 read as ErrorBody`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
