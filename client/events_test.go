package client_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/money"
)

// TestEvents pages the event feed and a user's events, and waits on the
// feed for a new event.
func TestEvents(t *testing.T) {
	t.Parallel()
	l := startLedgerd(t, config{feed: true})
	c := newClient(t, l.URL, nil)
	ctx := t.Context()
	_, err := c.CreateUser(ctx, client.NewUser{ID: 1, Balance: 10_00}) // opening: 1 event
	require.NoError(t, err)
	for range 3 {
		_, err := c.UpdateBalance(ctx, 1, client.BalanceChange{Amount: -1_00}) // 3 events
		require.NoError(t, err)
	}
	h, err := c.PlaceHold(ctx, 1, client.NewHold{Amount: 2_00}) // 1 hold event
	require.NoError(t, err)

	// The sequencer gives events their positions after the commits; read
	// until all 5 are there.
	var (
		events []client.Event
		cursor string
	)
	for deadline := time.Now().Add(10 * time.Second); len(events) < 5 && time.Now().Before(deadline); {
		for p, err := range c.EventPages(ctx, client.EventFilter{After: cursor, Limit: 2, Wait: time.Second}) {
			require.NoError(t, err)
			require.LessOrEqual(t, len(p.Data), 2)
			require.NotEmpty(t, p.NextCursor, "every page of the feed has a cursor")
			events = append(events, p.Data...)
			cursor = p.NextCursor
		}
	}
	require.Len(t, events, 5)

	for i, ev := range events[:4] {
		require.Equal(t, "1.0", ev.SpecVersion)
		require.Equal(t, "ledgerd", ev.Source)
		require.Equal(t, "users/1", ev.Subject)
		require.False(t, ev.IsHold())
		e, err := ev.Entry()
		require.NoError(t, err)
		require.Equal(t, int64(i+1), e.Seq, "each user's events in seq order")
		require.Equal(t, "ledger.entry."+string(e.Type), ev.Type)
		require.Equal(t, ev.ID, e.ID, "the event id is the entry's")
		var raw map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(ev.Raw, &raw), "Raw is the whole document")
		require.JSONEq(t, string(ev.Data), string(raw["data"]))
		_, err = ev.Hold()
		require.Error(t, err)
	}
	require.Equal(t, "ledger.hold.placed", events[4].Type)
	hold, err := events[4].Hold()
	require.NoError(t, err)
	require.Equal(t, h.ID, hold.ID)
	require.Equal(t, money.Cents(2_00), hold.Amount)
	e1, err := events[0].Entry()
	require.NoError(t, err)
	require.Equal(t, money.Cents(10_00), e1.BalanceAfter)

	// At the end: an empty page with the same place to go on from, and a
	// read that waits for the next event.
	p, err := c.ReadEvents(ctx, client.EventFilter{After: cursor})
	require.NoError(t, err)
	require.Empty(t, p.Data)
	require.False(t, p.HasMore)
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, _ = c.UpdateBalance(ctx, 1, client.BalanceChange{Amount: 5})
	}()
	t0 := time.Now()
	p, err = c.ReadEvents(ctx, client.EventFilter{After: cursor, Wait: 10 * time.Second, Type: "ledger.entry."})
	require.NoError(t, err)
	require.Len(t, p.Data, 1, "the wait ends with the new event")
	require.Less(t, time.Since(t0), 9*time.Second)
	require.Equal(t, "ledger.entry.deposit", p.Data[0].Type)

	// The type filter, and a cursor the ledger did not make.
	p, err = c.ReadEvents(ctx, client.EventFilter{Type: "ledger.hold."})
	require.NoError(t, err)
	require.Len(t, p.Data, 1)
	_, err = c.ReadEvents(ctx, client.EventFilter{After: "forged"})
	requireParam(t, err, client.ErrValidation, "after")

	// One user's entry events, in seq order, a page at a time.
	var seqs []int64
	for p, err := range c.UserEventPages(ctx, 1, client.UserEventFilter{Limit: 2}) {
		require.NoError(t, err)
		for _, ev := range p.Data {
			e, err := ev.Entry()
			require.NoError(t, err)
			seqs = append(seqs, e.Seq)
		}
	}
	require.Equal(t, []int64{1, 2, 3, 4, 5}, seqs)
	p, err = c.ReadUserEvents(ctx, 1, client.UserEventFilter{AfterSeq: 3})
	require.NoError(t, err)
	require.Len(t, p.Data, 2)
	require.False(t, p.HasMore)
}
