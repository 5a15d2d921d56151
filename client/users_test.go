package client_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/money"
)

// TestUsers walks the seed's flow: a user with 100.00, a withdrawal of 2,
// a withdrawal past the balance refused, then the user's state, balance in
// the past and verification.
func TestUsers(t *testing.T) {
	t.Parallel()
	_, c := start(t)
	ctx := t.Context()
	before := time.Now()

	u, err := c.CreateUser(ctx, client.NewUser{ID: 1, Balance: 100_00})
	require.NoError(t, err)
	require.Equal(t, int64(1), u.ID)
	require.Equal(t, money.Cents(100_00), u.Balance)
	require.Equal(t, money.Cents(100_00), u.Available)
	require.Zero(t, u.Held)
	require.WithinDuration(t, time.Now(), u.CreatedAt, time.Minute)

	var resp client.Response
	up, err := c.UpdateBalance(ctx, 1, client.BalanceChange{Amount: -2_00, Description: "coffee", Reference: "r-1"}, client.ResponseInto(&resp))
	require.NoError(t, err)
	require.Equal(t, money.Cents(98_00), up.Balance)
	require.Equal(t, int64(2), up.Entry.Seq)
	require.NotEmpty(t, up.Entry.ID)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "Balance updated successfully", resp.Message)
	require.NotEmpty(t, resp.IdempotencyKey, "every write carries a key")
	require.NotEmpty(t, resp.RequestID)
	require.False(t, resp.Replayed)
	require.Equal(t, 1, resp.Attempts)

	_, err = c.UpdateBalance(ctx, 1, client.BalanceChange{Amount: -98_01})
	require.ErrorIs(t, err, client.ErrInsufficientFunds)
	var apiErr *client.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	require.Equal(t, "insufficient_funds", apiErr.Type)
	require.Equal(t, "Insufficient funds", apiErr.Message)
	require.NotEmpty(t, apiErr.RequestID)
	require.NotErrorIs(t, err, client.ErrValidation)

	// Exact money: a balance no float32 keeps.
	up, err = c.UpdateBalance(ctx, 1, client.BalanceChange{Amount: 1_234_567_89})
	require.NoError(t, err)
	require.Equal(t, money.Cents(1_234_665_89), up.Balance)

	got, err := c.GetUser(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, money.Cents(1_234_665_89), got.Balance)
	require.Equal(t, u.CreatedAt, got.CreatedAt)

	now, err := c.GetBalanceAt(ctx, 1, time.Time{})
	require.NoError(t, err)
	require.Equal(t, client.BalanceAt{ID: 1, Balance: 1_234_665_89, At: now.At, Seq: 3}, now)
	past, err := c.GetBalanceAt(ctx, 1, before.Add(-time.Hour))
	require.NoError(t, err)
	require.Zero(t, past.Seq)
	require.Zero(t, past.Balance)
	require.True(t, past.At.Equal(before.Add(-time.Hour).Truncate(time.Microsecond)), "%s", past.At)

	v, err := c.VerifyUser(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, client.Verification{ID: 1, OK: true, Entries: 3, LedgerBalance: 1_234_665_89,
		ProjectedBalance: 1_234_665_89, ChainValid: true}, v)

	// Without a signing key, a statement is unsigned.
	st, err := c.GetStatement(ctx, 1, client.StatementRange{})
	require.NoError(t, err)
	require.Len(t, st.Entries, 3)
	require.Equal(t, v.LedgerBalance, st.ClosingBalance)
	require.Empty(t, st.KeyID)
	require.Nil(t, st.Signature)

	// An id the server assigns, and one that exists.
	auto, err := c.CreateUser(ctx, client.NewUser{})
	require.NoError(t, err)
	require.Positive(t, auto.ID)
	require.Zero(t, auto.Balance)
	_, err = c.CreateUser(ctx, client.NewUser{ID: 1})
	require.ErrorIs(t, err, client.ErrConflict)
	require.NotErrorIs(t, err, client.ErrIdempotencyConflict)
}

// TestNotFound checks every route that names something absent.
func TestNotFound(t *testing.T) {
	t.Parallel()
	_, c := start(t)
	ctx := t.Context()
	const unknown = "0195f2a0-6c00-7000-8000-000000000099"
	for name, call := range map[string]func() error{
		"GetUser":            func() error { _, err := c.GetUser(ctx, 42); return err },
		"UpdateBalance":      func() error { _, err := c.UpdateBalance(ctx, 42, client.BalanceChange{Amount: 1}); return err },
		"GetBalanceAt":       func() error { _, err := c.GetBalanceAt(ctx, 42, time.Time{}); return err },
		"VerifyUser":         func() error { _, err := c.VerifyUser(ctx, 42); return err },
		"GetTransaction":     func() error { _, err := c.GetTransaction(ctx, unknown); return err },
		"GetHold":            func() error { _, err := c.GetHold(ctx, unknown); return err },
		"CaptureHold":        func() error { _, err := c.CaptureHold(ctx, unknown, 0); return err },
		"VoidHold":           func() error { _, err := c.VoidHold(ctx, unknown); return err },
		"PlaceHold":          func() error { _, err := c.PlaceHold(ctx, 42, client.NewHold{Amount: 1}); return err },
		"CreateReversal":     func() error { _, err := c.CreateReversal(ctx, client.NewReversal{TransactionID: unknown}); return err },
		"GetCheckpoint":      func() error { _, err := c.GetCheckpoint(ctx, 7); return err },
		"GetCheckpointProof": func() error { _, err := c.GetCheckpointProof(ctx, 42, 0); return err },
		"GetSigningKey":      func() error { _, err := c.GetSigningKey(ctx, ""); return err },
	} {
		err := call()
		require.ErrorIs(t, err, client.ErrNotFound, name)
		var apiErr *client.Error
		require.True(t, errors.As(err, &apiErr), name)
		require.Equal(t, http.StatusNotFound, apiErr.StatusCode, name)
	}
	_, err := c.GetTransaction(ctx, "")
	require.Error(t, err, "an empty id is refused before any request")
}
