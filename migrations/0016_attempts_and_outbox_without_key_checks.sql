-- Two rows written on every dispatched call paid for foreign-key checks that cannot fail:
-- 1. `call_attempts` → `scheduled_calls` and → `customers`: every insert takes its call,
--    company and customer from the scheduled call's row in the same statement (the dial
--    intent joins the row it holds under its lease; `record_attempt` updates that row
--    first), so both referenced rows exist; each check was a lookup plus a row lock (a
--    write to the locked row's page, and WAL) on the call and on the customer.
-- 2. `webhook_outbox` → `companies`: the result's outbox insert joins the company row for
--    its webhook URL; the check locked that one row for every event of the company, from
--    every worker at once.
-- Nothing deletes calls, customers or companies, so no attempt or event can outlive what
-- it names. Measured with the dispatch bench (`OUTDIAL_BENCH_SQL` A/B, 20,000 calls, two
-- rounds): Postgres CPU per call 593 / 653 → 547 / 521 µs with one worker process,
-- 665 / 622 → 593 / 608 µs with four.
ALTER TABLE call_attempts DROP CONSTRAINT call_attempts_scheduled_call_id_fkey;
ALTER TABLE call_attempts DROP CONSTRAINT call_attempts_company_id_customer_id_fkey;
ALTER TABLE webhook_outbox DROP CONSTRAINT webhook_outbox_company_id_fkey;
