//go:build faults

package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// OpKind is what a workload operation does.
type OpKind string

// The operations of the workload.
const (
	OpDeposit    OpKind = "deposit"
	OpWithdrawal OpKind = "withdrawal"
	OpTransfer   OpKind = "transfer"
	OpRead       OpKind = "read"
	OpHold       OpKind = "hold"     // place a hold of Cents on From
	OpCapture    OpKind = "capture"  // capture Cents of HoldID
	OpVoid       OpKind = "void"     // void HoldID
	OpBatch      OpKind = "batch"    // apply Changes all or nothing
	OpReversal   OpKind = "reversal" // reverse the transaction Reverses
)

// Change is one change of a batch: Cents (signed, never 0) to User's
// balance.
type Change struct {
	User  int64
	Cents int64
}

// Op is one logical operation and everything that happened to it: every
// attempt was the same request with the same Idempotency-Key.
type Op struct {
	Key      string
	Kind     OpKind
	From, To int64 // From is the user of a deposit or withdrawal
	Cents    int64 // > 0; a withdrawal or transfer takes it from From
	Attempts int
	// Status is the last definitive answer (an HTTP status below 500 other
	// than 429), 0 when the operation never got one.
	Status int
	// ErrType is the error envelope's type of a refused operation.
	ErrType string
	// Replayed reports that the definitive answer was a replay.
	Replayed bool
	// Abandoned reports that the client gave up on an attempt (a
	// cancelled context) before the answer.
	Abandoned bool
	// HoldID is the hold a capture or void names, or the one a placement
	// answered 201 created.
	HoldID string
	// Changes are a batch's changes, each of a different user.
	Changes []Change
	// Reverses is the transaction a reversal names: the id a transfer or a
	// batch was answered 201 with.
	Reverses string
	// TxID is data.id of a 201 answer to a transfer, a batch or a
	// reversal: the transaction id of its entries.
	TxID string
	// Sent and Answered are when the attempt that got the definitive
	// answer was sent and answered.
	Sent, Answered time.Time
}

// placedHold is a hold the workload placed, for later captures and voids.
type placedHold struct {
	id    string
	cents int64
}

// Definite reports whether the operation got an answer that decides it.
func (o *Op) Definite() bool { return o.Status != 0 }

// Workload drives ledgerd processes with a mixed load of deposits,
// withdrawals, transfers, holds and their captures and voids, batches,
// reversals and reads over Users users, retrying each write with its
// idempotency key until it gets a definitive answer (or MaxAttempts run
// out), spreading attempts over the targets that answer.
type Workload struct {
	Targets     func() []string // base URLs of the live processes
	Users       int64
	Clients     int
	MaxAttempts int
	// CancelRate is the chance that an attempt is abandoned at a random
	// point (the client's context is cancelled).
	CancelRate float64
	// Opening is a user's opening balance in cents. One batch in three
	// moves between Opening/2 and 2×Opening from one user to the others,
	// so that some batches (and reversals of them) are refused for
	// insufficient funds; with Opening 0 every batch is small.
	Opening int64

	client  *http.Client
	mu      sync.Mutex
	ops     []*Op
	holds   []placedHold
	txs     []string // transactions answered 201, for reversals
	targets []string // transactions reversals named, to name again
	sent    atomic.Int64
	stopped atomic.Bool
}

func (w *Workload) init() {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = w.Clients * 2
	w.client = &http.Client{Transport: tr, Timeout: 15 * time.Second}
	if w.MaxAttempts == 0 {
		w.MaxAttempts = 200
	}
}

// Run drives the load until ctx ends or n operations are done; it returns
// the history.
func (w *Workload) Run(ctx context.Context, n int) []*Op {
	w.init()
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for c := range w.Clients {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
			for ctx.Err() == nil && next.Add(1) <= int64(n) {
				op := w.newOp(rng)
				w.mu.Lock()
				w.ops = append(w.ops, op)
				w.mu.Unlock()
				w.execute(ctx, rng, op)
			}
		})
	}
	wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*Op(nil), w.ops...)
}

// Sent is the number of attempts made so far.
func (w *Workload) Sent() int64 { return w.sent.Load() }

func (w *Workload) newOp(rng *mrand.Rand) *Op {
	var b [8]byte
	_, _ = rand.Read(b[:])
	op := &Op{Key: "fault-" + hex.EncodeToString(b[:]), From: 1 + rng.Int64N(w.Users)}
	switch p := rng.IntN(100); {
	case p < 21:
		op.Kind, op.Cents = OpDeposit, 1+rng.Int64N(5_000)
	case p < 44:
		op.Kind, op.Cents = OpWithdrawal, 1+rng.Int64N(5_000)
	case p < 52:
		op.Kind, op.Changes = OpBatch, w.newChanges(rng)
	case p < 57:
		// Reverse a transfer or batch answered 201 (maybe reversed
		// already: then the answer is 409 conflict, which decides
		// nothing). One in four names a transaction a reversal named
		// recently, so that reversals of one transaction meet.
		w.mu.Lock()
		switch {
		case len(w.targets) > 0 && rng.IntN(4) == 0:
			recent := w.targets[max(0, len(w.targets)-4):]
			op.Kind, op.Reverses = OpReversal, recent[rng.IntN(len(recent))]
		case len(w.txs) > 0:
			op.Kind, op.Reverses = OpReversal, w.txs[rng.IntN(len(w.txs))]
			w.targets = append(w.targets, op.Reverses)
		default:
			op.Kind = OpRead
		}
		w.mu.Unlock()
	case p < 80:
		op.Kind, op.Cents = OpTransfer, 1+rng.Int64N(5_000)
		op.To = 1 + rng.Int64N(w.Users-1)
		if op.To >= op.From {
			op.To++
		}
	case p < 87:
		op.Kind, op.Cents = OpHold, 1+rng.Int64N(5_000)
	case p < 93:
		// Capture or void a hold placed earlier (maybe already ended:
		// then the answer is 409 conflict, which decides nothing).
		w.mu.Lock()
		if len(w.holds) > 0 {
			h := w.holds[rng.IntN(len(w.holds))]
			op.HoldID = h.id
			if p < 90 {
				op.Kind, op.Cents = OpCapture, 1+rng.Int64N(h.cents)
			} else {
				op.Kind = OpVoid
			}
		} else {
			op.Kind = OpRead
		}
		w.mu.Unlock()
	default:
		op.Kind = OpRead
	}
	return op
}

// newChanges draws a batch of 2 to 4 distinct users: independent small
// changes (the batch moves money in or out), small changes that sum to 0,
// or one large debit spread over the others.
func (w *Workload) newChanges(rng *mrand.Rand) []Change {
	users := rng.Perm(int(w.Users))[:min(2+rng.IntN(3), int(w.Users))]
	cs := make([]Change, len(users))
	for i, u := range users {
		cs[i].User = int64(u) + 1
	}
	small := func() int64 {
		c := 1 + rng.Int64N(5_000)
		if rng.IntN(2) == 0 {
			return -c
		}
		return c
	}
	switch shape := rng.IntN(3); {
	case shape == 0:
		for i := range cs {
			cs[i].Cents = small()
		}
	case shape == 1 || w.Opening < 2:
		var sum int64
		for i := range cs[:len(cs)-1] {
			cs[i].Cents = small()
			sum += cs[i].Cents
		}
		if sum == 0 { // the last change may not be 0: grow the first
			if cs[0].Cents > 0 {
				cs[0].Cents++
				sum++
			} else {
				cs[0].Cents--
				sum--
			}
		}
		cs[len(cs)-1].Cents = -sum
	default:
		big := w.Opening/2 + rng.Int64N(w.Opening*3/2)
		cs[0].Cents = -big
		credits := int64(len(cs) - 1)
		for i := range cs[1:] {
			cs[1+i].Cents = big / credits
		}
		cs[len(cs)-1].Cents += big % credits
	}
	return cs
}

// amount formats signed cents as the API's decimal string.
func amount(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

func (w *Workload) request(op *Op) (method, path, body string) {
	switch op.Kind {
	case OpDeposit:
		return http.MethodPut, fmt.Sprintf("/api/users/%d/balance", op.From), fmt.Sprintf(`{"amount": "%d.%02d"}`, op.Cents/100, op.Cents%100)
	case OpWithdrawal:
		return http.MethodPut, fmt.Sprintf("/api/users/%d/balance", op.From), fmt.Sprintf(`{"amount": "-%d.%02d"}`, op.Cents/100, op.Cents%100)
	case OpTransfer:
		return http.MethodPost, "/api/transfers", fmt.Sprintf(`{"fromUserId": %d, "toUserId": %d, "amount": "%d.%02d"}`, op.From, op.To, op.Cents/100, op.Cents%100)
	case OpHold:
		return http.MethodPost, fmt.Sprintf("/api/users/%d/holds", op.From), fmt.Sprintf(`{"amount": "%d.%02d"}`, op.Cents/100, op.Cents%100)
	case OpCapture:
		return http.MethodPost, "/api/holds/" + op.HoldID + "/capture", fmt.Sprintf(`{"amount": "%d.%02d"}`, op.Cents/100, op.Cents%100)
	case OpVoid:
		return http.MethodPost, "/api/holds/" + op.HoldID + "/void", `{}`
	case OpBatch:
		changes := make([]string, len(op.Changes))
		for i, c := range op.Changes {
			changes[i] = fmt.Sprintf(`{"userId": %d, "amount": "%s"}`, c.User, amount(c.Cents))
		}
		return http.MethodPost, "/api/batches", `{"changes": [` + strings.Join(changes, ", ") + `]}`
	case OpReversal:
		return http.MethodPost, "/api/reversals", fmt.Sprintf(`{"transactionId": %q}`, op.Reverses)
	}
	return http.MethodGet, fmt.Sprintf("/api/users/%d", op.From), ""
}

// execute sends op until it gets a definitive answer. 5xx, 429, transport
// errors and abandoned attempts are retried with the same key, after a
// short backoff, on any live target.
func (w *Workload) execute(ctx context.Context, rng *mrand.Rand, op *Op) {
	method, path, body := w.request(op)
	for op.Attempts < w.MaxAttempts && ctx.Err() == nil {
		op.Attempts++
		targets := w.Targets()
		if len(targets) == 0 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		target := targets[rng.IntN(len(targets))]
		actx, cancel := context.WithCancel(ctx)
		sent := time.Now()
		if w.CancelRate > 0 && rng.Float64() < w.CancelRate {
			d := time.Duration(rng.Int64N(int64(20 * time.Millisecond)))
			time.AfterFunc(d, cancel)
		}
		status, errType, replayed, id, err := w.send(actx, method, target+path, body, op.Key)
		abandoned := actx.Err() != nil && ctx.Err() == nil
		cancel()
		w.sent.Add(1)
		switch {
		case abandoned:
			op.Abandoned = true
		case err != nil, status >= 500, status == http.StatusTooManyRequests:
		default:
			op.Status, op.ErrType, op.Replayed = status, errType, replayed
			op.Sent, op.Answered = sent, time.Now()
			if status == http.StatusCreated {
				w.created(op, id)
			}
			return
		}
		time.Sleep(time.Duration(20+rng.IntN(80)) * time.Millisecond)
	}
}

// created records data.id of op's 201 answer: a hold to capture or void
// later, a transaction to reverse later.
func (w *Workload) created(op *Op, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch op.Kind {
	case OpHold:
		op.HoldID = id
		w.holds = append(w.holds, placedHold{id: id, cents: op.Cents})
	case OpTransfer, OpBatch:
		op.TxID = id
		w.txs = append(w.txs, id)
	case OpReversal:
		op.TxID = id
	}
}

// send sends one attempt; it returns the status, the error type of a
// refusal, whether the answer was replayed, and data.id of a success.
func (w *Workload) send(ctx context.Context, method, url, body, key string) (int, string, bool, string, error) {
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, "", false, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, "", false, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", false, "", err
	}
	var env struct {
		Data struct {
			ID json.RawMessage `json:"id"`
		} `json:"data"`
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &env)
	var id string
	_ = json.Unmarshal(env.Data.ID, &id)
	return resp.StatusCode, env.Error.Type, resp.Header.Get("Idempotent-Replayed") == "true", id, nil
}
