-- pgbench: the same single-row INSERT the gateway makes for the reference body.
-- bench/run fills in {user_id} and {key_id}.
INSERT INTO bench_leads (id, user_id, api_key_id, name, email, phone, source, industry, score, status,
                         monthly_revenue_cents, budget_cents, description, created_at)
VALUES (gen_random_uuid(), '{user_id}', '{key_id}', 'Jane Doe', 'jane@example.com', '15551234567',
        'Website Form', 'Technology', 7, 'contacted', 5000000, 1000000, 'Interested in AI calling', now());
