-- `scheduled_calls_by_schedule` (migration 0008) served one query: the worker's count of a
-- schedule's placed attempts after every result. That count is now read with the claim,
-- from the customer's attempts (`crates/store/src/claim.rs`), and no other query looks calls
-- up by schedule. Every call row paid for the index on insert and on each status change
-- (a status change is never a HOT update, `status` being indexed): three entries per
-- dispatched call and one per planned call.
DROP INDEX scheduled_calls_by_schedule;
