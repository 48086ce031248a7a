-- A schedule's calls whatever their status: the worker counts a schedule's placed attempts
-- after every call (`Store::schedule_progress`, for the cadence's attempt limit). Only the
-- partial index `scheduled_calls_schedule` (pending calls) existed, so that count scanned
-- every scheduled call: O(table) per result, the dispatch bench's largest Postgres cost.
CREATE INDEX scheduled_calls_by_schedule ON scheduled_calls (schedule_id);
