-- An attempt row is written twice: small at the dial intent (number, start), then filled in
-- with the result (outcome, transcript, recording URL, flags, end) moments later. None of
-- the result's columns is indexed, so that update can stay on the row's page without new
-- index entries (a HOT update) — if the page has room for the bigger row. Packed full by
-- the intents (fillfactor 100), it had none: every result wrote the row elsewhere and added
-- an entry to each of the table's three indexes. Leave room for the results.
ALTER TABLE call_attempts SET (fillfactor = 50);
