package client_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/money"
)

// TestHolds places, reads, lists, captures and voids holds.
func TestHolds(t *testing.T) {
	t.Parallel()
	_, c := start(t)
	ctx := t.Context()
	_, err := c.CreateUser(ctx, client.NewUser{ID: 1, Balance: 100_00})
	require.NoError(t, err)

	expires := time.Now().Add(48 * time.Hour).Truncate(time.Microsecond)
	h1, err := c.PlaceHold(ctx, 1, client.NewHold{Amount: 60_00, Description: "card auth", Reference: "auth-4711", ExpiresAt: expires})
	require.NoError(t, err)
	require.Equal(t, client.HoldPending, h1.Status)
	require.Equal(t, money.Cents(60_00), h1.Amount)
	require.True(t, h1.ExpiresAt.Equal(expires), "%s", h1.ExpiresAt)
	require.Equal(t, "card auth", h1.Description)
	require.Nil(t, h1.CaptureEntry)
	require.Nil(t, h1.CapturedAmount)
	h2, err := c.PlaceHold(ctx, 1, client.NewHold{Amount: 30_00})
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(7*24*time.Hour), h2.ExpiresAt, time.Minute, "7 days by default")

	u, err := c.GetUser(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, client.User{ID: 1, Balance: 100_00, Held: 90_00, Available: 10_00, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}, u)
	_, err = c.PlaceHold(ctx, 1, client.NewHold{Amount: 10_01})
	require.ErrorIs(t, err, client.ErrInsufficientFunds)
	_, err = c.UpdateBalance(ctx, 1, client.BalanceChange{Amount: -10_01})
	require.ErrorIs(t, err, client.ErrInsufficientFunds, "holds keep what they reserve")

	got, err := c.GetHold(ctx, h1.ID)
	require.NoError(t, err)
	require.Equal(t, h1, got)

	// Newest first, a page at a time.
	var ids []string
	for p, err := range c.HoldPages(ctx, 1, client.HoldFilter{Limit: 1}) {
		require.NoError(t, err)
		require.Len(t, p.Data, 1)
		ids = append(ids, p.Data[0].ID)
	}
	require.Equal(t, []string{h2.ID, h1.ID}, ids)

	// Capture part of one: a withdrawal entry carrying holdId.
	cap1, err := c.CaptureHold(ctx, h1.ID, 25_00)
	require.NoError(t, err)
	require.Equal(t, client.HoldCaptured, cap1.Status)
	require.Equal(t, new(money.Cents(25_00)), cap1.CapturedAmount)
	require.NotNil(t, cap1.CaptureEntry)
	e, err := c.GetTransaction(ctx, cap1.CaptureEntry.ID)
	require.NoError(t, err)
	require.Equal(t, h1.ID, e.HoldID)
	require.Equal(t, money.Cents(-25_00), e.Amount)
	_, err = c.CaptureHold(ctx, h1.ID, 0)
	require.ErrorIs(t, err, client.ErrConflict, "a capture happens once")
	_, err = c.VoidHold(ctx, h1.ID)
	require.ErrorIs(t, err, client.ErrConflict)

	// Void the other whole; capture the whole of a third.
	v, err := c.VoidHold(ctx, h2.ID)
	require.NoError(t, err)
	require.Equal(t, client.HoldVoided, v.Status)
	h3, err := c.PlaceHold(ctx, 1, client.NewHold{Amount: 5_00})
	require.NoError(t, err)
	whole, err := c.CaptureHold(ctx, h3.ID, 0)
	require.NoError(t, err)
	require.Equal(t, new(money.Cents(5_00)), whole.CapturedAmount)

	p, err := c.ListHolds(ctx, 1, client.HoldFilter{Status: client.HoldVoided})
	require.NoError(t, err)
	require.Len(t, p.Data, 1)
	require.Equal(t, h2.ID, p.Data[0].ID)
	require.False(t, p.HasMore)

	u, err = c.GetUser(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, money.Cents(70_00), u.Balance)
	require.Zero(t, u.Held)

	_, err = c.PlaceHold(ctx, 1, client.NewHold{Amount: 1, ExpiresAt: time.Now().Add(-time.Hour)})
	requireParam(t, err, client.ErrValidation, "expiresAt")
}
