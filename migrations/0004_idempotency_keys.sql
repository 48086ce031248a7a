-- Idempotency-Key of POST requests, per company.
--
-- A row is inserted before the request runs (status NULL: in progress) and completed with
-- the response once it has run; a request whose handler failed with a 5xx deletes its row so
-- the client can retry. request_sha256 covers method, path, query and body: the same key
-- with another request is refused (409). Rows older than the retention period (24 h) are
-- replaced on the next use of their key.

CREATE TABLE idempotency_keys (
    company_id      uuid        NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    key             text        NOT NULL,
    request_sha256  bytea       NOT NULL CHECK (length(request_sha256) = 32),
    status          smallint    NULL,
    response        bytea       NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (company_id, key)
);

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
