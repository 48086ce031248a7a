-- Dispatch: the worker's lease on a scheduled call, and the webhook outbox.
--
-- A worker claims a scheduled call with a conditional update (scheduled -> dialing) that
-- sets lease_owner, a new lease_token (the fencing token: every later write by that worker
-- names it, so a worker whose lease was taken over writes nothing) and lease_expires_at. A
-- claim whose lease expired before any dial intent (no call_attempts row for the attempt)
-- may be taken over; one with a dial intent is resolved by asking the provider.
--
-- The webhook outbox holds one row per event (its id is the stable event id the receiver
-- deduplicates on), written in the same transaction as the result it reports, delivered
-- with retries and backoff, and dead-lettered after the last try (re-drivable).

ALTER TABLE scheduled_calls ADD COLUMN lease_expires_at timestamptz NULL;

CREATE INDEX scheduled_calls_dialing ON scheduled_calls (lease_expires_at)
    WHERE status IN ('dialing', 'in_progress');

CREATE TABLE webhook_outbox (
    id                uuid        PRIMARY KEY,
    company_id        uuid        NOT NULL REFERENCES companies (id),
    -- The call (attempt) and scheduled call the event is about.
    call_id           uuid        NULL,
    scheduled_call_id uuid        NULL,
    event             text        NOT NULL,
    payload           jsonb       NOT NULL,
    status            text        NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts          integer     NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL,
    last_error        text        NULL,
    created_at        timestamptz NOT NULL,
    delivered_at      timestamptz NULL
);

CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_outbox_company ON webhook_outbox (company_id, created_at);
