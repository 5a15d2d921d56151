// Package faults holds ledgerd's fault-injection suite: a workload that
// records every request it sent, its idempotency key and its answer (or
// that it got none), a checker that compares that history with the ledger
// afterwards in the manner of Jepsen's bank test, and one test per fault
// (terminated database sessions, a PostgreSQL restart, a RabbitMQ outage,
// killed processes, clients that give up), each against two ledgerd
// processes and their two relays.
//
// The tests restart the machine's shared PostgreSQL and RabbitMQ, so they
// run alone, one at a time, behind the build tag "faults":
// `make test-faults` (go test -tags faults -p 1 ./faults/). They restore
// the services even when they fail.
package faults
