-- Proof that travels: signed statements and signed Merkle checkpoints of
-- every user's chain head (see docs/audit.md, "Proof without the
-- database").

-- The continuous auditor's per-user progress was called audit_checkpoints;
-- "checkpoint" now means a signed Merkle root, so the table takes the name
-- of what it holds.
ALTER TABLE audit_checkpoints RENAME TO audit_progress;
ALTER TABLE audit_progress RENAME CONSTRAINT audit_checkpoints_pkey TO audit_progress_pkey;
ALTER TABLE audit_progress RENAME CONSTRAINT audit_checkpoints_user_fkey TO audit_progress_user_fkey;
ALTER TABLE audit_progress RENAME CONSTRAINT audit_checkpoints_seq_positive TO audit_progress_seq_positive;
ALTER TABLE audit_progress RENAME CONSTRAINT audit_checkpoints_hash_length TO audit_progress_hash_length;

-- Every public key that has signed anything, recorded when a server first
-- starts with it, so that statements and checkpoints signed before a key
-- rotation still name a key an auditor can fetch (GET /api/signing-key?keyId=).
CREATE TABLE signing_keys (
    key_id         text        NOT NULL,
    public_key_pem text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT signing_keys_pkey PRIMARY KEY (key_id),
    CONSTRAINT signing_keys_key_id_hex CHECK (key_id ~ '^[0-9a-f]{64}$')
);

-- A checkpoint: the RFC 6962 Merkle root over every user's chain head
-- (user_id, seq, hash) in one snapshot, leaves in user id order, signed
-- when a key is configured.
CREATE TABLE checkpoints (
    id         bigint      GENERATED ALWAYS AS IDENTITY,
    at         timestamptz NOT NULL,
    users      bigint      NOT NULL,
    root       bytea       NOT NULL,
    key_id     text,
    signature  bytea,
    build_ms   bigint      NOT NULL,
    CONSTRAINT checkpoints_pkey PRIMARY KEY (id),
    CONSTRAINT checkpoints_key_fkey FOREIGN KEY (key_id) REFERENCES signing_keys (key_id),
    CONSTRAINT checkpoints_users_nonnegative CHECK (users >= 0),
    CONSTRAINT checkpoints_root_length CHECK (octet_length(root) = 32),
    CONSTRAINT checkpoints_signed CHECK ((key_id IS NULL) = (signature IS NULL)),
    CONSTRAINT checkpoints_signature_length CHECK (signature IS NULL OR octet_length(signature) = 64)
);

-- The tree of a checkpoint, cut into chunks of consecutive leaves (1024 but
-- the last): each chunk's first user id, its leaves' (user id, seq) as
-- varints (package headtree; the hashes are the entries'), and its root.
-- An inclusion proof reads one chunk and every chunk's root. A checkpoint's
-- chunks commit in the same transaction as its row.
CREATE TABLE checkpoint_chunks (
    checkpoint_id bigint NOT NULL,
    chunk         integer NOT NULL,
    first_user_id bigint NOT NULL,
    leaves        integer NOT NULL,
    heads         bytea   NOT NULL,
    root          bytea   NOT NULL,
    CONSTRAINT checkpoint_chunks_pkey PRIMARY KEY (checkpoint_id, chunk),
    CONSTRAINT checkpoint_chunks_first_user_key UNIQUE (checkpoint_id, first_user_id),
    CONSTRAINT checkpoint_chunks_checkpoint_fkey FOREIGN KEY (checkpoint_id) REFERENCES checkpoints (id)
        DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT checkpoint_chunks_chunk_nonnegative CHECK (chunk >= 0),
    CONSTRAINT checkpoint_chunks_leaves_positive CHECK (leaves > 0),
    CONSTRAINT checkpoint_chunks_root_length CHECK (octet_length(root) = 32)
);

-- Keys, checkpoints and their chunks are append-only, like entries.
CREATE FUNCTION proof_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER signing_keys_no_update_delete BEFORE UPDATE OR DELETE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION proof_append_only();
CREATE TRIGGER signing_keys_no_truncate BEFORE TRUNCATE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION proof_append_only();
CREATE TRIGGER checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION proof_append_only();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION proof_append_only();
CREATE TRIGGER checkpoint_chunks_no_update_delete BEFORE UPDATE OR DELETE ON checkpoint_chunks
    FOR EACH ROW EXECUTE FUNCTION proof_append_only();
CREATE TRIGGER checkpoint_chunks_no_truncate BEFORE TRUNCATE ON checkpoint_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION proof_append_only();
