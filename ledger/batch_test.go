package ledger_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// TestPostBatch: a batch's entries are written in the order of its
// changes, all carrying the batch's id; they take each user's chain on
// like any change, and verify.
func TestPostBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	for id := int64(1); id <= 3; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: 1000})
		require.NoError(t, err)
	}
	b, err := l.PostBatch(ctx, ledger.BatchRequest{
		Changes: []ledger.BatchChange{
			{UserID: 3, Amount: -300, Description: "payout"},
			{UserID: 1, Amount: 290},
			{UserID: 2, Amount: 10, Description: "fee"},
		},
		Description: "payout with fee", Reference: "po-1",
	})
	require.NoError(t, err)
	require.Len(t, b.Entries, 3)
	wantUsers := []int64{3, 1, 2}
	wantTypes := []ledger.EntryType{ledger.Withdrawal, ledger.Deposit, ledger.Deposit}
	wantDesc := []string{"payout", "payout with fee", "fee"}
	for i, e := range b.Entries {
		require.Equal(t, wantUsers[i], e.UserID)
		require.Equal(t, wantTypes[i], e.Type)
		require.Equal(t, wantDesc[i], e.Description)
		require.Equal(t, "po-1", e.Reference)
		require.Equal(t, uuid.NullUUID{UUID: b.ID, Valid: true}, e.TransactionID)
		require.Equal(t, int64(2), e.Seq)
		stored, err := l.FindEntryByID(ctx, e.ID)
		require.NoError(t, err)
		require.Equal(t, e, stored)
	}
	require.Equal(t, money.Cents(700), b.Entries[0].BalanceAfter)
	require.Equal(t, int64(3000), count(t, pool, `SELECT sum(balance) FROM users`))
	require.Equal(t, int64(3), count(t, pool, `SELECT count(*) FROM outbox WHERE routing_key LIKE 'ledger.entry.%' AND source_id = ANY($1)`,
		[]uuid.UUID{b.Entries[0].ID, b.Entries[1].ID, b.Entries[2].ID}))
	requireAllVerify(t, l)
}

// TestBatchRefusals: a refused batch writes nothing, and names its first
// refused change, whatever the reason; bad requests name the change at
// fault and write nothing either.
func TestBatchRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	for id := int64(1); id <= 3; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: 100})
		require.NoError(t, err)
	}
	entriesBefore := count(t, pool, `SELECT count(*) FROM entries`)

	refused := []struct {
		name    string
		changes []ledger.BatchChange
		index   int
		want    error
	}{
		{"overdraw first", []ledger.BatchChange{{1, 50, ""}, {2, -101, ""}, {99, 5, ""}}, 1, ledger.ErrInsufficientFunds},
		{"unknown first", []ledger.BatchChange{{1, 50, ""}, {99, 5, ""}, {2, -101, ""}}, 1, ledger.ErrNotFound},
		{"last refused", []ledger.BatchChange{{1, -100, ""}, {2, -100, ""}, {3, -100, ""}, {4, -1, ""}}, 3, ledger.ErrNotFound},
		{"limit", []ledger.BatchChange{{3, money.MaxAmount, ""}, {2, 1, ""}}, 0, nil},
	}
	// The balance limit needs a balance near it: user 3 gets one first.
	for range 89 {
		_, err := l.PostEntry(ctx, ledger.Change{UserID: 3, Amount: money.MaxAmount})
		require.NoError(t, err)
	}
	refused[3].want = ledger.ErrBalanceLimit
	entriesBefore += 89
	for _, tc := range refused {
		_, err := l.PostBatch(ctx, ledger.BatchRequest{Changes: tc.changes})
		var cerr *ledger.ChangeError
		require.ErrorAs(t, err, &cerr, tc.name)
		require.Equal(t, tc.index, cerr.Index, tc.name)
		require.ErrorIs(t, err, tc.want, tc.name)
	}

	many := make([]ledger.BatchChange, ledger.MaxBatchChanges+1)
	for i := range many {
		many[i] = ledger.BatchChange{UserID: int64(i + 1), Amount: 1}
	}
	invalid := []struct {
		name    string
		changes []ledger.BatchChange
		field   string
	}{
		{"empty", nil, "changes"},
		{"too many", many, "changes"},
		{"user twice", []ledger.BatchChange{{1, 1, ""}, {2, 1, ""}, {1, -1, ""}}, "changes[2]"},
		{"zero amount", []ledger.BatchChange{{1, 1, ""}, {2, 0, ""}}, "changes[1]"},
		{"bad user", []ledger.BatchChange{{0, 1, ""}}, "changes[0]"},
		{"too large", []ledger.BatchChange{{1, -money.MaxAmount - 1, ""}}, "changes[0]"},
		{"bad text", []ledger.BatchChange{{1, 1, "\x00"}}, "changes[0]"},
	}
	for _, tc := range invalid {
		_, err := l.PostBatch(ctx, ledger.BatchRequest{Changes: tc.changes})
		var verr *ledger.ValidationError
		require.ErrorAs(t, err, &verr, tc.name)
		require.Equal(t, tc.field, verr.Field, tc.name)
	}
	require.Equal(t, entriesBefore, count(t, pool, `SELECT count(*) FROM entries`), "no refused batch wrote an entry")
	u, err := l.FindUser(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, money.Cents(100), u.Balance)
}

// TestBatchesUnderConcurrency: 200 concurrent batches, each moving money
// among the same 10 users (each batch's changes sum to 0), race with
// single-user withdrawals. Money is conserved but for the withdrawals that
// succeeded, no balance is ever negative, every refused batch wrote
// nothing, and no request fails with anything but insufficient funds (no
// deadlock, no error).
func TestBatchesUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 16)
	l := ledger.New(pool, ledger.Options{MaxInflight: 4})
	const users = 10
	const opening = 500
	for id := int64(1); id <= users; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: opening})
		require.NoError(t, err)
	}

	stop := make(chan struct{})
	var negative atomic.Bool
	var watcher sync.WaitGroup
	watcher.Go(func() { // no balance is ever seen below 0
		for {
			select {
			case <-stop:
				return
			default:
			}
			var low int64
			if err := pool.QueryRow(ctx, `SELECT min(balance) FROM users`).Scan(&low); err == nil && low < 0 {
				negative.Store(true)
			}
		}
	})

	var (
		wg                    sync.WaitGroup
		mu                    sync.Mutex
		okBatches, refBatches []uuid.UUID
		withdrawn             money.Cents
		other                 []error
	)
	for i := range 200 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 7))
			n := 2 + r.IntN(users-1)
			perm := r.Perm(users)[:n]
			changes := make([]ledger.BatchChange, n)
			var sum money.Cents
			for j, p := range perm[:n-1] {
				a := money.Cents(1 + r.IntN(150))
				if r.IntN(2) == 0 {
					a = -a
				}
				changes[j] = ledger.BatchChange{UserID: int64(p + 1), Amount: a}
				sum += a
			}
			if sum == 0 { // the last change must not be zero
				if changes[0].Amount > 0 {
					changes[0].Amount++
					sum++
				} else {
					changes[0].Amount--
					sum--
				}
			}
			changes[n-1] = ledger.BatchChange{UserID: int64(perm[n-1] + 1), Amount: -sum}
			ref := uuid.NewString()
			b, err := l.PostBatch(ctx, ledger.BatchRequest{Changes: changes, Reference: ref})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				okBatches = append(okBatches, b.ID)
			case errors.Is(err, ledger.ErrInsufficientFunds):
				refBatches = append(refBatches, uuid.MustParse(ref))
			default:
				other = append(other, err)
			}
		})
		if i%4 == 0 {
			wg.Go(func() {
				_, err := l.PostEntry(ctx, ledger.Change{UserID: int64(1 + i%users), Amount: -7})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					withdrawn += 7
				case errors.Is(err, ledger.ErrInsufficientFunds):
				default:
					other = append(other, err)
				}
			})
		}
	}
	wg.Wait()
	close(stop)
	watcher.Wait()

	require.Empty(t, other, "only insufficient funds refuses a request")
	require.False(t, negative.Load(), "no balance was ever negative")
	require.NotEmpty(t, okBatches)
	require.Equal(t, int64(users*opening)-int64(withdrawn), count(t, pool, `SELECT sum(balance) FROM users`), "money is conserved")
	require.Equal(t, int64(0), count(t, pool, `SELECT count(*) FROM users WHERE balance < 0`))
	for _, ref := range refBatches {
		require.Equal(t, int64(0), count(t, pool, `SELECT count(*) FROM entries WHERE reference = $1`, ref.String()), "a refused batch wrote nothing")
	}
	for _, id := range okBatches {
		require.Equal(t, int64(0), count(t, pool, `SELECT coalesce(sum(amount), 0) FROM entries WHERE transaction_id = $1`, id), "a batch's changes sum to 0")
	}
	requireAllVerify(t, l)
	t.Logf("%d batches committed, %d refused, %d withdrawn", len(okBatches), len(refBatches), withdrawn)
}

// TestBatchWithHotUser: a batch naming a hot user waits only for the
// transaction in flight of its other user, and then goes in the very next
// transaction together with the hot user's changes that queued behind it:
// the hot user's group commit is held up by at most that one transaction.
func TestBatchWithHotUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 8)
	l := ledger.New(pool, ledger.Options{MaxInflight: 4})
	for id := int64(1); id <= 2; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: 100})
		require.NoError(t, err)
	}
	release := holdRowLock(t, pool, 2)
	var wg sync.WaitGroup
	errs := make([]error, 7)
	wg.Go(func() { _, errs[0] = l.PostEntry(ctx, ledger.Change{UserID: 2, Amount: 1}) }) // in flight, waits for the lock
	waitLockWaiters(t, pool, 1)
	wg.Go(func() {
		_, errs[1] = l.PostBatch(ctx, ledger.BatchRequest{Changes: []ledger.BatchChange{{1, -10, ""}, {2, 10, ""}}})
	})
	require.Eventually(t, func() bool { return l.Pending(1) == 1 }, 10*time.Second, time.Millisecond)
	for i := 2; i < 7; i++ { // the hot user's changes queue behind the batch
		wg.Go(func() { _, errs[i] = l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: -1}) })
		require.Eventually(t, func() bool { return l.Pending(1) == i }, 10*time.Second, time.Millisecond)
	}
	release()
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, i)
	}
	require.Equal(t, int64(1), count(t, pool, `SELECT count(DISTINCT created_at) FROM entries WHERE user_id = 1 AND seq > 1`),
		"the batch and the hot user's queued changes went in one transaction")
	require.Equal(t, int64(85), count(t, pool, `SELECT balance FROM users WHERE id = 1`))
	require.Equal(t, int64(7), count(t, pool, `SELECT max(seq) FROM entries WHERE user_id = 1`))
}
