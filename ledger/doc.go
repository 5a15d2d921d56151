// Package ledger owns the entries table and the write path: every balance
// change is one entry, appended in the same database transaction as the
// guarded projection update (package projection) and the entry's event in
// the outbox (package outbox).
//
// Invariants:
//   - entries are never updated or deleted (a trigger refuses it);
//   - per user, seq runs 1, 2, 3… with no gap and balance_after is the
//     running sum of amounts (the guarded update assigns seq under the user's
//     row lock; a trigger re-checks both);
//   - hash = SHA-256(prev_hash || canonical encoding of the entry), and the
//     first entry's prev_hash is 32 zero bytes (see Canonical);
//   - a change that is refused writes nothing: no entry, no event, no
//     balance change.
//
// Ledger is the only type the HTTP layer talks to; it maps database failures
// to ErrUnavailable and never lets a driver error through as a domain error.
package ledger
