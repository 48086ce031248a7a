-- An import's rows are kept as the text outdial wrote (`serde_json::Value::to_string`, so
-- always valid JSON), not as jsonb, and without the foreign key to their job.
--
-- Nothing in Postgres reads inside a row: the runner reads each body back whole and parses
-- it itself. As jsonb, Postgres parsed every row when it was stored and printed it again
-- when it was read. The foreign key was checked once per row; a job's rows are written in
-- the transaction that writes the job (crates/store/src/import.rs, `create_import`), and
-- nothing deletes jobs.
--
-- Measured 2026-12-08 (docs/benchmarks/import.md): in a 30,000-customer `outdial import`,
-- parsing jsonb was 2.7 % of the machine's CPU time, and the rows' insert went from 643 to
-- 163 ms of statement time as text; the key was checked 30,000 times (77 ms).
ALTER TABLE import_rows DROP CONSTRAINT import_rows_job_id_fkey;
ALTER TABLE import_rows ALTER COLUMN body TYPE text USING body::text;
