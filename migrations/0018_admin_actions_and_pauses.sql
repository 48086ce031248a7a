-- The operator's side (issue 14).
--
-- Every admin write (retry, cancel, purge, pause, resume), from the CLI or `/admin`: who,
-- when, what. `outdial queue show` and `GET /admin/calls/{id}` list a call's entries.
CREATE TABLE admin_actions (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    -- "cli:<os user>" or "admin-api"
    actor       text        NOT NULL,
    action      text        NOT NULL,
    company_id  uuid        NULL,
    call_id     uuid        NULL,
    -- What the action did (JSON object: counts, the task type, the queue state found).
    detail      jsonb       NOT NULL DEFAULT '{}'
);

CREATE INDEX admin_actions_call ON admin_actions (call_id, id) WHERE call_id IS NOT NULL;
CREATE INDEX admin_actions_company ON admin_actions (company_id, id);

-- Pauses of a company's calls, all of them (task_type NULL) or one task type. Postgres is
-- the truth: workers read the active ones every 500 ms, so a pause outlives a Redis flush.
-- A resumed pause keeps its row (resumed_at set): the history, and the interval the
-- decision trail of a call deferred by it names.
CREATE TABLE company_pauses (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    company_id  uuid        NOT NULL REFERENCES companies (id),
    task_type   text        NULL,
    paused_at   timestamptz NOT NULL,
    paused_by   text        NOT NULL,
    resumed_at  timestamptz NULL,
    resumed_by  text        NULL
);

-- At most one active pause per company and task type ('' stands for "every type").
CREATE UNIQUE INDEX company_pauses_one_active
    ON company_pauses (company_id, coalesce(task_type, '')) WHERE resumed_at IS NULL;
