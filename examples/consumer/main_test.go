package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/client"
)

func TestTopicMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		binding, key string
		want         bool
	}{
		{"#", "ledger.hold.placed", true},
		{"ledger.entry.#", "ledger.entry.deposit", true},
		{"ledger.entry.#", "ledger.hold.placed", false},
		{"ledger.entry.*", "ledger.entry.transfer_in", true},
		{"ledger.entry.transfer_*", "ledger.entry.transfer_in", false}, // * is a wildcard only as a whole word
		{"ledger.#.placed", "ledger.hold.placed", true},
		{"ledger.*", "ledger.entry.deposit", false},
		{"ledger.entry.withdrawal", "ledger.entry.withdrawal", true},
	} {
		c := consumer{bindings: []string{tc.binding}}
		require.Equal(t, tc.want, c.bound(tc.key), "%s against %s", tc.key, tc.binding)
	}
}

func TestFeedTypePrefix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bindings []string
		want     string
	}{
		{[]string{"ledger.entry.#"}, "ledger.entry."},
		{[]string{"#"}, ""},
		{[]string{"ledger.entry.transfer_in", "ledger.entry.transfer_out"}, "ledger.entry.transfer_"},
		{[]string{"ledger.entry.#", "ledger.hold.captured"}, "ledger."},
		{[]string{"*.entry.deposit"}, ""},
	} {
		require.Equal(t, tc.want, feedTypePrefix(tc.bindings), "%v", tc.bindings)
	}
}

// entryEvent and holdEvent are events as ledgerd writes them, cut to the
// fields the consumer reads.
func entryEvent(user, seq int64) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":"e-%d-%d","type":"ledger.entry.deposit","data":{"id":"e-%d-%d","userId":%d,"seq":%d,"type":"deposit","amount":10.50,"balanceAfter":10.50}}`,
		user, seq, user, seq, user, seq)
}

func holdEvent(user int64, change string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":"h-%d-%s","type":"ledger.hold.%s","data":{"id":"hold-%d","userId":%d,"status":%q}}`,
		user, change, change, user, user, change)
}

// fakeFeed serves GET /api/events as ledgerd does, from pages keyed by the
// cursor they follow; any other cursor is refused like a forged one.
func fakeFeed(t *testing.T, token string, pages map[string][]string, next map[string]string) *httptest.Server {
	t.Helper()
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/api/events" || q.Get("limit") != "1000" || r.Header.Get("Authorization") != auth {
			http.Error(w, "unexpected request "+r.URL.String(), http.StatusTeapot)
			return
		}
		after := q.Get("after")
		events, ok := pages[after]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"success":false,"error":{"message":"after is not a cursor of this ledger's feed","code":400,"type":"validation_error","param":"after"}}`))
			return
		}
		data := make([]json.RawMessage, len(events))
		for i, e := range events {
			data[i] = json.RawMessage(e)
		}
		_, hasMore := pages[next[after]]
		hasMore = hasMore && len(pages[next[after]]) > 0
		_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "data": data,
			"pagination": map[string]any{"nextCursor": next[after], "hasMore": hasMore}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// feedClient is a client of the fake feed at base, with token.
func feedClient(t *testing.T, srv *httptest.Server, base, token string) *client.Client {
	t.Helper()
	c, err := client.New(base, client.WithHTTPClient(srv.Client()), client.WithToken(token))
	require.NoError(t, err)
	return c
}

// acks records what the consumer answered to each delivery.
type acks []string

func (a *acks) Ack(uint64, bool) error        { *a = append(*a, "ack"); return nil }
func (a *acks) Nack(uint64, bool, bool) error { *a = append(*a, "nack"); return nil }
func (a *acks) Reject(uint64, bool) error     { *a = append(*a, "reject"); return nil }

func TestCatchUpThenQueue(t *testing.T) {
	t.Parallel()
	pages := map[string][]string{
		"":   {entryEvent(1, 1), entryEvent(2, 1), holdEvent(1, "placed")},
		"c3": {entryEvent(1, 2)},
		"c4": {},
	}
	next := map[string]string{"": "c3", "c3": "c4", "c4": "c4"}
	srv := fakeFeed(t, "s3cret", pages, next)
	statePath := filepath.Join(t.TempDir(), "state.json")
	c := consumer{bindings: []string{"#"}, gaps: true, feed: feedClient(t, srv, srv.URL+"/", "s3cret"),
		statePath: statePath, st: newState(), log: slog.New(slog.DiscardHandler)}

	require.NoError(t, c.load())
	require.NoError(t, c.catchUp(context.Background()))
	require.Equal(t, map[int64]int64{1: 2, 2: 1}, c.st.Last)
	require.Equal(t, map[string]bool{"h-1-placed": true}, c.st.Holds)
	require.Equal(t, "c4", c.st.Cursor)

	// The queue, bound before the feed was read, holds some of the same
	// events again: duplicates, on (user, seq) or, for holds, on the id.
	var got acks
	for _, body := range []string{entryEvent(1, 2), holdEvent(1, "placed"), entryEvent(1, 3), holdEvent(1, "captured"), entryEvent(2, 3), `{"id":"x"}`} {
		require.NoError(t, c.process(amqp.Delivery{Acknowledger: &got, Body: []byte(body)}))
	}
	require.Equal(t, acks{"ack", "ack", "ack", "ack", "ack", "reject"}, got)
	require.Equal(t, map[int64]int64{1: 3, 2: 1}, c.st.Last, "user 2's seq 3 is a gap")
	require.Equal(t, map[string]bool{"h-1-placed": true, "h-1-captured": true}, c.st.Holds)

	// A restart resumes from the saved cursor, with the saved state.
	again := consumer{bindings: c.bindings, gaps: true, feed: feedClient(t, srv, srv.URL, "s3cret"),
		statePath: statePath, st: newState(), log: c.log}
	require.NoError(t, again.load())
	require.Equal(t, c.st, again.st)
	require.NoError(t, again.catchUp(context.Background()))

	// A cursor the ledger did not make (say, of another ledger's database)
	// is refused with the API's reason.
	again.st.Cursor = "forged"
	err := again.catchUp(context.Background())
	require.ErrorIs(t, err, client.ErrValidation)
	require.ErrorContains(t, err, "after is not a cursor")
	var apiErr *client.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, "after", apiErr.Param)
}

func TestCatchUpFiltersByBinding(t *testing.T) {
	t.Parallel()
	// The feed's type filter is a prefix; the bindings are finer.
	pages := map[string][]string{"": {entryEvent(1, 1), holdEvent(1, "placed")}, "c2": {}}
	srv := fakeFeed(t, "", pages, map[string]string{"": "c2", "c2": "c2"})
	c := consumer{bindings: []string{"ledger.entry.withdrawal"}, feed: feedClient(t, srv, srv.URL, ""),
		st: newState(), log: slog.New(slog.DiscardHandler)}
	require.NoError(t, c.catchUp(context.Background()))
	require.Empty(t, c.st.Last, "a deposit is not bound")
	require.Empty(t, c.st.Holds)
}
