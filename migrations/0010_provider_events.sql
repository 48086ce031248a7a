-- Call events a telephony provider sent to the signed callback route (POST
-- /provider/events), each stored once by the provider's event id. A worker following a
-- call reads the newest state reported for the call's idempotency key here before asking
-- the provider (crates/worker dispatch.rs).
CREATE TABLE provider_events (
    -- The provider's stable event id ("{provider call id}.{answered|ended}").
    id          text        PRIMARY KEY,
    -- The idempotency key the call was placed under: "{scheduled call id}:{attempt}".
    call_key    text        NOT NULL,
    kind        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    -- The provider's call at that moment (outdial_dialer::ProviderCall JSON).
    call        jsonb       NOT NULL,
    received_at timestamptz NOT NULL
);

CREATE INDEX provider_events_call_key ON provider_events (call_key, occurred_at);
