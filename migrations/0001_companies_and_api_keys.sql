-- Companies (tenants) and their API keys.
--
-- A company's configuration lives on its row: the task-type catalog as TOML text (parsed by
-- outdial_domain::schedule::Catalog::parse), the webhook target, rate limits and caller IDs.
-- API keys are stored as a lookup prefix plus the SHA-256 of the whole key, never in plain
-- text; a rotated key keeps its row with revoked_at set.

CREATE TABLE companies (
    id               uuid        PRIMARY KEY,
    name             text        NOT NULL UNIQUE,
    task_types       text        NOT NULL DEFAULT E'[collections]\nschedule = "collections"\n[verification]\nschedule = "verification"\n',
    webhook_url      text        NULL,
    webhook_secret   text        NULL,
    calls_per_second integer     NOT NULL DEFAULT 5 CHECK (calls_per_second > 0),
    max_live_calls   integer     NOT NULL DEFAULT 10 CHECK (max_live_calls > 0),
    caller_ids       text[]      NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id         uuid        PRIMARY KEY,
    company_id uuid        NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    -- The first 12 characters of the key: enough to find the row, not enough to use it.
    prefix     text        NOT NULL UNIQUE,
    sha256     bytea       NOT NULL CHECK (length(sha256) = 32),
    created_at timestamptz NOT NULL,
    revoked_at timestamptz NULL
);

CREATE INDEX api_keys_company_id ON api_keys (company_id);
