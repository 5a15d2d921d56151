DROP TRIGGER IF EXISTS users_held_on_update ON users;
DROP TRIGGER IF EXISTS users_held_on_insert ON users;
DROP TABLE IF EXISTS holds;
DROP TABLE IF EXISTS hold_changes;
DROP FUNCTION IF EXISTS held_matches_holds();
DROP FUNCTION IF EXISTS hold_changes_append_only();
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_held_range;
ALTER TABLE users DROP COLUMN IF EXISTS held;
