-- Columns that only carry payloads (trail entries, webhook bodies, transcripts, cadences,
-- stored responses) are never filtered, joined or sorted on, so the planner has no use for
-- their statistics. ANALYZE (autovacuum's, or a manual one) still computed them: it sorts a
-- sample of each column to find common values and a histogram, and comparing jsonb
-- documents and kilobyte transcripts made that the largest single cost of analyzing the
-- dispatch tables (perf, 2026-12-02: `analyze_rel` 26 % of Postgres CPU in the dispatch
-- benchmark, most of it `jsonb_cmp` and `memcmp` under `qsort`). A statistics target of 0
-- makes ANALYZE skip a column; the row counts and the statistics of every filtered column
-- are unchanged.
ALTER TABLE call_events ALTER COLUMN entry SET STATISTICS 0;
ALTER TABLE webhook_outbox ALTER COLUMN payload SET STATISTICS 0,
    ALTER COLUMN last_error SET STATISTICS 0;
ALTER TABLE scheduled_calls ALTER COLUMN reasons SET STATISTICS 0,
    ALTER COLUMN planned_reasons SET STATISTICS 0;
ALTER TABLE call_attempts ALTER COLUMN transcript SET STATISTICS 0,
    ALTER COLUMN recording_url SET STATISTICS 0;
ALTER TABLE schedules ALTER COLUMN cadence SET STATISTICS 0,
    ALTER COLUMN dropped SET STATISTICS 0;
ALTER TABLE provider_events ALTER COLUMN call SET STATISTICS 0;
ALTER TABLE idempotency_keys ALTER COLUMN response SET STATISTICS 0,
    ALTER COLUMN headers SET STATISTICS 0;
