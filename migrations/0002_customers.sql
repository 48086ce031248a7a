-- Customers, unique per company by the caller's own reference (the API's `id`).
--
-- Every field of POST /customers has its own column. external_metadata is `json`, not
-- `jsonb`: it is stored as the client sent it, key order included. `seq` orders the rows
-- for cursor pagination (GET /customers?after=<seq>).

CREATE TABLE customers (
    company_id        uuid        NOT NULL REFERENCES companies (id),
    id                text        NOT NULL,
    seq               bigint      GENERATED ALWAYS AS IDENTITY,
    task_type         text        NOT NULL,
    first_name        text        NOT NULL,
    last_name         text        NOT NULL,
    email             text        NULL,
    birthday          date        NULL,
    ssn_last_four     text        NULL,
    -- An IANA zone name, never a numeric offset.
    timezone          text        NOT NULL,
    -- E.164.
    phone             text        NOT NULL,
    street_address1   text        NOT NULL,
    street_address2   text        NULL,
    city              text        NOT NULL,
    state             text        NOT NULL,
    zip_code          text        NOT NULL,
    do_not_call       boolean     NOT NULL DEFAULT false,
    is_test           boolean     NOT NULL DEFAULT false,
    external_metadata json        NOT NULL DEFAULT '{}',
    loan_id           text        NULL,
    loan_ids          bigint[]    NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (company_id, id)
);

CREATE UNIQUE INDEX customers_company_seq ON customers (company_id, seq);
-- The list filters, each ending in seq so a filtered page is an index range scan in order.
CREATE INDEX customers_company_is_test ON customers (company_id, is_test, seq);
CREATE INDEX customers_company_do_not_call ON customers (company_id, do_not_call, seq);
