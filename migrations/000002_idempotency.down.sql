DROP TABLE IF EXISTS idempotency_keys;
DROP FUNCTION IF EXISTS idempotency_keys_decide_once();
