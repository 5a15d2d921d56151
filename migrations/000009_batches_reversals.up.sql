-- Batches, reversals and history search.
--
-- A reversal entry undoes one earlier entry (reversal_of): either sign, never
-- zero, and only reversal entries name one. Each entry is reversed at most
-- once: the unique index is the database's guard behind the write path's
-- check, and the lookup the write path makes under the users' locks.
ALTER TABLE entries DROP CONSTRAINT entries_type_valid;
ALTER TABLE entries ADD CONSTRAINT entries_type_valid CHECK (
    type IN ('opening', 'deposit', 'withdrawal', 'transfer_in', 'transfer_out', 'reversal'));
ALTER TABLE entries DROP CONSTRAINT entries_amount_sign;
ALTER TABLE entries ADD CONSTRAINT entries_amount_sign CHECK (
    (type IN ('opening', 'deposit', 'transfer_in') AND amount > 0)
    OR (type IN ('withdrawal', 'transfer_out') AND amount < 0)
    OR (type = 'reversal' AND amount <> 0));
ALTER TABLE entries ADD CONSTRAINT entries_reversal_of CHECK (
    (type = 'reversal') = (reversal_of IS NOT NULL));
CREATE UNIQUE INDEX entries_reversal_of_key ON entries (reversal_of) WHERE reversal_of IS NOT NULL;

-- Every entry's transaction id. Version-2 entries store theirs; entries
-- written before version 2 get theirs here without a byte of them changing
-- (entries are append-only, and their hashes cover their columns): the id
-- of their transfer for a transfer's two legs, their own id for any other
-- (each was the only entry of its request). The same expression is how the
-- reads show it (see ledger/store.go); this index finds a transaction's
-- entries, for reversals and for search.
CREATE INDEX entries_transaction_idx ON entries ((coalesce(transaction_id, transfer_id, id)));

-- History search: each filter of GET /users/{id}/transactions is served by
-- an index on (user_id, <filter>, seq), so that a selective filter reads
-- only the entries that match, never the user's whole history. References
-- are optional: only entries with one are indexed.
CREATE INDEX entries_user_reference_idx ON entries (user_id, reference, seq) WHERE reference IS NOT NULL;
CREATE INDEX entries_user_type_idx ON entries (user_id, type, seq);
CREATE INDEX entries_user_amount_idx ON entries (user_id, amount, seq);
