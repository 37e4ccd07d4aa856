"""Creates a lead through a client that openapi-python-client generated from
openapi/openapi.json, unmodified, and reads the answers with its own models.

    python create_lead.py PACKAGE_DIR BASE_URL API_KEY
"""

import datetime
import sys

sys.path.insert(0, sys.argv[1])

from ciq_client import AuthenticatedClient  # noqa: E402
from ciq_client.api.leads import create_lead, list_leads  # noqa: E402
from ciq_client.models import (  # noqa: E402
    CreateLeadRequest,
    ErrorBody,
    LeadCreated,
    LeadInput,
    LeadStatus,
)

base_url, key = sys.argv[2], sys.argv[3]
client = AuthenticatedClient(base_url=base_url, token=key, prefix="", auth_header_name="X-API-Key")

# The reference's full Request Body, through the generated models.
body = CreateLeadRequest(
    lead=LeadInput(
        name="Jane Doe",
        email="jane@example.com",
        phone="15551234567",
        source="Website Form",
        industry="Technology",
        score=7,
        status=LeadStatus.CONTACTED,
        monthly_revenue=50000,
        budget=10000,
        description="Interested in AI calling",
    )
)
answer = create_lead.sync_detailed(client=client, body=body, idempotency_key="py-client-1")
assert answer.status_code == 201, (answer.status_code, answer.content)
created = answer.parsed
assert isinstance(created, LeadCreated), created
assert created.success is True
assert created.lead.email == "jane@example.com"
assert created.lead.status == LeadStatus.CONTACTED
assert created.lead.monthly_revenue == 50000
assert isinstance(created.lead.created_at, datetime.datetime), created.lead.created_at
assert answer.headers["x-ratelimit-remaining"].isdigit(), answer.headers

# A refused lead comes back as the error model, every broken rule named.
refused = create_lead.sync_detailed(
    client=client,
    body=CreateLeadRequest(lead=LeadInput(name="Jane", email="not-an-email", source="API", industry="Tech")),
)
assert refused.status_code == 422, refused.status_code
assert isinstance(refused.parsed, ErrorBody), refused.parsed
assert refused.parsed.error.code == "validation_failed"
assert [d.field for d in refused.parsed.error.details] == ["lead.email"]
# The listing's parameters are typed: `limit` an int, `status` the enum, times datetimes.
import inspect  # noqa: E402

params = inspect.signature(list_leads.sync_detailed).parameters
assert "int" in str(params["limit"].annotation), params["limit"]
listed = list_leads.sync_detailed(
    client=client,
    limit=1,
    status=LeadStatus.CONTACTED,
    created_after=created.lead.created_at - datetime.timedelta(seconds=1),
)
assert listed.status_code == 200, (listed.status_code, listed.content)
assert [lead.id for lead in listed.parsed.leads] == [created.lead.id], listed.parsed
print(f"python client: created lead {created.lead.id}; 422 parsed as ErrorBody; listed with an int limit")
