-- The decision trail (`call_events`) is an append-only log, written only by the store in
-- the same transaction as the conditional update of the call it describes, and read only by
-- call (`call_events_call`, which also orders it). Dispatch writes three entries per call
-- (claimed, dialed, ended), and each paid for two checks no reader needs:
-- 1. the primary key on `id`: an index entry per row that no query looks up (`id` stays,
--    an identity column, for the order within a call);
-- 2. the foreign key to `scheduled_calls`: a lookup and a row lock on the call per entry,
--    when the entry's own transaction has just updated (and so holds) that call's row.
-- Calls are never deleted, so no entry can outlive its call.
ALTER TABLE call_events DROP CONSTRAINT call_events_pkey;
ALTER TABLE call_events DROP CONSTRAINT call_events_call_id_fkey;
