-- audit_checkpoints is where the continuous auditor records, per user, the
-- last entry it verified: the next pass checks only the entries after it,
-- continuing the hash chain from the recorded hash.
CREATE TABLE audit_checkpoints (
    user_id    bigint      NOT NULL,
    seq        bigint      NOT NULL,
    hash       bytea       NOT NULL,
    balance    bigint      NOT NULL,
    checked_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_checkpoints_pkey PRIMARY KEY (user_id),
    CONSTRAINT audit_checkpoints_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT audit_checkpoints_seq_positive CHECK (seq > 0),
    CONSTRAINT audit_checkpoints_hash_length CHECK (octet_length(hash) = 32)
);
