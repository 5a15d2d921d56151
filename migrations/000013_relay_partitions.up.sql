-- Partitioned relay (RELAY_PARTITIONS): events are split by user over N
-- partitions, partition = user_id mod N, each published by one relay at a
-- time from its own offset. Every event carries its user's id, from the
-- outbox row the write path fills to the event log the sequencer appends.
ALTER TABLE outbox ADD COLUMN user_id bigint;
ALTER TABLE event_log ADD COLUMN user_id bigint;

-- An event's user: its entry's or hold change's, else the ledger-user-id
-- header of a message stored whole, else 0 (no user: partition 0).
CREATE FUNCTION event_user_id(source uuid, headers jsonb) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT e.user_id FROM entries e WHERE e.id = source),
        (SELECT c.user_id FROM hold_changes c WHERE c.id = source),
        (headers ->> 'ledger-user-id')::bigint,
        0)
$$;

-- The previous version's writers and sequencer, which keep running during
-- a rolling update, insert rows without user_id: those get it here (a row
-- that names its user costs only the WHEN test).
CREATE FUNCTION fill_event_user_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.user_id := event_user_id(NEW.source_id, NEW.headers);
    RETURN NEW;
END
$$;
CREATE TRIGGER outbox_fill_user_id BEFORE INSERT ON outbox
    FOR EACH ROW WHEN (NEW.user_id IS NULL) EXECUTE FUNCTION fill_event_user_id();
CREATE TRIGGER event_log_fill_user_id BEFORE INSERT ON event_log
    FOR EACH ROW WHEN (NEW.user_id IS NULL) EXECUTE FUNCTION fill_event_user_id();

-- The events waiting now get their user, so that a user's waiting events
-- land in that user's partition whatever N is chosen next. event_log is
-- append-only: its guard is lifted for this one backfill, inside the
-- migration's transaction, and put back.
UPDATE outbox SET user_id = event_user_id(source_id, headers);
ALTER TABLE outbox ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE event_log DISABLE TRIGGER event_log_no_update_delete;
UPDATE event_log SET user_id = event_user_id(source_id, headers)
WHERE position > (SELECT position FROM relay_offset);
ALTER TABLE event_log ENABLE TRIGGER event_log_no_update_delete;
-- Every event from now on has its user (0: an event about no user, which
-- goes to partition 0); the published history before stays as it was.
ALTER TABLE event_log ADD CONSTRAINT event_log_user_id CHECK (user_id IS NOT NULL) NOT VALID;

-- One offset per partition: every event of partition p up to position was
-- confirmed by the broker. All rows share one partitions count: a relay
-- that starts with another count replaces them all in one transaction,
-- from the smallest offset, once no relay of the old count leads.
CREATE TABLE relay_partitions (
    partition  integer NOT NULL,
    partitions integer NOT NULL,
    position   bigint  NOT NULL,
    CONSTRAINT relay_partitions_pkey PRIMARY KEY (partition),
    CONSTRAINT relay_partitions_count CHECK (partitions BETWEEN 1 AND 256),
    CONSTRAINT relay_partitions_partition CHECK (partition >= 0 AND partition < partitions),
    CONSTRAINT relay_partitions_position CHECK (position >= 0)
);
INSERT INTO relay_partitions (partition, partitions, position) SELECT 0, 1, position FROM relay_offset;
DROP TABLE relay_offset;
