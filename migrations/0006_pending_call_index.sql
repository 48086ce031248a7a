-- Keyset pages of pending calls by id (queue reconciliation, Store::pending_page).
CREATE INDEX scheduled_calls_pending_id ON scheduled_calls (id) WHERE status = 'scheduled';
