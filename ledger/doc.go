// Package ledger owns the entries table and the write path: every balance
// change is one entry, appended in the same database transaction as the
// guarded projection update (package projection) and the entry's event in
// the outbox (package outbox).
//
// Invariants:
//   - entries are never updated or deleted (a trigger refuses it);
//   - per user, seq runs 1, 2, 3… with no gap and balance_after is the
//     running sum of amounts (the write path assigns seq under the user's
//     row lock; a trigger re-checks both);
//   - the projection equals the ledger: a user's balance and seq are its
//     last entry's (a deferred trigger re-checks every written row at
//     commit);
//   - per user, created_at never decreases along seq (the write path
//     stamps a user's changes no earlier than its last one, see
//     projection.Locked.ChangeTime): point-in-time balances and the from
//     and to of FindEntries read a time range as a run of seqs;
//   - hash = SHA-256(prev_hash || canonical encoding of the entry), and the
//     first entry's prev_hash is 32 zero bytes (see Canonical);
//   - a request that is refused writes nothing: no entry, no event, no
//     balance change, for any of its legs. Every write goes through one
//     path (write.go): lock, decide every request of the batch, then write
//     what was accepted; groupcommit.go batches the requests.
//
// The files hold one idea each: write.go and groupcommit.go the write
// path; verify.go the checks of one user or all (VerifyUser, VerifyAll),
// auditor.go the continuous auditor that repeats them at bounded cost,
// rebuild.go the projection's rebuild; statement.go signed statements and
// their offline check, checkpoint.go signed Merkle checkpoints of every
// chain head and inclusion proofs (package headtree builds the tree,
// package signing signs). Every consistent read goes through readSnapshot,
// or readSnapshotRouted for those that may run on the read replica;
// readpool.go routes those reads (withReadConn) and dates them.
// Statements, checkpoints and their chunks, and the signing keys are
// append-only (triggers refuse changes).
//
// Ledger is the only type the HTTP layer talks to; it maps database failures
// to ErrUnavailable and never lets a driver error through as a domain error.
package ledger
