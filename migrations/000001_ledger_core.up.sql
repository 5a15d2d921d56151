-- The core of the ledger: the balance projection (users), the append-only
-- entries and the transactional outbox. Every rule the Go code promises is
-- also enforced here, as a second guard.

-- users is the balance projection: one row per user, updated by a guarded
-- conditional UPDATE in the same transaction as the entry it reflects. It
-- can be rebuilt from entries (balance = last balance_after, seq = last seq).
CREATE TABLE users (
    id         bigint      NOT NULL,
    balance    bigint      NOT NULL DEFAULT 0,
    seq        bigint      NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_id_positive CHECK (id > 0),
    CONSTRAINT users_balance_range CHECK (balance BETWEEN 0 AND 9000000000000000),
    CONSTRAINT users_seq_nonnegative CHECK (seq >= 0)
);

-- Ids handed out when a client creates a user without choosing one.
CREATE SEQUENCE users_id_seq AS bigint MINVALUE 1 OWNED BY users.id;

-- entries is the ledger: one row per change, never updated or deleted.
CREATE TABLE entries (
    id              uuid        NOT NULL,
    user_id         bigint      NOT NULL,
    seq             bigint      NOT NULL,
    type            text        NOT NULL,
    amount          bigint      NOT NULL,
    balance_after   bigint      NOT NULL,
    transfer_id     uuid,
    description     text,
    reference       text,
    idempotency_key text,
    created_at      timestamptz NOT NULL,
    prev_hash       bytea       NOT NULL,
    hash            bytea       NOT NULL,
    CONSTRAINT entries_pkey PRIMARY KEY (id),
    CONSTRAINT entries_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT entries_user_seq_key UNIQUE (user_id, seq),
    CONSTRAINT entries_seq_positive CHECK (seq > 0),
    CONSTRAINT entries_type_valid CHECK (
        type IN ('opening', 'deposit', 'withdrawal', 'transfer_in', 'transfer_out')),
    CONSTRAINT entries_amount_sign CHECK (
        (type IN ('opening', 'deposit', 'transfer_in') AND amount > 0)
        OR (type IN ('withdrawal', 'transfer_out') AND amount < 0)),
    CONSTRAINT entries_amount_range CHECK (amount BETWEEN -100000000000000 AND 100000000000000),
    CONSTRAINT entries_balance_range CHECK (balance_after BETWEEN 0 AND 9000000000000000),
    CONSTRAINT entries_transfer_id CHECK (
        (type IN ('transfer_in', 'transfer_out')) = (transfer_id IS NOT NULL)),
    CONSTRAINT entries_description_length CHECK (char_length(description) <= 500),
    CONSTRAINT entries_reference_length CHECK (char_length(reference) <= 200),
    CONSTRAINT entries_hash_length CHECK (octet_length(hash) = 32 AND octet_length(prev_hash) = 32)
);

-- Point-in-time and date-range reads walk a user's entries by time.
CREATE INDEX entries_user_created_idx ON entries (user_id, created_at, seq);

-- entries_guard_chain refuses entries that do not continue their user's
-- chain: seq is the previous seq + 1 (1 for the first), balance_after is the
-- previous balance_after + amount, prev_hash is the previous hash (32 zero
-- bytes for the first). It runs once per INSERT statement, over all the
-- statement's rows at once (a transition table), so a batch of hundreds of
-- entries costs one query, not one trigger call per row. The "previous"
-- entry of a new row may itself be new: after the statement, the table
-- holds both.
CREATE FUNCTION entries_guard_chain() RETURNS trigger
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

CREATE TRIGGER entries_guard_chain AFTER INSERT ON entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION entries_guard_chain();

-- entries_append_only refuses every UPDATE, DELETE and TRUNCATE.
CREATE FUNCTION entries_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'entries are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER entries_no_update_delete BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION entries_append_only();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION entries_append_only();

-- outbox holds the events of committed entries until the relay has had them
-- confirmed by the broker. Rows are written in the entry's own transaction.
CREATE TABLE outbox (
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    event_id     uuid        NOT NULL,
    routing_key  text        NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '{}',
    body         json        NOT NULL,
    created_at   timestamptz NOT NULL,
    published_at timestamptz,
    CONSTRAINT outbox_pkey PRIMARY KEY (id),
    CONSTRAINT outbox_event_id_key UNIQUE (event_id)
);

-- The relay reads pending rows in id order.
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE published_at IS NULL;
