-- Back to version 1 of the chain check (see 000001).
CREATE OR REPLACE FUNCTION entries_guard_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.user_id, n.seq,
        CASE
            WHEN n.seq > 1 AND p.seq IS NULL THEN 'entries_seq_contiguous'
            WHEN n.balance_after IS DISTINCT FROM coalesce(p.balance_after, 0) + n.amount THEN 'entries_running_sum'
            ELSE 'entries_hash_chain'
        END AS violation
    INTO bad
    FROM new_entries n
    -- LIMIT 1 keeps this a per-row probe of entries_user_seq_key, whatever
    -- the planner guesses of the transition table's size.
    LEFT JOIN LATERAL (
        SELECT e.seq, e.balance_after, e.hash FROM entries e
        WHERE e.user_id = n.user_id AND e.seq = n.seq - 1 LIMIT 1
    ) p ON true
    WHERE (n.seq > 1 AND p.seq IS NULL)
       OR n.balance_after IS DISTINCT FROM coalesce(p.balance_after, 0) + n.amount
       OR n.prev_hash IS DISTINCT FROM coalesce(p.hash,
              '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
    ORDER BY n.user_id, n.seq
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'entry % of user % does not continue the chain (%)', bad.seq, bad.user_id, bad.violation
            USING ERRCODE = 'check_violation', CONSTRAINT = bad.violation;
    END IF;
    RETURN NULL;
END
$$;
