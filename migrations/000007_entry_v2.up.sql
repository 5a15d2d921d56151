-- Entries, version 2: each entry names the request that wrote it
-- (transaction_id, shared by every entry of one request), the hold it
-- captures (hold_id) and the entry it reverses (reversal_of), and all three
-- join the hash through the canonical encoding ledgerd-entry-v2 (see
-- docs/audit.md). Entries written before keep canonical_version 1, no
-- transaction id, and keep verifying with the version-1 encoding.
ALTER TABLE entries
    ADD COLUMN transaction_id uuid,
    ADD COLUMN hold_id uuid,
    ADD COLUMN reversal_of uuid,
    ADD COLUMN canonical_version smallint NOT NULL DEFAULT 1;
ALTER TABLE entries ADD CONSTRAINT entries_canonical_version CHECK (
    (canonical_version = 1 AND transaction_id IS NULL AND hold_id IS NULL AND reversal_of IS NULL)
    OR (canonical_version = 2 AND transaction_id IS NOT NULL));
