-- Reversal entries cannot be expressed without the reversal type: the down
-- migration refuses while any exists.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM entries WHERE type = 'reversal') THEN
        RAISE EXCEPTION 'reversal entries exist: the constraints this migration would restore refuse them';
    END IF;
END
$$;
DROP INDEX entries_user_amount_idx;
DROP INDEX entries_user_type_idx;
DROP INDEX entries_user_reference_idx;
DROP INDEX entries_transaction_idx;
DROP INDEX entries_reversal_of_key;
ALTER TABLE entries DROP CONSTRAINT entries_reversal_of;
ALTER TABLE entries DROP CONSTRAINT entries_amount_sign;
ALTER TABLE entries ADD CONSTRAINT entries_amount_sign CHECK (
    (type IN ('opening', 'deposit', 'transfer_in') AND amount > 0)
    OR (type IN ('withdrawal', 'transfer_out') AND amount < 0));
ALTER TABLE entries DROP CONSTRAINT entries_type_valid;
ALTER TABLE entries ADD CONSTRAINT entries_type_valid CHECK (
    type IN ('opening', 'deposit', 'withdrawal', 'transfer_in', 'transfer_out'));
