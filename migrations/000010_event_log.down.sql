-- The events not yet published go back to outbox; the log is dropped.
INSERT INTO outbox (event_id, routing_key, headers, body, source_id, created_at)
SELECT coalesce(event_id, source_id), routing_key, coalesce(headers, '{}'), body, source_id, created_at
FROM event_log WHERE position > (SELECT position FROM relay_offset) ORDER BY position;
DROP TABLE feed_cursor_key;
DROP TABLE relay_offset;
DROP TABLE event_log;
DROP FUNCTION event_log_append_only();
