-- users_match_ledger makes "projection = ledger" a rule the database holds:
-- at commit, every users row that the transaction inserted or updated must
-- equal its ledger's head, seq = the last entry's seq and balance = its
-- balance_after (0 and 0 for a user without entries). A projection update
-- without its entry, or an entry without its projection update, fails the
-- transaction that tries it. It is deferred, so that a transaction may
-- write the row and the entries in either order; it reads the row as it is
-- at commit, so a row written twice is checked once for its final state.
-- The last entry is one backward probe of entries_user_seq_key.
CREATE FUNCTION users_match_ledger() RETURNS trigger
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

CREATE CONSTRAINT TRIGGER users_match_ledger AFTER INSERT OR UPDATE ON users
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION users_match_ledger();
