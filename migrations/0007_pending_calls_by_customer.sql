-- A customer's pending calls (cancelled when a new schedule replaces the old one, when the
-- customer turns do-not-call, on cancel-communications, and by flag follow-ups): served
-- exactly by this partial index, whatever the table's statistics say.
CREATE INDEX scheduled_calls_customer_pending ON scheduled_calls (company_id, customer_id)
    WHERE status = 'scheduled';
