DROP TABLE checkpoint_chunks;
DROP TABLE checkpoints;
DROP TABLE signing_keys;
DROP FUNCTION proof_append_only();

ALTER TABLE audit_progress RENAME CONSTRAINT audit_progress_hash_length TO audit_checkpoints_hash_length;
ALTER TABLE audit_progress RENAME CONSTRAINT audit_progress_seq_positive TO audit_checkpoints_seq_positive;
ALTER TABLE audit_progress RENAME CONSTRAINT audit_progress_user_fkey TO audit_checkpoints_user_fkey;
ALTER TABLE audit_progress RENAME CONSTRAINT audit_progress_pkey TO audit_checkpoints_pkey;
ALTER TABLE audit_progress RENAME TO audit_checkpoints;
