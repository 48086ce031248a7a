-- The response headers a replay repeats (Outdial-Schedule-Id, Outdial-Dropped-Slots,
-- Location …), as a JSON array of [name, value] pairs; NULL on keys stored before.
ALTER TABLE idempotency_keys ADD COLUMN headers jsonb NULL;
