-- The event log: every event the ledger ever published or will publish,
-- in one global order (position), kept as long as the entries. The write
-- path still writes its events into outbox, as before: outbox is now only
-- the buffer of committed events not yet given a position. One sequencer
-- at a time (an advisory lock) moves them, in outbox id order, into
-- event_log with consecutive positions and deletes them from outbox, in one
-- transaction per run; since each run commits before the next begins,
-- positions become visible in increasing order, and a reader paging by
-- position can never be overtaken by an event that commits later with a
-- smaller one (see docs/events.md, "The event feed"). The relay publishes
-- event_log in position order from its offset (relay_offset); the feed,
-- GET /api/events, reads the same rows.
CREATE TABLE event_log (
    position    bigint      NOT NULL,
    event_id    uuid,       -- null: the source's id (every event since this migration)
    routing_key text        NOT NULL,
    source_id   uuid,
    headers     jsonb,
    body        json,
    created_at  timestamptz NOT NULL,
    CONSTRAINT event_log_pkey PRIMARY KEY (position),
    CONSTRAINT event_log_position_positive CHECK (position > 0),
    CONSTRAINT event_log_body_or_source CHECK ((body IS NULL) <> (source_id IS NULL)),
    CONSTRAINT event_log_event_id CHECK (event_id IS NOT NULL OR source_id IS NOT NULL)
);

-- event_log is append-only, like entries.
CREATE FUNCTION event_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER event_log_no_update_delete BEFORE UPDATE OR DELETE ON event_log
    FOR EACH ROW EXECUTE FUNCTION event_log_append_only();
CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON event_log
    FOR EACH STATEMENT EXECUTE FUNCTION event_log_append_only();

-- The relay's progress: every position up to this one was confirmed by the
-- broker.
CREATE TABLE relay_offset (
    singleton boolean NOT NULL DEFAULT true,
    position  bigint  NOT NULL,
    CONSTRAINT relay_offset_pkey PRIMARY KEY (singleton),
    CONSTRAINT relay_offset_singleton CHECK (singleton),
    CONSTRAINT relay_offset_position CHECK (position >= 0)
);

-- The key that signs the feed's cursors, so that a forged cursor, or one
-- of another ledgerd database, is refused rather than served.
CREATE TABLE feed_cursor_key (
    singleton boolean NOT NULL DEFAULT true,
    key       bytea   NOT NULL,
    CONSTRAINT feed_cursor_key_pkey PRIMARY KEY (singleton),
    CONSTRAINT feed_cursor_key_singleton CHECK (singleton)
);
INSERT INTO feed_cursor_key (key) VALUES (uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));

-- The history so far. First what was published already: every entry and
-- hold change without an event waiting in outbox, with the event id it was
-- published with when outbox still holds it, else its own id (which every
-- event has carried since this migration; the older random ids of events
-- purged from outbox are lost). Each user's events are in their order:
-- created_at never decreases along a user's seq. Then the events still
-- waiting, in outbox order (each user's are its newest). The relay's
-- offset is the end of the first part.
CREATE TEMPORARY TABLE event_log_waiting ON COMMIT DROP AS
    SELECT id, event_id, routing_key, source_id, headers, body, created_at,
        coalesce(source_id, (body -> 'data' ->> 'id')::uuid) AS announces
    FROM outbox WHERE published_at IS NULL;
INSERT INTO event_log (position, event_id, routing_key, source_id, created_at)
SELECT row_number() OVER (ORDER BY h.created_at, h.user_id, h.kind, h.seq, h.id),
    nullif(o.event_id, h.id), h.routing_key, h.id, h.created_at
FROM (
    SELECT e.id, 'ledger.entry.' || e.type AS routing_key, e.created_at, e.user_id, 0 AS kind, e.seq FROM entries e
    UNION ALL
    SELECT c.id, 'ledger.hold.' || c.change, c.at, c.user_id, 1, 0 FROM hold_changes c
) h
LEFT JOIN outbox o ON o.source_id = h.id
WHERE NOT EXISTS (SELECT 1 FROM event_log_waiting w WHERE w.announces = h.id);
INSERT INTO relay_offset (position) SELECT coalesce(max(position), 0) FROM event_log;
INSERT INTO event_log (position, event_id, routing_key, source_id, headers, body, created_at)
SELECT (SELECT position FROM relay_offset) + row_number() OVER (ORDER BY id),
    CASE WHEN event_id IS DISTINCT FROM source_id THEN event_id END, routing_key, source_id,
    CASE WHEN body IS NOT NULL THEN headers END, body, created_at
FROM event_log_waiting;
DELETE FROM outbox;

-- GET /api/users/{id}/events reads a user's entries; an event's id is its
-- entry's, but for the events published before this migration that
-- outbox still knew: this index finds those, and costs new events nothing.
CREATE INDEX event_log_older_ids_idx ON event_log (source_id) WHERE event_id IS NOT NULL AND source_id IS NOT NULL;
