package ledger

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Idempotency ties a write whose result is a T to an Idempotency-Key. The
// write's decided outcome is stored with the key in the write's own
// transaction, as the Answer that AnswerFunc makes of it: a success, or a
// decided rejection (ErrInsufficientFunds, ErrBalanceLimit, ErrNotFound,
// ErrUserExists, ErrHoldNotFound, ErrHoldNotPending, ErrTransactionNotFound,
// ErrAlreadyReversed, also as a batch's *ChangeError). Failures that decide nothing (ErrBusy, ErrUnavailable,
// any other error) store nothing, so a retry runs afresh.
type Idempotency[T any] struct {
	// Scope separates clients (the token's identity when auth is on).
	Scope string
	// Key is the client's Idempotency-Key: 1..255 printable ASCII.
	Key string
	// RequestHash identifies the request (method, path, body): the same key
	// with another request is ErrIdempotencyConflict.
	RequestHash [32]byte
	// AnswerFunc turns the decided outcome into the answer to store: the
	// method's result when err is nil, else the decided rejection. It runs
	// inside the transaction, so it must be quick and pure.
	AnswerFunc func(result T, err error) Answer
}

// Answer is what is stored with a key and handed back on a replay. Its
// meaning is the caller's (the API stores an HTTP status and body); the
// ledger only keeps it.
type Answer struct {
	Code int
	Body []byte
}

// ReplayError is returned when the key was already used with the same
// request: Answer is the answer stored then, to be given again. Nothing was
// executed.
type ReplayError struct {
	Answer Answer
}

func (e *ReplayError) Error() string { return "idempotent replay of a stored answer" }

// ErrIdempotencyConflict means the key was already used with a different
// request. Nothing was executed.
var ErrIdempotencyConflict = errors.New("idempotency key already used with a different request")

// decided reports whether err is an outcome stored with a key.
func decided(err error) bool {
	return errors.Is(err, ErrInsufficientFunds) || errors.Is(err, ErrBalanceLimit) ||
		errors.Is(err, ErrNotFound) || errors.Is(err, ErrUserExists) ||
		errors.Is(err, ErrHoldNotFound) || errors.Is(err, ErrHoldNotPending) ||
		errors.Is(err, ErrTransactionNotFound) || errors.Is(err, ErrAlreadyReversed)
}

const keyFind = `SELECT request_hash, status, response FROM idempotency_keys
WHERE scope = $1 AND key = $2 AND status <> 0`

// checkKey looks the key up: nil when it is unused, a *ReplayError when it
// was used with the same request, ErrIdempotencyConflict otherwise.
func checkKey(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, c *claim) error {
	var (
		hash   []byte
		answer Answer
	)
	err := q.QueryRow(ctx, keyFind, c.scope, c.key).Scan(&hash, &answer.Code, &answer.Body)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("look up idempotency key: %w", err)
	case !bytes.Equal(hash, c.requestHash[:]):
		return ErrIdempotencyConflict
	}
	return &ReplayError{Answer: answer}
}

// keyRef names one key.
type keyRef struct{ scope, key string }

// claim is an op's key, without the result type: what the write path
// claims, and how it makes the answer to store.
type claim struct {
	scope, key  string
	requestHash [32]byte
	answer      func(opResult) Answer
}

func (c *claim) ref() keyRef { return keyRef{c.scope, c.key} }

// claimOf returns the claim of idem for an op whose result result makes of
// its outcome, or nil without a key.
func claimOf[T any](idem *Idempotency[T], result func(opResult) T) *claim {
	if idem == nil {
		return nil
	}
	return &claim{scope: idem.Scope, key: idem.Key, requestHash: idem.RequestHash, answer: func(r opResult) Answer {
		if r.err != nil {
			var zero T
			return idem.AnswerFunc(zero, r.err)
		}
		return idem.AnswerFunc(result(r), nil)
	}}
}

// dedupeKeys returns the distinct keys of ops, sorted (so that two
// transactions claiming overlapping keys take them in the same order), and
// for each op the index of the earlier op with the same key, or -1: a key
// repeated within a batch is answered from its first use.
func dedupeKeys(ops []*op) ([]*claim, []int) {
	first := map[keyRef]int{}
	dupOf := make([]int, len(ops))
	var keys []*claim
	for i, o := range ops {
		dupOf[i] = -1
		if o.claim == nil {
			continue
		}
		if j, ok := first[o.claim.ref()]; ok {
			dupOf[i] = j
			continue
		}
		first[o.claim.ref()] = i
		keys = append(keys, o.claim)
	}
	slices.SortFunc(keys, func(a, b *claim) int {
		return cmp.Or(cmp.Compare(a.scope, b.scope), cmp.Compare(a.key, b.key))
	})
	return keys, dupOf
}

// keyClaim inserts placeholder rows for the keys; a key that another
// transaction holds makes this statement wait for it, and a key it
// committed is skipped (not returned).
const keyClaim = `INSERT INTO idempotency_keys (scope, key, request_hash, status, response)
SELECT k.scope, k.key, k.hash, 0, ''::bytea
FROM unnest($1::text[], $2::text[], $3::bytea[]) WITH ORDINALITY AS k(scope, key, hash, ord)
ORDER BY k.ord
ON CONFLICT (scope, key) DO NOTHING
RETURNING scope, key`

// queueClaim queues the claim of keys, in their order; claimed receives the
// keys this transaction now holds.
func queueClaim(b *pgx.Batch, keys []*claim, claimed map[keyRef]bool) {
	if len(keys) == 0 {
		return
	}
	scopes, names, hashes := make([]string, len(keys)), make([]string, len(keys)), make([][]byte, len(keys))
	for i, k := range keys {
		scopes[i], names[i], hashes[i] = k.scope, k.key, k.requestHash[:]
	}
	b.Queue(keyClaim, scopes, names, hashes).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var r keyRef
			if err := rows.Scan(&r.scope, &r.key); err != nil {
				return fmt.Errorf("claim idempotency keys: %w", err)
			}
			claimed[r] = true
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("claim idempotency keys: %w", err)
		}
		return nil
	})
}

const keyDecide = `UPDATE idempotency_keys k SET status = d.status, response = d.response
FROM unnest($1::text[], $2::text[], $3::int[], $4::bytea[]) AS d(scope, key, status, response)
WHERE k.scope = d.scope AND k.key = d.key`

// keyDecision is the stored answer of one claimed key.
type keyDecision struct {
	claim  *claim
	answer Answer
}

// queueDecide queues the storing of the decided answers.
func queueDecide(b *pgx.Batch, ds []keyDecision) {
	if len(ds) == 0 {
		return
	}
	scopes, names := make([]string, len(ds)), make([]string, len(ds))
	statuses, bodies := make([]int32, len(ds)), make([][]byte, len(ds))
	for i, d := range ds {
		scopes[i], names[i] = d.claim.scope, d.claim.key
		statuses[i], bodies[i] = int32(d.answer.Code), d.answer.Body //nolint:gosec // the callers' codes are small
	}
	b.Queue(keyDecide, scopes, names, statuses, bodies)
}

// keyOutcomes returns the answers to store with the keys the active ops
// claimed (successes and decided refusals), and the keys to release: those
// of ops that failed without a decision, so that a retry runs afresh.
func keyOutcomes(ops []*op, active []bool, out []opResult) (decisions []keyDecision, released []*claim) {
	for i, o := range ops {
		if !active[i] || o.claim == nil {
			continue
		}
		if err := out[i].err; err == nil || decided(err) {
			decisions = append(decisions, keyDecision{o.claim, o.claim.answer(out[i])})
		} else {
			released = append(released, o.claim)
		}
	}
	return decisions, released
}

// answerRepeats answers the ops whose key an earlier op of the batch used:
// with that op's answer (a *ReplayError), or ErrIdempotencyConflict when
// the request differs.
func answerRepeats(ops []*op, dupOf []int, out []opResult) {
	for i, j := range dupOf {
		switch {
		case j < 0:
		case errors.Is(out[j].err, errKeyTaken):
			// Another transaction holds the key's answer: each repeat is
			// answered from it (a replay or a conflict by its own request).
			out[i].err = errKeyTaken
		case ops[i].claim.requestHash != ops[j].claim.requestHash:
			out[i].err = ErrIdempotencyConflict
		case out[j].err == nil || decided(out[j].err):
			out[i].err = &ReplayError{Answer: ops[j].claim.answer(out[j])}
		default:
			out[i].err = out[j].err
		}
	}
}

const keyRelease = `DELETE FROM idempotency_keys k
USING unnest($1::text[], $2::text[]) AS r(scope, key)
WHERE k.scope = r.scope AND k.key = r.key AND k.status = 0`

// queueRelease queues the removal of claims that stay undecided.
func queueRelease(b *pgx.Batch, keys []*claim) {
	if len(keys) == 0 {
		return
	}
	scopes, names := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		scopes[i], names[i] = k.scope, k.key
	}
	b.Queue(keyRelease, scopes, names)
}

// answerTaken answers a request whose key another transaction committed:
// a *ReplayError or ErrIdempotencyConflict.
func (l *Ledger) answerTaken(ctx context.Context, c *claim) error {
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		return checkKey(ctx, conn, c)
	})
	if err != nil {
		return err
	}
	return fmt.Errorf("idempotency key %q: taken but not found", c.key)
}

const keyPurge = `DELETE FROM idempotency_keys WHERE ctid IN (
    SELECT ctid FROM idempotency_keys WHERE created_at < now() - $1::interval ORDER BY created_at LIMIT $2)`

// PurgeKeys deletes up to limit idempotency keys older than retention and
// returns how many it deleted. A retry after that runs afresh.
func (l *Ledger) PurgeKeys(ctx context.Context, retention time.Duration, limit int) (int64, error) {
	var n int64
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		tag, err := conn.Exec(ctx, keyPurge, retention.String(), limit)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return n, nil
}
