// Package outbox owns the outbox table: messages written inside the same
// database transaction as the change they announce, and relayed to the
// message broker only after that transaction commits.
//
// Invariants: a message is enqueued in its producer's transaction, so it
// exists if and only if the change committed; messages keep their enqueue
// order (the table's identity column), which for one user's entries is seq
// order because those are written under the user's row lock.
//
// The package does not import ledger or api: producers hand it Message
// values.
package outbox
