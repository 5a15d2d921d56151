-- Since the event log (migration 10), outbox is only the sequencer's buffer:
-- rows are deleted when they get their position, never marked published.
-- Its published_at column, the partial index of unpublished rows (every
-- row now) and the unique index on event_id (an event's id is its source's,
-- unique already) only cost each write; they go.
DROP INDEX outbox_pending_idx;
ALTER TABLE outbox DROP CONSTRAINT outbox_event_id_key;
ALTER TABLE outbox DROP COLUMN published_at;
