// Package faults holds ledgerd's fault-injection suite, in the manner of
// Jepsen's bank test:
//   - a workload of deposits, withdrawals, transfers, holds with their
//     captures and voids, all-or-nothing batches of 2 to 4 users (some
//     summing to zero, some refused for insufficient funds) and reversals
//     of transfers and batches answered 201 (some of a transaction
//     reversed already), that records every request it sent, its
//     idempotency key and its answer (or that it got none);
//   - a checker that compares that history with the ledger afterwards:
//     each answer has exactly its entries and a refusal none, retries never
//     made a second effect, money is conserved, holds are captured and
//     transactions reversed at most once and in whole, projections and hash
//     chains verify, and every entry's event arrives in order;
//   - one test per fault (terminated database sessions, a PostgreSQL
//     restart, a RabbitMQ outage, killed processes, clients that give up,
//     the primary crashing and its synchronous standby promoted), each
//     against two ledgerd processes and their two relays.
//
// The failover test runs on a throwaway primary and synchronous standby of
// their own (dbtest.NewCluster, scripts/pg-cluster.sh), the processes given
// the multi-host DATABASE_URL; it checks the history on the promoted
// standby, runs `ledgerd verify` there, and fails unless fresh writes are
// answered again within 10 s of the crash, with no restart of ledgerd.
//
// The tests restart the machine's shared PostgreSQL and RabbitMQ, so they
// run alone, one at a time, behind the build tag "faults":
// `make test-faults` (go test -tags faults -p 1 ./faults/). They restore
// the services even when they fail.
package faults
