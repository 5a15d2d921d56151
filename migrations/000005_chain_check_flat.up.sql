-- entries_guard_chain, version 2: the same rule (seq is the previous seq + 1,
-- 1 for the first; balance_after is the previous balance_after + amount;
-- prev_hash is the previous hash, 32 zero bytes for the first), at a cost
-- that does not grow with a user's history, whatever the planner's
-- statistics say.
--
-- Each new row is compared with its predecessor inside the statement (lag()
-- over the transition table, per user in seq order); only the first new row
-- of each user looks into the table, once, for the entry before it:
-- "seq < first ORDER BY seq DESC LIMIT 1", which only entries_user_seq_key
-- can answer without a sort, so the plan is a one-row backward probe of that
-- index. (Version 1 probed "seq = n.seq - 1" for every row, which the
-- planner, without statistics, answered from entries_user_created_idx with
-- seq as a filter: a scan of the user's whole history per new row.)
CREATE OR REPLACE FUNCTION entries_guard_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    WITH n AS (
        SELECT n.user_id, n.seq, n.amount, n.balance_after, n.prev_hash,
            row_number() OVER w AS k,
            lag(n.seq) OVER w AS p_seq,
            lag(n.balance_after) OVER w AS p_balance,
            lag(n.hash) OVER w AS p_hash
        FROM new_entries n
        WINDOW w AS (PARTITION BY n.user_id ORDER BY n.seq)
    ), checked AS (
        SELECT n.user_id, n.seq, n.amount, n.balance_after, n.prev_hash,
            CASE WHEN n.k = 1 THEN p.seq ELSE n.p_seq END AS p_seq,
            CASE WHEN n.k = 1 THEN p.balance_after ELSE n.p_balance END AS p_balance,
            CASE WHEN n.k = 1 THEN p.hash ELSE n.p_hash END AS p_hash
        FROM n
        LEFT JOIN LATERAL (
            SELECT e.seq, e.balance_after, e.hash FROM entries e
            WHERE n.k = 1 AND e.user_id = n.user_id AND e.seq < n.seq
            ORDER BY e.seq DESC LIMIT 1
        ) p ON true
    )
    SELECT c.user_id, c.seq,
        CASE
            WHEN c.seq IS DISTINCT FROM coalesce(c.p_seq, 0) + 1 THEN 'entries_seq_contiguous'
            WHEN c.balance_after IS DISTINCT FROM coalesce(c.p_balance, 0) + c.amount THEN 'entries_running_sum'
            ELSE 'entries_hash_chain'
        END AS violation
    INTO bad
    FROM checked c
    WHERE c.seq IS DISTINCT FROM coalesce(c.p_seq, 0) + 1
       OR c.balance_after IS DISTINCT FROM coalesce(c.p_balance, 0) + c.amount
       OR c.prev_hash IS DISTINCT FROM coalesce(c.p_hash,
              '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
    ORDER BY c.user_id, c.seq
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'entry % of user % does not continue the chain (%)', bad.seq, bad.user_id, bad.violation
            USING ERRCODE = 'check_violation', CONSTRAINT = bad.violation;
    END IF;
    RETURN NULL;
END
$$;
