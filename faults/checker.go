//go:build faults

package faults

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/outbox"
	"github.com/ledgerd/ledgerd/outbox/outboxtest"
)

// Report is what the checker found.
type Report struct {
	Ops, Definite, Indefinite, Attempts int
	Entries                             int64
	Events, Duplicates                  int
	// Kinds tallies the writes of each kind by outcome.
	Kinds     map[OpKind]*Tally
	Anomalies []string
}

func (r *Report) anomaly(format string, args ...any) {
	if len(r.Anomalies) < 50 {
		r.Anomalies = append(r.Anomalies, fmt.Sprintf(format, args...))
	}
}

// Tally counts the operations of one kind by outcome.
type Tally struct {
	Committed int            // answered 200 or 201
	Refused   map[string]int // by the error envelope's type
	Undecided int            // never got a definitive answer
}

// tally counts op under its kind.
func (r *Report) tally(op *Op) {
	if r.Kinds == nil {
		r.Kinds = map[OpKind]*Tally{}
	}
	t := r.Kinds[op.Kind]
	if t == nil {
		t = &Tally{Refused: map[string]int{}}
		r.Kinds[op.Kind] = t
	}
	switch {
	case op.Status == http.StatusOK || op.Status == http.StatusCreated:
		t.Committed++
	case op.Definite():
		t.Refused[op.ErrType]++
	default:
		t.Undecided++
	}
}

// Kind is the tally of one kind, zero when no operation had it.
func (r *Report) Kind(k OpKind) Tally {
	if t := r.Kinds[k]; t != nil {
		return *t
	}
	return Tally{}
}

// String reads "5 committed, 3 refused (conflict 1, insufficient_funds 2),
// 0 undecided".
func (t Tally) String() string {
	refused, kinds := 0, make([]string, 0, len(t.Refused))
	for _, typ := range slices.Sorted(maps.Keys(t.Refused)) {
		refused += t.Refused[typ]
		kinds = append(kinds, fmt.Sprintf("%s %d", typ, t.Refused[typ]))
	}
	s := fmt.Sprintf("%d committed, %d refused", t.Committed, refused)
	if refused > 0 {
		s += " (" + strings.Join(kinds, ", ") + ")"
	}
	return s + fmt.Sprintf(", %d undecided", t.Undecided)
}

// entry is an entry as the checker reads it, in SQL of its own.
type entry struct {
	id, key, typ string
	tx           string // coalesce(transaction_id, transfer_id, id)
	reversalOf   string // "" unless a reversal entry
	user, amount int64
}

// history is the entries table, indexed for the checks.
type history struct {
	byKey    map[string][]entry // keyed entries by idempotency key
	byTx     map[string][]entry // by transaction id
	reversal map[string]entry   // reversal entries by the entry they reverse
}

const checkEntries = `SELECT id::text, user_id, type, amount, coalesce(idempotency_key, ''),
  coalesce(transaction_id, transfer_id, id)::text, coalesce(reversal_of::text, '')
FROM entries`

func readHistory(ctx context.Context, pool *pgxpool.Pool) (history, error) {
	h := history{byKey: map[string][]entry{}, byTx: map[string][]entry{}, reversal: map[string]entry{}}
	rows, err := pool.Query(ctx, checkEntries)
	if err != nil {
		return h, fmt.Errorf("read entries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.id, &e.user, &e.typ, &e.amount, &e.key, &e.tx, &e.reversalOf); err != nil {
			return h, fmt.Errorf("scan entry: %w", err)
		}
		if e.key != "" {
			h.byKey[e.key] = append(h.byKey[e.key], e)
		}
		h.byTx[e.tx] = append(h.byTx[e.tx], e)
		if e.reversalOf != "" {
			h.reversal[e.reversalOf] = e // twice is the SQL check's to find
		}
	}
	if err := rows.Err(); err != nil {
		return h, fmt.Errorf("read entries: %w", err)
	}
	return h, nil
}

// Check compares the history with the ledger:
//   - every 200/201 answer has its entries (one; two for a transfer; one per
//     change for a batch; one per entry of the reversed transaction for a
//     reversal; none for a hold's placement or void), and a refusal has
//     none;
//   - a committed batch's entries are its changes (a deposit or a
//     withdrawal of the amount sent, per user) under one transaction id,
//     the one it was answered with; a committed reversal's entries are, for
//     each entry of the reversed transaction, one reversal entry of the
//     opposite amount for the same user naming it, under one transaction
//     id of their own;
//   - an entry exists only for an operation that was answered 200/201, or
//     that never got a definitive answer (it may have committed);
//   - retries with the same key never made a second effect;
//   - a refusal is one the workload can cause: insufficient funds, or 409
//     conflict for a capture or void (the hold ended) and for a reversal
//     (another reversal reversed the transaction, which the ledger shows);
//   - the sum of all balances is the opening sum plus the entries of the
//     deposits, withdrawals, captures, batches and reversals (transfers
//     conserve money);
//   - no balance is below zero or below its held amount;
//   - holds: none captured twice or above its amount, each capture's entry
//     named by its hold, held equal to the pending holds;
//   - reversals: no entry reversed twice, no transaction reversed by two
//     reversal transactions or in part, every reversal entry the opposite
//     of an entry that is neither an opening nor a reversal;
//   - every user's projection equals its ledger's last entry, and every
//     user verifies;
//   - every entry's event reached the consumer at least once, and per user
//     the events arrive in seq order after de-duplication.
func Check(ctx context.Context, pool *pgxpool.Pool, l *ledger.Ledger, ops []*Op, openingSum int64, consumer *outboxtest.Consumer) Report {
	var r Report
	r.Ops = len(ops)
	h, err := readHistory(ctx, pool)
	if err != nil {
		r.anomaly("%v", err)
		return r
	}
	expectedSum := openingSum + r.checkOps(ops, h)

	var sum, negative, overHeld int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(balance), 0), count(*) FILTER (WHERE balance < 0),
  count(*) FILTER (WHERE held > balance) FROM users`).Scan(&sum, &negative, &overHeld); err != nil {
		r.anomaly("read balances: %v", err)
	}
	if sum != expectedSum {
		r.anomaly("sum of balances %d, want %d (opening %d plus the entries of accepted deposits, withdrawals, captures, batches and reversals)", sum, expectedSum, openingSum)
	}
	if negative != 0 {
		r.anomaly("%d balances below zero", negative)
	}
	if overHeld != 0 {
		r.anomaly("%d users hold more than their balance", overHeld)
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

	// Reversals: no entry reversed twice, no transaction reversed by two
	// reversal transactions, none reversed in part, every reversal entry
	// the opposite of an entry of its user that may be reversed.
	var reversedTwice, twoReversals, partly, unlike int64
	if err := pool.QueryRow(ctx, checkReversals).Scan(&reversedTwice, &twoReversals, &partly, &unlike); err != nil {
		r.anomaly("check reversals: %v", err)
	}
	if reversedTwice+twoReversals+partly+unlike != 0 {
		r.anomaly("reversals: %d entries reversed twice, %d transactions reversed by two reversals, %d entries of reversed transactions not reversed, %d reversal entries unlike the entry they reverse",
			reversedTwice, twoReversals, partly, unlike)
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
		if b, err := outbox.ReadBacklog(ctx, pool); err == nil {
			pending = b.Pending
		} else {
			pending = -1
		}
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

// checkReversals counts, apart from the code under test: entries reversed
// twice; transactions (of the reversed entries) reversed by more than one
// reversal transaction; entries of a reversed transaction that no reversal
// entry names; reversal entries that name no entry, another user's, one
// whose amount is not the opposite of theirs, or an opening or reversal.
const checkReversals = `SELECT
  (SELECT count(*) FROM (SELECT reversal_of FROM entries WHERE reversal_of IS NOT NULL
     GROUP BY reversal_of HAVING count(*) > 1) x),
  (SELECT count(*) FROM (SELECT coalesce(o.transaction_id, o.transfer_id, o.id) FROM entries r
     JOIN entries o ON o.id = r.reversal_of WHERE r.type = 'reversal'
     GROUP BY 1 HAVING count(DISTINCT coalesce(r.transaction_id, r.transfer_id, r.id)) > 1) x),
  (SELECT count(*) FROM entries e
     WHERE coalesce(e.transaction_id, e.transfer_id, e.id) IN (SELECT coalesce(o.transaction_id, o.transfer_id, o.id)
       FROM entries r JOIN entries o ON o.id = r.reversal_of)
     AND NOT EXISTS (SELECT 1 FROM entries r WHERE r.reversal_of = e.id)),
  (SELECT count(*) FROM entries r LEFT JOIN entries o ON o.id = r.reversal_of
     WHERE r.type = 'reversal' AND (o.id IS NULL OR o.user_id <> r.user_id OR o.amount <> -r.amount
       OR o.type IN ('opening', 'reversal')))`

// checkOps compares every operation with its entries (see Check) and
// returns the sum of the entries that change the money in the ledger.
func (r *Report) checkOps(ops []*Op, h history) int64 {
	var moneyIn int64
	known := map[string]bool{}
	for _, op := range ops {
		r.Attempts += op.Attempts
		if op.Kind == OpRead {
			continue
		}
		known[op.Key] = true
		r.tally(op)
		if op.Definite() {
			r.Definite++
		} else {
			r.Indefinite++
		}
		var reversed []entry
		want := 1
		switch op.Kind {
		case OpTransfer:
			want = 2
		case OpHold, OpVoid:
			want = 0 // a hold's placement and void write no entry
		case OpBatch:
			want = len(op.Changes)
		case OpReversal:
			reversed = h.byTx[op.Reverses]
			want = len(reversed)
			if want == 0 {
				r.anomaly("op %s (reversal) names transaction %s, which was answered 201 but has no entries", op.Key, op.Reverses)
			}
		}
		got := h.byKey[op.Key]
		n := len(got)
		switch {
		case n != 0 && n != want:
			r.anomaly("op %s (%s): %d entries, want %d: a retry made a second effect", op.Key, op.Kind, n, want)
		case op.Status == http.StatusOK || op.Status == http.StatusCreated:
			if n != want {
				r.anomaly("op %s (%s) answered %d but has %d entries", op.Key, op.Kind, op.Status, n)
			}
		case op.Definite() && n != 0:
			r.anomaly("op %s (%s) answered %d %s but has %d entries", op.Key, op.Kind, op.Status, op.ErrType, n)
		case op.Definite() && !expectedRefusal(op):
			r.anomaly("op %s (%s) answered %d %s: not a refusal the workload can cause", op.Key, op.Kind, op.Status, op.ErrType)
		}
		var sum int64
		for _, e := range got {
			sum += e.amount
		}
		if op.Kind != OpTransfer {
			moneyIn += sum
		} else if sum != 0 {
			r.anomaly("transfer %s does not conserve money: %d", op.Key, sum)
		}
		switch {
		case n == 0 || n != want:
		case op.Kind == OpBatch:
			r.checkBatch(op, got)
		case op.Kind == OpReversal:
			r.checkReversal(op, got, reversed)
		}
		if op.Kind == OpReversal && op.ErrType == "conflict" && !reversedBefore(op, h) {
			r.anomaly("op %s (reversal of %s) answered 409 conflict, but no other reversal reversed that transaction", op.Key, op.Reverses)
		}
	}
	for key := range h.byKey {
		if !known[key] {
			r.anomaly("entries with key %s that no request sent", key)
		}
	}
	return moneyIn
}

// expectedRefusal reports whether op's refusal is one the workload can
// cause: insufficient funds for any write; 409 conflict for a capture or
// void of a hold that ended, and for a reversal of a transaction reversed
// already. The workload names only users that exist, holds it placed and
// transactions answered 201.
func expectedRefusal(op *Op) bool {
	switch op.ErrType {
	case "insufficient_funds":
		return true
	case "conflict":
		return op.Kind == OpCapture || op.Kind == OpVoid || op.Kind == OpReversal
	}
	return false
}

// checkBatch compares a committed batch's entries with its changes.
func (r *Report) checkBatch(op *Op, es []entry) {
	want := make(map[int64]int64, len(op.Changes))
	for _, c := range op.Changes {
		want[c.User] = c.Cents
	}
	for _, e := range es {
		cents, ok := want[e.user]
		typ := "deposit"
		if cents < 0 {
			typ = "withdrawal"
		}
		switch {
		case !ok:
			r.anomaly("batch %s: entry %s of user %d, who has no change in it or already has an entry", op.Key, e.id, e.user)
		case e.typ != typ || e.amount != cents:
			r.anomaly("batch %s: user %d's entry %s is a %s of %d, want a %s of %d", op.Key, e.user, e.id, e.typ, e.amount, typ, cents)
		}
		delete(want, e.user)
		if e.tx != es[0].tx {
			r.anomaly("batch %s: entries in transactions %s and %s", op.Key, es[0].tx, e.tx)
		}
	}
	if op.TxID != "" && es[0].tx != op.TxID {
		r.anomaly("batch %s was answered id %s, but its entries are of transaction %s", op.Key, op.TxID, es[0].tx)
	}
}

// checkReversal compares a committed reversal's entries with the entries
// of the transaction it reversed.
func (r *Report) checkReversal(op *Op, es, reversed []entry) {
	left := make(map[string]entry, len(reversed))
	for _, o := range reversed {
		left[o.id] = o
	}
	for _, e := range es {
		o, ok := left[e.reversalOf]
		switch {
		case e.typ != "reversal":
			r.anomaly("reversal %s: entry %s is a %s", op.Key, e.id, e.typ)
		case !ok:
			r.anomaly("reversal %s: entry %s reverses %q, not an entry of %s or one reversed twice", op.Key, e.id, e.reversalOf, op.Reverses)
		case e.user != o.user || e.amount != -o.amount:
			r.anomaly("reversal %s: entry %s is %d for user %d, reversing entry %s of %d for user %d", op.Key, e.id, e.amount, e.user, o.id, o.amount, o.user)
		}
		delete(left, e.reversalOf)
		if e.tx != es[0].tx {
			r.anomaly("reversal %s: entries in transactions %s and %s", op.Key, es[0].tx, e.tx)
		}
	}
	if es[0].tx == op.Reverses {
		r.anomaly("reversal %s: its entries are in the transaction they reverse, %s", op.Key, op.Reverses)
	}
	if op.TxID != "" && es[0].tx != op.TxID {
		r.anomaly("reversal %s was answered id %s, but its entries are of transaction %s", op.Key, op.TxID, es[0].tx)
	}
}

// reversedBefore reports whether a reversal other than op's (another key)
// reversed an entry of the transaction op names.
func reversedBefore(op *Op, h history) bool {
	for _, o := range h.byTx[op.Reverses] {
		if rev, ok := h.reversal[o.id]; ok && rev.key != op.Key {
			return true
		}
	}
	return false
}
