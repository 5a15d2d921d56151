-- Version-2 entries cannot be told apart without their columns: the down
-- migration refuses while any exists.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM entries WHERE canonical_version <> 1) THEN
        RAISE EXCEPTION 'version-2 entries exist: their hashes need the columns this migration would drop';
    END IF;
END
$$;
ALTER TABLE entries DROP CONSTRAINT entries_canonical_version;
ALTER TABLE entries
    DROP COLUMN canonical_version,
    DROP COLUMN reversal_of,
    DROP COLUMN hold_id,
    DROP COLUMN transaction_id;
