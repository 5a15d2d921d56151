-- Back to one relay offset: the smallest partition's, so that nothing is
-- skipped (events past it are published again; consumers de-duplicate).
CREATE TABLE relay_offset (
    singleton boolean NOT NULL DEFAULT true,
    position  bigint  NOT NULL,
    CONSTRAINT relay_offset_pkey PRIMARY KEY (singleton),
    CONSTRAINT relay_offset_singleton CHECK (singleton),
    CONSTRAINT relay_offset_position CHECK (position >= 0)
);
INSERT INTO relay_offset (position) SELECT coalesce(min(position), 0) FROM relay_partitions;
DROP TABLE relay_partitions;
DROP TRIGGER event_log_fill_user_id ON event_log;
DROP TRIGGER outbox_fill_user_id ON outbox;
DROP FUNCTION fill_event_user_id();
DROP FUNCTION event_user_id(uuid, jsonb);
ALTER TABLE event_log DROP COLUMN user_id;
ALTER TABLE outbox DROP COLUMN user_id;
