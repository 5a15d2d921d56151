// Package projection owns the users table: the current balance of every
// user, a projection of the ledger's entries.
//
// Invariants: a balance is never below 0 nor above money.MaxBalance (CHECK
// constraints hold this as a second guard); rows are changed only under
// their row lock (QueueLock, taken in id order), and a write (QueueSet)
// applies only to a row still at the seq read under that lock; seq counts
// the entries the row reflects, so the ledger knows the next entry's seq;
// at commit every written row must equal its ledger's last entry (the
// deferred users_match_ledger trigger). Write functions run inside the
// caller's transaction (they take a pgx.Tx, or queue onto the caller's
// pgx.Batch that the caller sends inside its transaction); reads take a
// Querier, which a pool, a connection and a transaction all satisfy.
//
// The package does not import ledger or api.
package projection
