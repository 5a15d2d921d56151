package ledger_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

func balanceOf(t *testing.T, l *ledger.Ledger, id int64) money.Cents {
	t.Helper()
	u, err := l.FindUser(context.Background(), id)
	require.NoError(t, err)
	return u.Balance
}

// TestReverseTransfer: reversing a transfer restores both balances with
// one reversal entry per leg, each naming the entry it reverses, all
// sharing the reversal's id; a second reversal is refused; the chains
// verify.
func TestReverseTransfer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 1000})
	require.NoError(t, err)
	_, err = l.CreateUser(ctx, ledger.NewUser{ID: 2})
	require.NoError(t, err)
	tr, err := l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: 1, ToUserID: 2, Amount: 250, Reference: "inv-9"})
	require.NoError(t, err)

	v, err := l.PostReversal(ctx, ledger.ReversalRequest{TransactionID: tr.ID, Description: "sent in error"})
	require.NoError(t, err)
	require.Equal(t, tr.ID, v.TransactionID)
	require.Len(t, v.Entries, 2)
	for i, e := range v.Entries {
		require.Equal(t, ledger.ReversalEntry, e.Type)
		require.Equal(t, -tr.Entries[i].Amount, e.Amount)
		require.Equal(t, tr.Entries[i].UserID, e.UserID)
		require.Equal(t, uuid.NullUUID{UUID: tr.Entries[i].ID, Valid: true}, e.ReversalOf)
		require.Equal(t, uuid.NullUUID{UUID: v.ID, Valid: true}, e.TransactionID)
		require.Equal(t, "sent in error", e.Description)
		require.Equal(t, "inv-9", e.Reference, "a reversal keeps the reference of the entry it reverses")
		stored, err := l.FindEntryByID(ctx, e.ID)
		require.NoError(t, err)
		require.Equal(t, e, stored)
	}
	require.Equal(t, money.Cents(1000), balanceOf(t, l, 1))
	require.Equal(t, money.Cents(0), balanceOf(t, l, 2))
	require.Equal(t, int64(2), count(t, pool, `SELECT count(*) FROM outbox WHERE routing_key = 'ledger.entry.reversal'`))

	_, err = l.PostReversal(ctx, ledger.ReversalRequest{TransactionID: tr.ID})
	require.ErrorIs(t, err, ledger.ErrAlreadyReversed)

	// Reversal and opening entries cannot be reversed; an unknown
	// transaction is not found.
	var verr *ledger.ValidationError
	_, err = l.PostReversal(ctx, ledger.ReversalRequest{TransactionID: v.ID})
	require.ErrorAs(t, err, &verr)
	require.Equal(t, "transactionId", verr.Field)
	opening, err := l.FindEntries(ctx, ledger.EntryFilter{UserID: 1, Limit: 1000})
	require.NoError(t, err)
	first := opening.Entries[len(opening.Entries)-1]
	require.Equal(t, ledger.Opening, first.Type)
	_, err = l.PostReversal(ctx, ledger.ReversalRequest{TransactionID: first.TransactionID.UUID})
	require.ErrorAs(t, err, &verr)
	_, err = l.PostReversal(ctx, ledger.ReversalRequest{TransactionID: uuid.Must(uuid.NewV7())})
	require.ErrorIs(t, err, ledger.ErrTransactionNotFound)
	require.Equal(t, int64(5), count(t, pool, `SELECT count(*) FROM entries`), "the refused reversals wrote nothing")

	requireAllVerify(t, l)

	// reversal_of is in the hash: pointing a reversal elsewhere breaks
	// the chain.
	_, err = pool.Exec(ctx, `ALTER TABLE entries DISABLE TRIGGER entries_no_update_delete`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE entries SET reversal_of = $1 WHERE id = $2`, first.ID, v.Entries[0].ID)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `ALTER TABLE entries ENABLE TRIGGER entries_no_update_delete`)
	require.NoError(t, err)
	ver, err := l.VerifyUser(ctx, 1)
	require.NoError(t, err)
	require.False(t, ver.ChainValid)
	require.Equal(t, v.Entries[0].Seq, ver.FirstBadSeq)
}

// TestReverseBatchAndPut: a batch's entries are all reversed; a lone PUT's
// entry is; a reversal that would overdraw any balance (or touch a
// user's held funds) is refused and writes nothing.
func TestReverseBatchAndPut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	for id := int64(1); id <= 3; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: 100})
		require.NoError(t, err)
	}
	b, err := l.PostBatch(ctx, ledger.BatchRequest{Changes: []ledger.BatchChange{{1, -60, ""}, {2, 40, ""}, {3, 20, ""}}})
	require.NoError(t, err)
	// User 3 spends what the batch gave it: reversing the batch would
	// overdraw user 3, so it is refused and changes nothing.
	_, err = l.PostEntry(ctx, ledger.Change{UserID: 3, Amount: -110})
	require.NoError(t, err)
	entries := count(t, pool, `SELECT count(*) FROM entries`)
	_, err = l.PostReversal(ctx, ledger.ReversalRequest{TransactionID: b.ID})
	require.ErrorIs(t, err, ledger.ErrInsufficientFunds)
	require.Equal(t, entries, count(t, pool, `SELECT count(*) FROM entries`))
	require.Equal(t, money.Cents(40), balanceOf(t, l, 1))

	// Funds come back to user 3, but a hold keeps them: still refused.
	p, err := l.PostEntry(ctx, ledger.Change{UserID: 3, Amount: 30})
	require.NoError(t, err)
	h, err := l.PlaceHold(ctx, ledger.NewHold{UserID: 3, Amount: 25})
	require.NoError(t, err)
	_, err = l.PostReversal(ctx, ledger.ReversalRequest{TransactionID: b.ID})
	require.ErrorIs(t, err, ledger.ErrInsufficientFunds)
	_, err = l.VoidHold(ctx, h.ID, nil)
	require.NoError(t, err)

	v, err := l.PostReversal(ctx, ledger.ReversalRequest{TransactionID: b.ID})
	require.NoError(t, err)
	require.Len(t, v.Entries, 3)
	require.Equal(t, []money.Cents{100, 100, 20}, []money.Cents{balanceOf(t, l, 1), balanceOf(t, l, 2), balanceOf(t, l, 3)})

	// A PUT's one entry.
	d, err := l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 30})
	require.NoError(t, err)
	pv, err := l.PostReversal(ctx, ledger.ReversalRequest{TransactionID: d.Entry.TransactionID.UUID})
	require.NoError(t, err)
	require.Len(t, pv.Entries, 1)
	require.Equal(t, money.Cents(-30), pv.Entries[0].Amount)
	require.Equal(t, money.Cents(100), balanceOf(t, l, 1))
	// User 3's deposit of 30 was spent by the batch's reversal: 20 − 30
	// would overdraw.
	_, err = l.PostReversal(ctx, ledger.ReversalRequest{TransactionID: p.Entry.TransactionID.UUID})
	require.ErrorIs(t, err, ledger.ErrInsufficientFunds)
	requireAllVerify(t, l)
}

// TestReversalRace: 50 concurrent reversals of one transaction produce
// exactly one reversal; the others are refused as already reversed.
func TestReversalRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 1000})
	require.NoError(t, err)
	_, err = l.CreateUser(ctx, ledger.NewUser{ID: 2, Balance: 1000})
	require.NoError(t, err)
	tr, err := l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: 1, ToUserID: 2, Amount: 100})
	require.NoError(t, err)

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, done int
		other    []error
	)
	for range 50 {
		wg.Go(func() {
			_, err := l.PostReversal(ctx, ledger.ReversalRequest{TransactionID: tr.ID})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ledger.ErrAlreadyReversed):
				done++
			default:
				other = append(other, err)
			}
		})
	}
	wg.Wait()
	require.Empty(t, other)
	require.Equal(t, 1, ok)
	require.Equal(t, 49, done)
	require.Equal(t, int64(2), count(t, pool, `SELECT count(*) FROM entries WHERE type = 'reversal'`))
	require.Equal(t, money.Cents(1000), balanceOf(t, l, 1))
	require.Equal(t, money.Cents(1000), balanceOf(t, l, 2))
}
