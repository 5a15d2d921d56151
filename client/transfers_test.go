package client_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/money"
)

// TestTransfersBatchesReversals moves money between users: a transfer, a
// batch, their refusals, and a reversal, once.
func TestTransfersBatchesReversals(t *testing.T) {
	t.Parallel()
	_, c := start(t)
	ctx := t.Context()
	for id, balance := range map[int64]money.Cents{1: 100_00, 2: 0, 3: 10_00} {
		_, err := c.CreateUser(ctx, client.NewUser{ID: id, Balance: balance})
		require.NoError(t, err)
	}

	tr, err := c.CreateTransfer(ctx, client.NewTransfer{FromUserID: 1, ToUserID: 2, Amount: 30_50, Description: "rent", Reference: "2025-04"})
	require.NoError(t, err)
	require.Equal(t, int64(1), tr.FromUserID)
	require.Equal(t, int64(2), tr.ToUserID)
	require.Equal(t, money.Cents(30_50), tr.Amount)
	require.Equal(t, client.EntryTransferOut, tr.Entries[0].Type)
	require.Equal(t, money.Cents(-30_50), tr.Entries[0].Amount)
	require.Equal(t, money.Cents(69_50), tr.Entries[0].BalanceAfter)
	require.Equal(t, client.EntryTransferIn, tr.Entries[1].Type)
	require.Equal(t, money.Cents(30_50), tr.Entries[1].BalanceAfter)
	for _, e := range tr.Entries {
		require.Equal(t, tr.ID, e.TransferID)
		require.Equal(t, tr.ID, e.TransactionID)
		require.Equal(t, "rent", e.Description)
	}

	_, err = c.CreateTransfer(ctx, client.NewTransfer{FromUserID: 3, ToUserID: 1, Amount: 10_01})
	require.ErrorIs(t, err, client.ErrInsufficientFunds)
	_, err = c.CreateTransfer(ctx, client.NewTransfer{FromUserID: 1, ToUserID: 9, Amount: 1})
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = c.CreateTransfer(ctx, client.NewTransfer{FromUserID: 1, ToUserID: 1, Amount: 1})
	require.ErrorIs(t, err, client.ErrValidation)

	// A batch, all or nothing; a refused change is named.
	b, err := c.CreateBatch(ctx, client.NewBatch{Changes: []client.BatchChange{
		{UserID: 3, Amount: -1_50}, {UserID: 1, Amount: 1_00, Description: "payout"}, {UserID: 2, Amount: 50, Description: "fee"},
	}, Reference: "payout-0001"})
	require.NoError(t, err)
	require.Len(t, b.Entries, 3)
	require.Equal(t, "payout-0001", b.Reference)
	require.Empty(t, b.Description)
	require.Equal(t, []client.EntryType{client.EntryWithdrawal, client.EntryDeposit, client.EntryDeposit},
		[]client.EntryType{b.Entries[0].Type, b.Entries[1].Type, b.Entries[2].Type})
	for _, e := range b.Entries {
		require.Equal(t, b.ID, e.TransactionID)
	}
	_, err = c.CreateBatch(ctx, client.NewBatch{Changes: []client.BatchChange{{UserID: 1, Amount: 1}, {UserID: 3, Amount: -100_00}}})
	requireParam(t, err, client.ErrInsufficientFunds, "changes[1]")
	_, err = c.CreateBatch(ctx, client.NewBatch{Changes: []client.BatchChange{{UserID: 1, Amount: 1}, {UserID: 9, Amount: 1}}})
	requireParam(t, err, client.ErrNotFound, "changes[1]")
	u3, err := c.GetUser(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, money.Cents(8_50), u3.Balance, "the refused batches wrote nothing")

	// A reversal undoes the transfer's two entries, once.
	rv, err := c.CreateReversal(ctx, client.NewReversal{TransactionID: tr.ID, Description: "sent in error"})
	require.NoError(t, err)
	require.Equal(t, tr.ID, rv.TransactionID)
	require.Len(t, rv.Entries, 2)
	for i, e := range rv.Entries {
		require.Equal(t, client.EntryReversal, e.Type)
		require.Equal(t, rv.ID, e.TransactionID)
		require.Equal(t, tr.Entries[i].ID, e.ReversalOf)
		require.Equal(t, -tr.Entries[i].Amount, e.Amount)
	}
	_, err = c.CreateReversal(ctx, client.NewReversal{TransactionID: tr.ID})
	require.ErrorIs(t, err, client.ErrConflict)
	_, err = c.CreateReversal(ctx, client.NewReversal{TransactionID: rv.ID})
	require.ErrorIs(t, err, client.ErrValidation, "a reversal is not reversed")
	u1, err := c.GetUser(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, money.Cents(101_00), u1.Balance)
}
