-- Slim rows cannot keep their place without a body: the down migration
-- refuses while any is pending (publish them first, or delete them).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM outbox WHERE body IS NULL) THEN
        RAISE EXCEPTION 'outbox rows without a body exist: drain the outbox before migrating down';
    END IF;
END
$$;
ALTER TABLE outbox DROP CONSTRAINT outbox_body_or_source;
ALTER TABLE outbox ALTER COLUMN body SET NOT NULL;
ALTER TABLE outbox DROP COLUMN source_id;
