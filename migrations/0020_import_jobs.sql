-- Bulk customer imports (issue 15): POST /customers/batch stores the rows and answers 202;
-- the worker fleet runs the job.
--
-- A job is held by one process at a time through its lease (owner and expiry, renewed as it
-- goes); a process that dies leaves the lease to expire and another takes the job over. Each
-- row is imported in one transaction with its outcome row, so a row is done exactly once
-- whoever resumes, and the counts are read from the outcomes.
CREATE TABLE import_jobs (
    id            uuid        PRIMARY KEY,
    company_id    uuid        NOT NULL REFERENCES companies (id),
    -- "api" or "cli:<os user>"
    source        text        NOT NULL,
    -- The schedule type to create for each imported customer, if any.
    schedule_type text        NULL CHECK (schedule_type IN ('verification', 'collections', 'custom')),
    state         text        NOT NULL CHECK (state IN ('queued', 'running', 'done')),
    total         integer     NOT NULL CHECK (total >= 0),
    lease_owner   text        NULL,
    lease_until   timestamptz NULL,
    -- Times a process took the job (more than one: it was resumed).
    attempts      integer     NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    started_at    timestamptz NULL,
    finished_at   timestamptz NULL
);

CREATE INDEX import_jobs_open ON import_jobs (created_at) WHERE state <> 'done';
CREATE INDEX import_jobs_company ON import_jobs (company_id, created_at);

-- The rows as posted, by index.
CREATE TABLE import_rows (
    job_id uuid    NOT NULL REFERENCES import_jobs (id),
    row_no integer NOT NULL,
    body   jsonb   NOT NULL,
    PRIMARY KEY (job_id, row_no)
);

-- One per imported row, written in the row's own transaction.
CREATE TABLE import_outcomes (
    job_id      uuid    NOT NULL,
    row_no      integer NOT NULL,
    outcome     text    NOT NULL CHECK (outcome IN ('created', 'updated', 'unchanged', 'rejected')),
    customer_id text    NULL,
    scheduled   boolean NOT NULL DEFAULT false,
    -- Rejected rows: {"code", "message", "fields": [{"field", "code", "message"}]}
    error       jsonb   NULL,
    PRIMARY KEY (job_id, row_no)
);

CREATE INDEX import_outcomes_rejected ON import_outcomes (job_id, row_no) WHERE outcome = 'rejected';
