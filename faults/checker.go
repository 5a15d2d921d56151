//go:build faults

package faults

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/outbox/outboxtest"
)

// Report is what the checker found.
type Report struct {
	Ops, Definite, Indefinite, Attempts int
	Entries                             int64
	Events, Duplicates                  int
	Anomalies                           []string
}

func (r *Report) anomaly(format string, args ...any) {
	if len(r.Anomalies) < 50 {
		r.Anomalies = append(r.Anomalies, fmt.Sprintf(format, args...))
	}
}

// Check compares the history with the ledger:
//   - every 200/201 answer has its entries (one, or two for a transfer), and
//     a refusal has none;
//   - an entry exists only for an operation that was answered 200/201, or
//     that never got a definitive answer (it may have committed);
//   - retries with the same key never made a second effect;
//   - the sum of all balances is the opening sum plus the deposits minus
//     the withdrawals that have entries (transfers conserve money);
//   - no balance is below zero, every user's projection equals its
//     ledger's last entry, and every user verifies;
//   - every entry's event reached the consumer at least once, and per user
//     the events arrive in seq order after de-duplication.
func Check(ctx context.Context, pool *pgxpool.Pool, l *ledger.Ledger, ops []*Op, openingSum int64, consumer *outboxtest.Consumer) Report {
	var r Report
	r.Ops = len(ops)
	type keyed struct {
		n        int
		types    map[string]int
		sumCents int64
	}
	byKey := map[string]*keyed{}
	rows, err := pool.Query(ctx, `SELECT idempotency_key, type, amount FROM entries WHERE idempotency_key IS NOT NULL`)
	if err != nil {
		r.anomaly("read entries: %v", err)
		return r
	}
	for rows.Next() {
		var key, typ string
		var amount int64
		if err := rows.Scan(&key, &typ, &amount); err != nil {
			r.anomaly("scan entry: %v", err)
			return r
		}
		k := byKey[key]
		if k == nil {
			k = &keyed{types: map[string]int{}}
			byKey[key] = k
		}
		k.n++
		k.types[typ]++
		k.sumCents += amount
	}
	rows.Close()

	expectedSum := openingSum
	known := map[string]bool{}
	for _, op := range ops {
		r.Attempts += op.Attempts
		if op.Kind == OpRead {
			continue
		}
		known[op.Key] = true
		if op.Definite() {
			r.Definite++
		} else {
			r.Indefinite++
		}
		want := 1
		switch op.Kind {
		case OpTransfer:
			want = 2
		case OpHold, OpVoid:
			want = 0 // a hold's placement and void write no entry
		}
		got := byKey[op.Key]
		n := 0
		if got != nil {
			n = got.n
		}
		switch {
		case n != 0 && n != want:
			r.anomaly("op %s (%s): %d entries, want %d: a retry made a second effect", op.Key, op.Kind, n, want)
		case op.Status == http.StatusOK || op.Status == http.StatusCreated:
			if n != want {
				r.anomaly("op %s (%s) answered %d but has %d entries", op.Key, op.Kind, op.Status, n)
			}
		case op.Definite() && n != 0:
			r.anomaly("op %s (%s) answered %d %s but has %d entries", op.Key, op.Kind, op.Status, op.ErrType, n)
		case op.Definite() && op.ErrType != "insufficient_funds" &&
			!((op.Kind == OpCapture || op.Kind == OpVoid) && op.ErrType == "conflict"):
			r.anomaly("op %s (%s) answered %d %s: not a refusal the workload can cause", op.Key, op.Kind, op.Status, op.ErrType)
		}
		if got != nil && op.Kind != OpTransfer {
			expectedSum += got.sumCents
		}
		if got != nil && op.Kind == OpTransfer && got.sumCents != 0 {
			r.anomaly("transfer %s does not conserve money: %d", op.Key, got.sumCents)
		}
	}
	for key := range byKey {
		if !known[key] {
			r.anomaly("entries with key %s that no request sent", key)
		}
	}

	var sum, negative int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(balance), 0), count(*) FILTER (WHERE balance < 0) FROM users`).Scan(&sum, &negative); err != nil {
		r.anomaly("read balances: %v", err)
	}
	if sum != expectedSum {
		r.anomaly("sum of balances %d, want %d (opening %d plus accepted deposits and withdrawals)", sum, expectedSum, openingSum)
	}
	if negative != 0 {
		r.anomaly("%d balances below zero", negative)
	}
	// Holds: no hold captured twice, no capture above its hold, every
	// capture's entry named by its hold; held equals the pending holds.
	var twice, above, unnamed, heldWrong int64
	if err := pool.QueryRow(ctx, `SELECT
  (SELECT count(*) FROM (SELECT hold_id FROM entries WHERE hold_id IS NOT NULL GROUP BY hold_id HAVING count(*) > 1) x),
  (SELECT count(*) FROM entries e JOIN holds h ON h.id = e.hold_id WHERE -e.amount > h.amount),
  (SELECT count(*) FROM entries e LEFT JOIN holds h ON h.id = e.hold_id
     WHERE e.hold_id IS NOT NULL AND (h.status IS DISTINCT FROM 'captured' OR h.capture_entry_id IS DISTINCT FROM e.id)),
  (SELECT count(*) FROM users u WHERE u.held <> (SELECT coalesce(sum(amount), 0) FROM holds h
     WHERE h.user_id = u.id AND h.status = 'pending'))`).Scan(&twice, &above, &unnamed, &heldWrong); err != nil {
		r.anomaly("check holds: %v", err)
	}
	if twice+above+unnamed+heldWrong != 0 {
		r.anomaly("holds: %d captured twice, %d captures above their hold, %d captures their hold does not name, %d users with a wrong held",
			twice, above, unnamed, heldWrong)
	}
	for _, op := range ops {
		if op.Kind == OpHold && op.Status == http.StatusCreated && op.HoldID == "" {
			r.anomaly("op %s placed a hold without an id", op.Key)
		}
	}

	// Every user's projection equals its ledger's head, checked here in
	// SQL of its own, apart from the code under test.
	var mismatched int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM users u
LEFT JOIN LATERAL (SELECT seq, balance_after FROM entries WHERE user_id = u.id ORDER BY seq DESC LIMIT 1) e ON true
WHERE (u.seq, u.balance) IS DISTINCT FROM (coalesce(e.seq, 0), coalesce(e.balance_after, 0))`).Scan(&mismatched); err != nil {
		r.anomaly("compare projections: %v", err)
	}
	if mismatched != 0 {
		r.anomaly("%d users' projection differs from their ledger's last entry", mismatched)
	}
	v, err := l.VerifyAll(ctx, nil)
	if err != nil {
		r.anomaly("verify: %v", err)
	} else if v.FailedCount > 0 {
		r.anomaly("verify: %d users fail: %+v", v.FailedCount, v.Failed)
	}
	r.Entries = v.Entries

	// Events: wait for the relay to drain, then compare.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var pending int64
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending)
		if pending == 0 || time.Now().After(deadline) {
			if pending != 0 {
				r.anomaly("%d events still pending after 3 minutes", pending)
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var total int64
	var holdChanges int64
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM entries`).Scan(&total)
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM hold_changes`).Scan(&holdChanges)
	ds := consumer.WaitDistinctOrTimeout(int(total+holdChanges), 2*time.Minute)
	unique, dups := outboxtest.Dedup(ds)
	r.Events, r.Duplicates = len(unique), dups
	var entryEvents []outboxtest.Delivery
	holdEvents := 0
	for _, d := range unique {
		if strings.HasPrefix(d.RoutingKey, "ledger.hold.") {
			holdEvents++
			continue
		}
		entryEvents = append(entryEvents, d)
	}
	if int64(len(entryEvents)) != total || int64(holdEvents) != holdChanges {
		r.anomaly("%d distinct entry events delivered for %d entries, %d hold events for %d hold changes",
			len(entryEvents), total, holdEvents, holdChanges)
	}
	last := map[int64]int64{}
	for _, d := range entryEvents {
		u, _ := d.Headers["ledger-user-id"].(int64)
		s, _ := d.Headers["ledger-seq"].(int64)
		if s != last[u]+1 {
			r.anomaly("user %d: event seq %d after %d", u, s, last[u])
		}
		last[u] = s
	}
	return r
}
