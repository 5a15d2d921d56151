// Package outbox owns the outbox table: messages written inside the same
// database transaction as the change they announce, and relayed to the
// message broker only after that transaction commits.
//
// Invariants: a message is enqueued in its producer's transaction, so it
// exists if and only if the change committed; messages keep their enqueue
// order (the table's identity column), which for one user's entries is seq
// order because those are written under the user's row lock.
//
// A message is stored whole (headers and body) or slim: with the id of the
// row it announces (SourceID), from which the relay builds it when it
// publishes (RelayConfig.ExpandFunc, which the producer provides), so that
// the outbox does not hold a second copy of every entry.
//
// The event log (event_log) keeps every event, in one global order: the
// Sequencer (one at a time, by an advisory lock) moves committed outbox
// rows into it in id order, with consecutive positions, one transaction
// per run, so that positions become visible in increasing order only and
// the log can be paged by position without ever missing an event. The
// Relay publishes the log by partition (user_id mod RELAY_PARTITIONS),
// each partition from its own offset (relay_partitions) by one relay at a
// time; the ledger's event feed reads the same rows (ReadLog). The log is
// append-only.
//
// The package does not import ledger or api: producers hand it Message
// values and an ExpandFunc.
package outbox
