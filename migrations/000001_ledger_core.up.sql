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

-- entries_guard_chain refuses an entry that does not continue its user's
-- chain: seq is the previous seq + 1 (1 for the first), balance_after is the
-- previous balance_after + amount, prev_hash is the previous hash (32 zero
-- bytes for the first). Rows inserted earlier in the same statement are
-- visible here, so a multi-row insert of consecutive entries passes.
CREATE FUNCTION entries_guard_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    prev_balance bigint := 0;
    prev_hash    bytea  := '\x0000000000000000000000000000000000000000000000000000000000000000';
BEGIN
    IF NEW.seq > 1 THEN
        SELECT e.balance_after, e.hash INTO prev_balance, prev_hash
        FROM entries e WHERE e.user_id = NEW.user_id AND e.seq = NEW.seq - 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'entry % of user % does not follow an entry', NEW.seq, NEW.user_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_seq_contiguous';
        END IF;
    END IF;
    IF NEW.balance_after IS DISTINCT FROM prev_balance + NEW.amount THEN
        RAISE EXCEPTION 'entry % of user %: balance_after is not the running sum', NEW.seq, NEW.user_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_running_sum';
    END IF;
    IF NEW.prev_hash IS DISTINCT FROM prev_hash THEN
        RAISE EXCEPTION 'entry % of user %: prev_hash does not match the previous hash', NEW.seq, NEW.user_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_hash_chain';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER entries_guard_chain BEFORE INSERT ON entries
    FOR EACH ROW EXECUTE FUNCTION entries_guard_chain();

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
