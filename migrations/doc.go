// Package migrations owns the database schema: numbered up/down SQL files,
// embedded in the binary and applied with golang-migrate.
//
// Invariants: files are never edited once released; a change is a new
// numbered pair. Up is safe to run from several processes at once (the
// migrate driver holds an advisory lock).
//
// Tables and their owners: users (package projection), entries,
// idempotency_keys, audit_progress, holds and hold_changes, feed_cursor_key,
// signing_keys, checkpoints and checkpoint_chunks (package ledger), outbox,
// event_log and relay_partitions (package outbox). The database holds the
// ledger's rules as a second guard: CHECK constraints on amounts and
// balances, the chain trigger and the append-only triggers on entries,
// hold_changes, event_log, signing_keys, checkpoints and
// checkpoint_chunks, and deferred triggers
// that make every written users row equal its ledger's head (balance, seq)
// and its pending holds (held) at commit.
package migrations
