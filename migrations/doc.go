// Package migrations owns the database schema: numbered up/down SQL files,
// embedded in the binary and applied with golang-migrate.
//
// Invariants: files are never edited once released; a change is a new
// numbered pair. Up is safe to run from several processes at once (the
// migrate driver holds an advisory lock).
//
// Tables and their owners: users (package projection), entries (package
// ledger), outbox (package outbox).
package migrations
