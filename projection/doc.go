// Package projection owns the users table: the current balance of every
// user, a projection of the ledger's entries.
//
// Invariants: a balance is never below 0 nor above money.MaxBalance (CHECK
// constraints hold this as a second guard); a change is applied by one
// guarded conditional UPDATE, never by reading the balance and writing it
// back; seq counts the entries the row reflects, so the ledger knows the next
// entry's seq under the row lock. Write functions run inside the caller's
// transaction (they take a pgx.Tx, or queue onto the caller's pgx.Batch that
// the caller sends inside its transaction); reads take a Querier, which a
// pool, a connection and a transaction all satisfy.
//
// The package does not import ledger or api.
package projection
