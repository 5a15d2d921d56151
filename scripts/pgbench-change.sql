-- One change committed alone, as the write path commits it, for the
-- pgbench ceilings of scripts/bench.sh and scripts/scaling.sh (they prepend
-- `\set uid random(1, USERS)`): the guarded update of the user's row, the
-- entry with its chain trigger, the outbox row, COMMIT with the deferred
-- projection check. Keep it in step with the write path's statements.
\set amount random(1, 100)
BEGIN;
UPDATE users SET balance = balance + :amount, seq = seq + 1, updated_at = greatest(now(), updated_at)
  WHERE id = :uid AND balance + :amount BETWEEN 0 AND 9000000000000000 RETURNING seq AS s, balance AS b \gset
INSERT INTO entries (id, user_id, seq, type, amount, balance_after, created_at, prev_hash, hash)
  SELECT gen_random_uuid(), :uid, :s, 'deposit', :amount, :b, now(), p.h, sha256(p.h || int8send(:s))
  FROM (SELECT coalesce((SELECT hash FROM entries WHERE user_id = :uid AND seq = :s - 1),
        '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea) AS h) p;
INSERT INTO outbox (event_id, routing_key, headers, body, created_at, user_id)
  VALUES (gen_random_uuid(), 'ledger.entry.deposit', '{}', '{"data":{}}', now(), :uid);
COMMIT;
