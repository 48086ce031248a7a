-- Loans, schedules, scheduled calls with their decision trail, and call attempts.
--
-- A customer's loans come from `loanId` / `loanIds` of POST /customers (the LMS issue will
-- import more). A schedule is one expansion of a cadence for a customer; at most one is
-- active per customer (the partial unique index): creating a new one deactivates the old
-- one and cancels its pending calls in the same transaction. A scheduled call is one
-- planned dial; `status` follows outdial_domain::call::CallStatus and every change appends
-- a row to call_events (the decision trail, one serialized TrailEntry per row). A call
-- attempt is one placed call (what GET /calls/{id} serves), identified by its own id and
-- by (scheduled call, attempt number), which is also the provider's idempotency key.

CREATE TABLE loans (
    company_id  uuid        NOT NULL,
    customer_id text        NOT NULL,
    -- The lender's loan reference (loanId as given; loanIds as decimal text).
    id          text        NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (company_id, customer_id, id),
    FOREIGN KEY (company_id, customer_id) REFERENCES customers (company_id, id)
);

CREATE TABLE schedules (
    id            uuid        PRIMARY KEY,
    company_id    uuid        NOT NULL,
    customer_id   text        NOT NULL,
    schedule_type text        NOT NULL CHECK (schedule_type IN ('verification', 'collections', 'custom')),
    task_type     text        NOT NULL,
    -- The debt the calls are about (Reg F caps are per debt); NULL when the customer has none.
    loan_id       text        NULL,
    -- The cadence expanded, as camelCase CadenceDef JSON.
    cadence       jsonb       NOT NULL,
    -- The ruleset version the plan was made under (rules/us.toml `version`).
    ruleset       text        NOT NULL,
    -- Slots that produced no call, with their reasons (DroppedSlot JSON array).
    dropped       jsonb       NOT NULL DEFAULT '[]',
    active        boolean     NOT NULL,
    created_at    timestamptz NOT NULL,
    ended_at      timestamptz NULL,
    FOREIGN KEY (company_id, customer_id) REFERENCES customers (company_id, id)
);

CREATE UNIQUE INDEX schedules_one_active ON schedules (company_id, customer_id) WHERE active;

CREATE TABLE scheduled_calls (
    id            uuid        PRIMARY KEY,
    company_id    uuid        NOT NULL,
    customer_id   text        NOT NULL,
    schedule_id   uuid        NOT NULL REFERENCES schedules (id),
    -- Orders listing pages (GET /scheduled-calls?after=<seq>).
    seq           bigint      GENERATED ALWAYS AS IDENTITY,
    status        text        NOT NULL CHECK (status IN ('scheduled', 'dialing', 'in_progress',
                      'completed', 'no_answer', 'busy', 'voicemail', 'failed', 'cancelled',
                      'blocked', 'expired')),
    due_at        timestamptz NOT NULL,
    -- The cadence slot it was planned for (due_at differs when policy moved it).
    slot_at       timestamptz NOT NULL,
    attempts      integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- The post-processing flags of its attempts (for GET /scheduled-calls?flag=).
    flags         text[]      NOT NULL DEFAULT '{}',
    -- The policy blocks behind its current due time (moved from its slot, deferred): Block
    -- JSON array, empty when on time.
    reasons       jsonb       NOT NULL DEFAULT '[]',
    -- Set by the worker that holds it (issue 5): who, and the fencing token of the lease.
    lease_owner   text        NULL,
    lease_token   bigint      NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    FOREIGN KEY (company_id, customer_id) REFERENCES customers (company_id, id)
);

CREATE UNIQUE INDEX scheduled_calls_company_seq ON scheduled_calls (company_id, seq);
CREATE INDEX scheduled_calls_customer ON scheduled_calls (company_id, customer_id, seq);
CREATE INDEX scheduled_calls_status ON scheduled_calls (company_id, status, seq);
CREATE INDEX scheduled_calls_schedule ON scheduled_calls (schedule_id) WHERE status = 'scheduled';
CREATE INDEX scheduled_calls_flags ON scheduled_calls USING gin (flags);

CREATE TABLE call_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id     uuid        NOT NULL REFERENCES scheduled_calls (id),
    at          timestamptz NOT NULL,
    -- One outdial_domain::scheduled_call::TrailEntry, as JSON.
    entry       jsonb       NOT NULL
);

CREATE INDEX call_events_call ON call_events (call_id, id);

CREATE TABLE call_attempts (
    id                uuid        PRIMARY KEY,
    company_id        uuid        NOT NULL,
    customer_id       text        NOT NULL,
    scheduled_call_id uuid        NOT NULL REFERENCES scheduled_calls (id),
    attempt           integer     NOT NULL CHECK (attempt >= 1),
    status            text        NOT NULL,
    -- What the caps count: the number dialed (E.164) and the debt the call was about.
    number            text        NOT NULL,
    loan_id           text        NULL,
    provider_ref      text        NULL,
    outcome           text        NULL,
    transcript        text        NULL,
    recording_url     text        NULL,
    flags             text[]      NOT NULL DEFAULT '{}',
    started_at        timestamptz NOT NULL,
    ended_at          timestamptz NULL,
    UNIQUE (scheduled_call_id, attempt),
    FOREIGN KEY (company_id, customer_id) REFERENCES customers (company_id, id)
);

CREATE INDEX call_attempts_customer ON call_attempts (company_id, customer_id, started_at DESC, id);
