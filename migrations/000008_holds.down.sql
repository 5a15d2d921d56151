CREATE OR REPLACE FUNCTION users_match_ledger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    u_seq bigint;
    u_balance bigint;
    e_seq bigint := 0;
    e_balance bigint := 0;
BEGIN
    SELECT seq, balance INTO u_seq, u_balance FROM users WHERE id = NEW.id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT seq, balance_after INTO e_seq, e_balance FROM entries
    WHERE user_id = NEW.id ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        e_seq := 0;
        e_balance := 0;
    END IF;
    IF u_seq <> e_seq OR u_balance <> e_balance THEN
        RAISE EXCEPTION 'user % is projected at seq % and balance % but its ledger ends at seq % and balance %',
                NEW.id, u_seq, u_balance, e_seq, e_balance
            USING ERRCODE = 'check_violation', CONSTRAINT = 'users_match_ledger';
    END IF;
    RETURN NULL;
END
$$;
DROP TABLE IF EXISTS holds;
DROP TABLE IF EXISTS hold_changes;
DROP FUNCTION IF EXISTS hold_changes_append_only();
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_held_range;
ALTER TABLE users DROP COLUMN IF EXISTS held;
