DROP TRIGGER IF EXISTS users_match_ledger ON users;
DROP FUNCTION IF EXISTS users_match_ledger();
