-- Holds: part of a balance reserved now, captured (withdrawn) or voided
-- later, or expired. held = the sum of a user's pending holds, and every
-- debit needs balance - held >= its amount; the database holds
-- 0 <= held <= balance as a second guard.
ALTER TABLE users ADD COLUMN held bigint NOT NULL DEFAULT 0;
ALTER TABLE users ADD CONSTRAINT users_held_range CHECK (held >= 0 AND held <= balance);

-- hold_changes is the record of holds: one row per change of a hold, each
-- the hold as it is after the change, never updated or deleted. A hold is
-- placed once and ends at most once (captured, voided or expired).
CREATE TABLE hold_changes (
    id               uuid        NOT NULL,
    hold_id          uuid        NOT NULL,
    user_id          bigint      NOT NULL,
    change           text        NOT NULL,
    status           text        NOT NULL,
    amount           bigint      NOT NULL,
    captured_amount  bigint,
    expires_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    at               timestamptz NOT NULL,
    description      text,
    reference        text,
    capture_entry_id uuid,
    capture_seq      bigint,
    CONSTRAINT hold_changes_pkey PRIMARY KEY (id),
    CONSTRAINT hold_changes_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT hold_changes_change_valid CHECK (
        (change = 'placed' AND status = 'pending') OR (change IN ('captured', 'voided', 'expired') AND status = change)),
    CONSTRAINT hold_changes_amount_range CHECK (amount > 0 AND amount <= 100000000000000),
    CONSTRAINT hold_changes_capture CHECK (
        (change = 'captured') = (captured_amount IS NOT NULL AND capture_entry_id IS NOT NULL AND capture_seq IS NOT NULL)
        AND (captured_amount IS NULL OR (captured_amount > 0 AND captured_amount <= amount))),
    CONSTRAINT hold_changes_description_length CHECK (char_length(description) <= 500),
    CONSTRAINT hold_changes_reference_length CHECK (char_length(reference) <= 200)
);
CREATE UNIQUE INDEX hold_changes_placed_once ON hold_changes (hold_id) WHERE change = 'placed';
CREATE UNIQUE INDEX hold_changes_ends_once ON hold_changes (hold_id) WHERE change <> 'placed';
-- A user's placements, for verify's sum of its recorded pending holds.
CREATE INDEX hold_changes_user_idx ON hold_changes (user_id) WHERE change = 'placed';

CREATE FUNCTION hold_changes_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'hold changes are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER hold_changes_no_update_delete BEFORE UPDATE OR DELETE ON hold_changes
    FOR EACH ROW EXECUTE FUNCTION hold_changes_append_only();
CREATE TRIGGER hold_changes_no_truncate BEFORE TRUNCATE ON hold_changes
    FOR EACH STATEMENT EXECUTE FUNCTION hold_changes_append_only();

-- holds is the projection of the record: each hold as its last change left
-- it (rebuildable from hold_changes).
CREATE TABLE holds (
    id               uuid        NOT NULL,
    user_id          bigint      NOT NULL,
    status           text        NOT NULL,
    amount           bigint      NOT NULL,
    captured_amount  bigint,
    expires_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    description      text,
    reference        text,
    capture_entry_id uuid,
    capture_seq      bigint,
    CONSTRAINT holds_pkey PRIMARY KEY (id),
    CONSTRAINT holds_user_fkey FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT holds_status_valid CHECK (status IN ('pending', 'captured', 'voided', 'expired')),
    CONSTRAINT holds_amount_range CHECK (amount > 0 AND amount <= 100000000000000)
);
-- A user's holds, newest first (listing), and its pending ones by expiry
-- (the guard, and the sweep).
CREATE INDEX holds_user_idx ON holds (user_id, created_at DESC, id DESC);
CREATE INDEX holds_pending_idx ON holds (user_id, expires_at) WHERE status = 'pending';
CREATE INDEX holds_expiry_idx ON holds (expires_at) WHERE status = 'pending';

-- held_matches_holds: at commit, a user's held must equal the sum of its
-- pending holds. It runs for users rows whose held is or was not 0, and for
-- every written hold: changes of users without holds pay nothing for it.
-- On users the row's id is the user; on holds, its user_id.
CREATE FUNCTION held_matches_holds() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    uid bigint;
    u_held bigint;
    h_held bigint;
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        uid := NEW.id;
    ELSE
        uid := NEW.user_id;
    END IF;
    SELECT held INTO u_held FROM users WHERE id = uid;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT coalesce(sum(amount), 0) INTO h_held FROM holds WHERE user_id = uid AND status = 'pending';
    IF u_held <> h_held THEN
        RAISE EXCEPTION 'user % is projected with % held but its pending holds sum to %', uid, u_held, h_held
            USING ERRCODE = 'check_violation', CONSTRAINT = 'users_match_ledger';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER users_held_on_update AFTER UPDATE ON users
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.held <> 0 OR NEW.held <> 0) EXECUTE FUNCTION held_matches_holds();
CREATE CONSTRAINT TRIGGER users_held_on_insert AFTER INSERT ON users
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.held <> 0) EXECUTE FUNCTION held_matches_holds();
CREATE CONSTRAINT TRIGGER holds_match_held AFTER INSERT OR UPDATE ON holds
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION held_matches_holds();
