-- A slim outbox: an event whose body is built from the row it announces
-- (an entry) stores that row's id in source_id instead of its body and
-- headers; the relay builds them when it publishes (see package ledger's
-- ExpandEvents), byte for byte what the body column would have held. Each
-- change then writes about a tenth of the bytes it used to into the
-- outbox.
-- Rows with a body (written before, or by producers without a source) are
-- published as before.
ALTER TABLE outbox ADD COLUMN source_id uuid;
ALTER TABLE outbox ALTER COLUMN body DROP NOT NULL;
ALTER TABLE outbox ADD CONSTRAINT outbox_body_or_source CHECK ((body IS NULL) <> (source_id IS NULL));
