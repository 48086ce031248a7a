-- The LMS integration (issue 15).
--
-- A company's LMS connection (PUT /lms). The headers carry the LMS credentials: the API
-- returns their names only and nothing logs them. One row per company.
CREATE TABLE lms_connections (
    company_id  uuid        PRIMARY KEY REFERENCES companies (id),
    base_url    text        NOT NULL,
    -- [[name, value], ...] in the order given.
    headers     jsonb       NOT NULL DEFAULT '[]',
    -- The budget of one whole fetch (customer and loans, retries included).
    timeout_ms  integer     NOT NULL CHECK (timeout_ms > 0),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- Loans imported from the LMS carry what it said of them. `id` stays the key the customer's
-- loanIds name (the LMS's integer id as decimal text); `reference` is the LMS's loanId
-- text, which a customer's loanId may name instead.
ALTER TABLE loans
    ADD COLUMN lms_id        bigint      NULL,
    ADD COLUMN reference     text        NULL,
    ADD COLUMN status        text        NULL,
    ADD COLUMN balance_cents bigint      NULL,
    ADD COLUMN due_date      date        NULL,
    ADD COLUMN metadata      jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN synced_at     timestamptz NULL;

-- What the last LMS sync of a customer did: which fields came from the LMS and, when the
-- time zone was resolved from the ZIP code, every zone the ZIP could mean.
CREATE TABLE customer_syncs (
    company_id          uuid        NOT NULL,
    customer_id         text        NOT NULL,
    synced_at           timestamptz NOT NULL,
    fields_from_lms     text[]      NOT NULL,
    timezone_candidates text[]      NULL,
    PRIMARY KEY (company_id, customer_id),
    FOREIGN KEY (company_id, customer_id) REFERENCES customers (company_id, id)
);
