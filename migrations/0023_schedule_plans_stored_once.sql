-- A schedule's plan (its calls' due times, slots and reasons, and the slots it dropped) moves
-- off the schedule's row into `schedule_plans`, one row per distinct plan, shared by every
-- schedule made with an identical plan (issue 15). Customers of one zone and state imported
-- together get identical plans, and a plan's jsonb was most of a schedule insert's cost: a
-- row of about 3 KB (JSON parsed, then compressed by TOAST). Measured 2026-12-08 on this
-- 2-core machine, 10,000 schedules by one INSERT … SELECT with the same five indexes:
-- about 50 µs a row with the plan on it, 15 µs without (docs/benchmarks/import.md).
--
-- A plan row is never changed or deleted: what changes as calls are stored stays on the
-- schedule (plan_stored, plan_next_at). The plan of entry k (0-based) is due[k + 1],
-- slot[k + 1] and reasons -> k; plan_len is the number of entries, on the schedule so that
-- listing and paging conditions need no join. No foreign key: a schedule's plan row is
-- written by the same statement sequence and transaction as the schedule
-- (crates/store/src/schedule.rs) and nothing deletes plan rows.
CREATE TABLE schedule_plans (
    id      uuid          PRIMARY KEY,
    due     timestamptz[] NOT NULL,
    slot    timestamptz[] NOT NULL,
    -- One Block JSON array per entry (the rules that moved it from its slot).
    reasons jsonb         NOT NULL,
    -- The slots that produced no call, with why (DroppedSlot JSON array).
    dropped jsonb         NOT NULL
);
ALTER TABLE schedule_plans ALTER COLUMN reasons SET STATISTICS 0,
    ALTER COLUMN dropped SET STATISTICS 0;

ALTER TABLE schedules
    ADD COLUMN plan_id  uuid    NULL,
    ADD COLUMN plan_len integer NOT NULL DEFAULT 0;

-- Existing schedules keep their plans, one plan row each.
UPDATE schedules
SET plan_id = gen_random_uuid(),
    plan_len = coalesce(cardinality(plan_due), 0);
INSERT INTO schedule_plans (id, due, slot, reasons, dropped)
SELECT plan_id, coalesce(plan_due, '{}'), coalesce(plan_slot, '{}'),
       coalesce(plan_reasons, '[]'), dropped
FROM schedules;

ALTER TABLE schedules
    DROP COLUMN plan_due,
    DROP COLUMN plan_slot,
    DROP COLUMN plan_reasons,
    DROP COLUMN dropped;
