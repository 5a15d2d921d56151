-- idempotency_keys stores the decided outcome of every request that carried
-- an Idempotency-Key, written in the same transaction as its effect (or as
-- the only write of a decided rejection). A retry with the same key and the
-- same request gets the stored answer back; with another request, 409.
CREATE TABLE idempotency_keys (
    -- scope separates clients: the token's identity when auth is on, '' off.
    scope        text        NOT NULL,
    key          text        NOT NULL,
    -- SHA-256 of the method, the path and the body of the first request.
    request_hash bytea       NOT NULL,
    -- The stored HTTP answer; status 0 only inside the claiming
    -- transaction, before the outcome is decided (never committed so).
    status       integer     NOT NULL,
    response     bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, key),
    CONSTRAINT idempotency_keys_key_valid CHECK (key ~ '^[\x20-\x7e]{1,255}$'),
    CONSTRAINT idempotency_keys_hash_length CHECK (octet_length(request_hash) = 32)
);

-- The purge removes keys past their retention, oldest first.
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- A decided outcome is never rewritten once committed.
CREATE FUNCTION idempotency_keys_decide_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 0 AND (NEW.key, NEW.scope, NEW.request_hash, NEW.status, NEW.response)
            IS DISTINCT FROM (OLD.key, OLD.scope, OLD.request_hash, OLD.status, OLD.response) THEN
        RAISE EXCEPTION 'idempotency key % is already decided', OLD.key
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER idempotency_keys_decide_once BEFORE UPDATE ON idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION idempotency_keys_decide_once();
