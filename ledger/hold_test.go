package ledger_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// TestHoldsUnderConcurrency is the contract's scenario: 1,000 concurrent
// holds of 10 on a balance of 5,000 place exactly 500; then no withdrawal
// gets through; then a capture and a void race on every hold, and exactly
// one of the two wins each time.
func TestHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 5000_00})
	require.NoError(t, err)

	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		placed          []ledger.Hold
		refused, others atomic.Int64
	)
	for range 1000 {
		wg.Go(func() {
			h, err := l.PlaceHold(ctx, ledger.NewHold{UserID: 1, Amount: 10_00})
			switch {
			case err == nil:
				mu.Lock()
				placed = append(placed, h)
				mu.Unlock()
			case errors.Is(err, ledger.ErrInsufficientFunds):
				refused.Add(1)
			default:
				others.Add(1)
			}
		})
	}
	wg.Wait()
	require.Len(t, placed, 500)
	require.Equal(t, int64(500), refused.Load())
	require.Zero(t, others.Load())
	u, err := l.FindUser(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, money.Cents(5000_00), u.Held)
	require.Equal(t, money.Cents(5000_00), u.Balance)

	for range 500 {
		wg.Go(func() {
			_, err := l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: -1_00})
			if !errors.Is(err, ledger.ErrInsufficientFunds) {
				others.Add(1)
			}
		})
	}
	wg.Wait()
	require.Zero(t, others.Load(), "every withdrawal is refused: nothing is available")

	var captures, voids, conflicts atomic.Int64
	var capturedSum atomic.Int64
	for _, h := range placed {
		wg.Go(func() {
			c, err := l.CaptureHold(ctx, h.ID, 6_00, nil)
			switch {
			case err == nil:
				captures.Add(1)
				capturedSum.Add(int64(c.CapturedAmount))
			case errors.Is(err, ledger.ErrHoldNotPending):
				conflicts.Add(1)
			default:
				others.Add(1)
			}
		})
		wg.Go(func() {
			_, err := l.VoidHold(ctx, h.ID, nil)
			switch {
			case err == nil:
				voids.Add(1)
			case errors.Is(err, ledger.ErrHoldNotPending):
				conflicts.Add(1)
			default:
				others.Add(1)
			}
		})
	}
	wg.Wait()
	require.Zero(t, others.Load())
	require.Equal(t, int64(500), captures.Load()+voids.Load(), "exactly one of capture and void per hold")
	require.Equal(t, int64(500), conflicts.Load())
	u, err = l.FindUser(ctx, 1)
	require.NoError(t, err)
	require.Zero(t, u.Held)
	require.Equal(t, money.Cents(5000_00-capturedSum.Load()), u.Balance)
	require.Equal(t, captures.Load(), count(t, pool, `SELECT count(*) FROM entries WHERE hold_id IS NOT NULL`))
	require.Equal(t, int64(1000), count(t, pool, `SELECT count(*) FROM hold_changes`), "placed and ended, each once")
	requireAllVerify(t, l)
}

// TestHoldCapture: a partial capture withdraws what it captures, with the
// hold's id on the entry, and releases the rest; a hold ends once; the
// records and events are written with it.
func TestHoldCapture(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 100_00})
	require.NoError(t, err)
	h, err := l.PlaceHold(ctx, ledger.NewHold{UserID: 1, Amount: 60_00, Description: "card auth"})
	require.NoError(t, err)
	require.Equal(t, ledger.HoldPending, h.Status)
	require.WithinDuration(t, time.Now().Add(ledger.DefaultHoldTTL), h.ExpiresAt, time.Minute)

	n, held, err := l.PendingHolds(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	require.Equal(t, money.Cents(60_00), held)
	_, err = l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: -41_00})
	require.ErrorIs(t, err, ledger.ErrInsufficientFunds, "40.00 available")
	_, err = l.CaptureHold(ctx, h.ID, 60_01, nil)
	var verr *ledger.ValidationError
	require.ErrorAs(t, err, &verr, "more than the hold")

	c, err := l.CaptureHold(ctx, h.ID, 25_00, anyKey[ledger.Hold]("capture-1"))
	require.NoError(t, err)
	require.Equal(t, ledger.HoldCaptured, c.Status)
	require.Equal(t, money.Cents(25_00), c.CapturedAmount)
	e, err := l.FindEntryByID(ctx, c.CaptureEntry.ID)
	require.NoError(t, err)
	require.Equal(t, ledger.Withdrawal, e.Type)
	require.Equal(t, money.Cents(-25_00), e.Amount)
	require.Equal(t, uuid.NullUUID{UUID: h.ID, Valid: true}, e.HoldID)
	require.Equal(t, "card auth", e.Description)
	require.Equal(t, "capture-1", e.IdempotencyKey, "the entry carries the capture's key")
	_, err = l.CaptureHold(ctx, h.ID, 25_00, anyKey[ledger.Hold]("capture-1"))
	var replay *ledger.ReplayError
	require.ErrorAs(t, err, &replay, "a retried capture is replayed, not refused")

	u, err := l.FindUser(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, money.Cents(75_00), u.Balance)
	require.Zero(t, u.Held, "the rest of the hold is released")
	for _, again := range []func() error{
		func() error { _, err := l.CaptureHold(ctx, h.ID, 0, nil); return err },
		func() error { _, err := l.VoidHold(ctx, h.ID, nil); return err },
	} {
		err := again()
		var serr *ledger.HoldStateError
		require.ErrorAs(t, err, &serr)
		require.Equal(t, ledger.HoldCaptured, serr.Status)
	}
	_, err = l.CaptureHold(ctx, uuid.New(), 0, nil)
	require.ErrorIs(t, err, ledger.ErrHoldNotFound)
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM outbox WHERE routing_key = 'ledger.hold.placed'`))
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM outbox WHERE routing_key = 'ledger.hold.captured'`))
	got, err := l.FindHold(ctx, h.ID)
	require.NoError(t, err)
	require.Equal(t, c.CaptureEntry, got.CaptureEntry)

	// The record is append-only.
	_, err = pool.Exec(ctx, `UPDATE hold_changes SET amount = 1`)
	require.ErrorContains(t, err, "append-only")
	_, err = pool.Exec(ctx, `DELETE FROM hold_changes`)
	require.ErrorContains(t, err, "append-only")
}

// TestHoldExpiry: from expiresAt on a hold no longer counts and reads
// expired, before any sweep; a capture after it is refused; the sweep
// records the expiry once, even when two run at once.
func TestHoldExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 10_00})
	require.NoError(t, err)
	at := time.Now().Add(1500 * time.Millisecond)
	h, err := l.PlaceHold(ctx, ledger.NewHold{UserID: 1, Amount: 10_00, ExpiresAt: &at})
	require.NoError(t, err)
	u, err := l.FindUser(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, money.Cents(10_00), u.Held)

	time.Sleep(time.Until(at) + 50*time.Millisecond)
	u, err = l.FindUser(ctx, 1)
	require.NoError(t, err)
	require.Zero(t, u.Held, "available again at expiresAt, with no sweep")
	got, err := l.FindHold(ctx, h.ID)
	require.NoError(t, err)
	require.Equal(t, ledger.HoldExpired, got.Status)
	_, err = l.CaptureHold(ctx, h.ID, 0, nil)
	var serr *ledger.HoldStateError
	require.ErrorAs(t, err, &serr)
	require.Equal(t, ledger.HoldExpired, serr.Status)
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM hold_changes WHERE change = 'expired'`), "the refused capture's transaction recorded the expiry")

	// A second hold expires and two sweeps race: one record, one event.
	at = time.Now().Add(500 * time.Millisecond)
	_, err = l.PlaceHold(ctx, ledger.NewHold{UserID: 1, Amount: 5_00, ExpiresAt: &at})
	require.NoError(t, err)
	time.Sleep(time.Until(at) + 50*time.Millisecond)
	other := ledger.New(pool, ledger.Options{})
	var wg sync.WaitGroup
	for _, x := range []*ledger.Ledger{l, other} {
		wg.Go(func() {
			_, err := x.ReleaseExpiredHolds(ctx, 100)
			require.NoError(t, err)
		})
	}
	wg.Wait()
	require.Equal(t, int64(2), count(t, pool, `SELECT count(*) FROM hold_changes WHERE change = 'expired'`))
	require.Equal(t, int64(2), count(t, pool, `SELECT count(*) FROM outbox WHERE routing_key = 'ledger.hold.expired'`))
	require.Zero(t, count(t, pool, `SELECT held FROM users WHERE id = 1`))

	// Bad expiries change nothing.
	past, far := time.Now().Add(-time.Second), time.Now().Add(31*24*time.Hour)
	for _, bad := range []*time.Time{&past, &far} {
		_, err := l.PlaceHold(ctx, ledger.NewHold{UserID: 1, Amount: 1, ExpiresAt: bad})
		var verr *ledger.ValidationError
		require.ErrorAs(t, err, &verr)
		require.Equal(t, "expiresAt", verr.Field)
	}
}

// TestHeldIsVerifiedAndRebuilt: a tampered held amount (behind the
// database's guard) fails verification, and the rebuild restores it from
// the pending holds.
func TestHeldIsVerifiedAndRebuilt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 100_00})
	require.NoError(t, err)
	h, err := l.PlaceHold(ctx, ledger.NewHold{UserID: 1, Amount: 30_00})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE users SET held = 0 WHERE id = 1`)
	requirePgConstraint(t, err, "users_match_ledger")
	_, err = pool.Exec(ctx, `ALTER TABLE users DISABLE TRIGGER users_match_ledger, DISABLE TRIGGER users_held_on_update;
UPDATE users SET held = 0 WHERE id = 1;
ALTER TABLE users ENABLE TRIGGER users_match_ledger, ENABLE TRIGGER users_held_on_update`)
	require.NoError(t, err)
	v, err := l.VerifyUser(ctx, 1)
	require.NoError(t, err)
	require.False(t, v.OK)
	require.Equal(t, money.Cents(30_00), v.PendingHolds)
	sum, err := l.VerifyAll(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), sum.FailedCount)
	r, err := l.RebuildProjection(ctx)
	require.NoError(t, err)
	require.Len(t, r.Users, 1)
	require.Equal(t, money.Cents(30_00), r.Users[0].NewHeld)
	require.Empty(t, r.Holds)
	v, err = l.VerifyUser(ctx, 1)
	require.NoError(t, err)
	require.True(t, v.OK)

	// The holds are a projection of their record too: a hold rewritten,
	// and one no change records (held moved with them, so the triggers
	// see no disagreement), are set back from hold_changes, and held with
	// them.
	_, err = pool.Exec(ctx, `UPDATE holds SET amount = 1000 WHERE id = '`+h.ID.String()+`';
INSERT INTO holds (id, user_id, status, amount, expires_at, created_at, updated_at)
    VALUES (gen_random_uuid(), 1, 'pending', 500, now() + interval '1 day', now(), now());
UPDATE users SET held = 1500 WHERE id = 1`)
	require.NoError(t, err)
	v, err = l.VerifyUser(ctx, 1)
	require.NoError(t, err)
	require.False(t, v.OK, "verify sums the pending holds of the record, not of the projection")
	require.Equal(t, money.Cents(15_00), v.ProjectedHeld)
	require.Equal(t, money.Cents(30_00), v.PendingHolds)
	sum, err = l.VerifyAll(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), sum.FailedCount)
	r, err = l.RebuildProjection(ctx)
	require.NoError(t, err)
	require.Len(t, r.Holds, 2)
	require.Contains(t, r.Holds, h.ID)
	require.Equal(t, []ledger.ProjectionChange{{UserID: 1, OldBalance: 100_00, NewBalance: 100_00, OldSeq: 1, NewSeq: 1,
		OldHeld: 15_00, NewHeld: 30_00}}, r.Users)
	got, err := l.FindHold(ctx, h.ID)
	require.NoError(t, err)
	require.Equal(t, h, got)
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM holds`))
	sum, err = l.VerifyAll(ctx, nil)
	require.NoError(t, err)
	require.Zero(t, sum.FailedCount)
}
