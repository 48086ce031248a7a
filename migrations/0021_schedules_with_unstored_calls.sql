-- A schedule stores only the calls due soon as `scheduled_calls` rows; the rest of its plan
-- stays on the schedule's row until a worker stores them ahead of their time (issue 15:
-- a collections schedule is 21 calls over three weeks, and 21 indexed rows per customer
-- cap a bulk import at about 3,000 customers/s on a 2-core machine). docs/schedules.md
-- describes the model; crates/store/src/plan.rs is its one implementation.
--
-- The plan, in due order, as parallel arrays: entry k (0-based) is call k of the schedule.
-- Entries [0, plan_stored) are rows; entries [plan_stored, cardinality(plan_due)) are not
-- stored yet. Call k's id is the schedule's id with its last two bytes replaced by k + 1
-- (schedule ids end in two zero bytes), and its listing number is plan_base + k, so a call
-- has the same id and the same place in GET /scheduled-calls before and after it is stored.
-- plan_next_at is the due time of the first unstored entry, NULL when every entry is a row
-- (always the case for a schedule made before this migration: its columns stay NULL).
ALTER TABLE schedules
    ADD COLUMN plan_base    bigint        NULL,
    ADD COLUMN plan_due     timestamptz[] NULL,
    ADD COLUMN plan_slot    timestamptz[] NULL,
    -- One Block JSON array per entry (the rules that moved it from its slot).
    ADD COLUMN plan_reasons jsonb         NULL,
    ADD COLUMN plan_stored  integer       NOT NULL DEFAULT 0,
    ADD COLUMN plan_next_at timestamptz   NULL;

-- The worker's scan for entries coming due, and listing pages in `seq` order.
CREATE INDEX schedules_plan_next ON schedules (plan_next_at) WHERE plan_next_at IS NOT NULL;
CREATE INDEX schedules_plan_seq ON schedules (company_id, plan_base) WHERE plan_next_at IS NOT NULL;

-- Listing numbers come in blocks of 256: a schedule takes one value and numbers its calls
-- base + k (k < 200, the most calls a cadence plans); a worker's follow-up call takes a
-- value of its own. Numbers given before stay below every new one, so the order holds.
ALTER TABLE scheduled_calls ALTER COLUMN seq SET INCREMENT BY 256;
