-- `schedules_id_customer` (id, company_id, customer_id) was made unique in migration 0009
-- only to be the target of the calls' foreign key to their schedule, which migration 0017
-- dropped. No query needs it since: every lookup by id uses the primary key. It still cost
-- an index entry per schedule.
--
-- Measured 2026-12-08 (docs/benchmarks/import.md): copying 30,000 schedule rows into a
-- table with the same indexes took 694 / 645 ms with it and 551 / 523 ms without.
DROP INDEX schedules_id_customer;
