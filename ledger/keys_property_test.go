package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// TestGroupCommitKeysProperty: random changes and transfers over a few
// users, many at once so that they share batches, with Idempotency-Keys
// drawn from a small pool (repeated within a batch and across batches, some
// with another request): every key has at most one effect, every request
// with a key gets the same answer as the key's first, a key used with
// another request is a conflict, refusals near zero are decided and stored,
// and the ledger adds up and verifies.
func TestGroupCommitKeysProperty(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 8)
	l := ledger.New(pool, ledger.Options{MaxInflight: 2})
	const users = 5
	for id := int64(1); id <= users; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: 50})
		require.NoError(t, err)
	}
	type request struct {
		key      string
		variant  int // the request behind the key: same variant, same request
		transfer bool
		from, to int64
		amount   money.Cents
	}
	type answer struct {
		ok    bool
		err   error
		entry ledger.Entry
	}
	rng := rand.New(rand.NewPCG(3, 5))
	// Each key stands for one request (its variant 0) or, rarely, another
	// (variant 1): a client reusing a key for a different request.
	base := map[string]request{}
	for k := range 40 {
		key := fmt.Sprint("key-", k)
		r := request{key: key, from: 1 + rng.Int64N(users), amount: money.Cents(1 + rng.IntN(150))}
		if rng.IntN(3) == 0 {
			r.transfer = true
			r.to = 1 + (r.from+rng.Int64N(users-1))%users
		} else if rng.IntN(2) == 0 {
			r.amount = -r.amount
		}
		base[key] = r
	}
	reqs := make([]request, 400)
	for i := range reqs {
		r := base[fmt.Sprint("key-", rng.IntN(40))]
		if rng.IntN(25) == 0 {
			r.variant, r.amount = 1, r.amount+1
		}
		reqs[i] = r
	}
	answers := make([]answer, len(reqs))
	idem := func(r request) [32]byte { return [32]byte{byte(r.variant)} }
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() {
			var a answer
			if r.transfer {
				k := anyKey[ledger.Transfer](r.key)
				k.RequestHash = idem(r)
				tr, err := l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: r.from, ToUserID: r.to, Amount: r.amount, Idempotency: k})
				a = answer{ok: err == nil, err: err, entry: tr.Entries[0]}
			} else {
				k := keyFor(r.key, r.amount)
				k.RequestHash = idem(r)
				p, err := l.PostEntry(ctx, ledger.Change{UserID: r.from, Amount: r.amount, Idempotency: k})
				a = answer{ok: err == nil, err: err, entry: p.Entry}
			}
			answers[i] = a
		})
	}
	wg.Wait()

	// Per key: at most one effect, of the key's first request.
	effects := map[string]int64{}
	rows, err := pool.Query(ctx, `SELECT idempotency_key, count(*) FROM entries WHERE idempotency_key IS NOT NULL GROUP BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var k string
		var n int64
		require.NoError(t, rows.Scan(&k, &n))
		effects[k] = n
	}
	require.NoError(t, rows.Err())
	for key, r := range base {
		want := []int64{0, 1}
		if r.transfer {
			want = []int64{0, 2}
		}
		require.Contains(t, want, effects[key], "key %s", key)
	}
	// Per key used: exactly one request executed (a success or a decided
	// refusal); the others with the same request replay its answer, and
	// those with another request are conflicts.
	executed := map[string]int{} // key → index of the executed request
	for i, a := range answers {
		var replay *ledger.ReplayError
		switch {
		case errors.Is(a.err, ledger.ErrIdempotencyConflict), errors.As(a.err, &replay):
		case a.ok || errors.Is(a.err, ledger.ErrInsufficientFunds):
			if j, seen := executed[reqs[i].key]; seen {
				t.Fatalf("key %s executed twice: requests %d and %d", reqs[i].key, j, i)
			}
			executed[reqs[i].key] = i
		default:
			t.Fatalf("request %d (%+v): %v", i, reqs[i], a.err)
		}
	}
	var replayed, conflicts, refused int
	for i, a := range answers {
		r := reqs[i]
		j, ok := executed[r.key]
		require.True(t, ok, "key %s was used but never executed", r.key)
		first := reqs[j]
		var replay *ledger.ReplayError
		switch {
		case i == j:
			if !answers[j].ok {
				refused++
			}
		case errors.Is(a.err, ledger.ErrIdempotencyConflict):
			conflicts++
			require.NotEqual(t, first.variant, r.variant, "a conflict is another request")
		case errors.As(a.err, &replay):
			replayed++
			require.Equal(t, first.variant, r.variant, "a replay is the same request")
			switch {
			case !answers[j].ok:
				require.Equal(t, 400, replay.Answer.Code)
			case !r.transfer:
				require.Equal(t, fmt.Sprintf("seq %d balance %s", answers[j].entry.Seq, answers[j].entry.BalanceAfter), string(replay.Answer.Body))
			default:
				require.Equal(t, 201, replay.Answer.Code)
			}
		default:
			t.Fatalf("request %d: %v", i, a.err)
		}
	}
	require.Positive(t, replayed, "keys were repeated")
	require.Positive(t, conflicts, "keys were reused for other requests")
	require.Positive(t, refused, "some withdrawals were refused near zero")

	requireAllVerify(t, l)
	var total, deposits int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT sum(balance) FROM users`).Scan(&total))
	require.NoError(t, pool.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM entries WHERE type IN ('deposit', 'withdrawal')`).Scan(&deposits))
	require.Equal(t, int64(users*50)+deposits, total, "transfers conserve money")
}
