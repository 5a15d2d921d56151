package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// feedPage is one page of GET /api/events.
type feedPage struct {
	Data       []json.RawMessage
	Pagination struct {
		NextCursor *string
		HasMore    bool
	}
}

// feedEvent is what the tests look at in an event.
type feedEvent struct {
	ID   string
	Type string
	Data struct {
		ID     string
		UserID int64
		Seq    int64
		Status string
	}
}

func (s *testServer) feed(t testing.TB, validate bool, query string) (feedPage, response) {
	t.Helper()
	r := s.send(t, validate, http.MethodGet, "/api/events?"+query, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var p feedPage
	require.NoError(t, json.Unmarshal(r.Body, &p))
	require.NotNil(t, p.Pagination.NextCursor, "every page has a cursor to go on from")
	return p, r
}

// readFeedToEnd pages the feed from cursor (from the beginning when empty)
// until a page is empty and no writer is left, and returns the events.
func readFeedToEnd(t testing.TB, s *testServer, cursor string, writersDone func() bool) []json.RawMessage {
	t.Helper()
	var out []json.RawMessage
	for {
		q := url.Values{"limit": {"200"}, "wait": {"2"}}
		if cursor != "" {
			q.Set("after", cursor)
		}
		done := writersDone()
		p, _ := s.feed(t, false, q.Encode())
		out = append(out, p.Data...)
		cursor = *p.Pagination.NextCursor
		if len(p.Data) == 0 && done {
			return out
		}
	}
}

// TestFeedCompleteUnderConcurrency: while 16 writers commit a mixed load
// (deposits, withdrawals, transfers, batches, holds placed, captured and
// voided) for 20 s, four readers page the feed from the start with wait,
// and one more from a cursor taken mid-load. Each sees every committed
// event exactly once, per user in seq order; the mid-load reader sees
// exactly what the others saw after its cursor.
func TestFeedCompleteUnderConcurrency(t *testing.T) {
	t.Parallel()
	s := newEventServer(t)
	ctx := context.Background()
	const users = 20
	for id := int64(1); id <= users; id++ {
		_, err := s.ledger.CreateUser(ctx, ledger.NewUser{ID: id, Balance: 100_000})
		require.NoError(t, err)
	}
	var (
		wg      sync.WaitGroup
		stopped = make(chan struct{})
		done    sync.WaitGroup
	)
	writersDone := func() bool {
		select {
		case <-stopped:
			return true
		default:
			return false
		}
	}
	for w := range 16 {
		done.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for !writersDone() {
				u := 1 + r.Int64N(users)
				amount := money.Cents(1 + r.IntN(500))
				var err error
				switch r.IntN(6) {
				case 0:
					_, err = s.ledger.PostEntry(ctx, ledger.Change{UserID: u, Amount: amount})
				case 1:
					_, err = s.ledger.PostEntry(ctx, ledger.Change{UserID: u, Amount: -amount})
				case 2:
					_, err = s.ledger.PostTransfer(ctx, ledger.TransferRequest{FromUserID: u, ToUserID: u%users + 1, Amount: amount})
				case 3:
					_, err = s.ledger.PostBatch(ctx, ledger.BatchRequest{Changes: []ledger.BatchChange{{UserID: u, Amount: -amount}, {UserID: u%users + 1, Amount: amount}}})
				default:
					var h ledger.Hold
					if h, err = s.ledger.PlaceHold(ctx, ledger.NewHold{UserID: u, Amount: amount}); err == nil {
						if r.IntN(2) == 0 {
							_, err = s.ledger.CaptureHold(ctx, h.ID, 0, nil)
						} else {
							_, err = s.ledger.VoidHold(ctx, h.ID, nil)
						}
					}
				}
				if err != nil && !assert.ErrorIs(t, err, ledger.ErrInsufficientFunds) {
					return
				}
			}
		})
	}
	reads := make([][]json.RawMessage, 4)
	for i := range reads {
		wg.Go(func() { reads[i] = readFeedToEnd(t, s.testServer, "", writersDone) })
	}
	// A cursor taken mid-load.
	time.Sleep(8 * time.Second)
	mid, _ := s.feed(t, true, "limit=50")
	midCursor := *mid.Pagination.NextCursor
	var midRead []json.RawMessage
	wg.Go(func() { midRead = readFeedToEnd(t, s.testServer, midCursor, writersDone) })
	time.Sleep(12 * time.Second)
	close(stopped)
	done.Wait()
	wg.Wait()

	var entries, changes int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM hold_changes)`).Scan(&entries, &changes))
	for i, events := range reads {
		seen := map[string]bool{}
		last := map[int64]int64{}
		var entryEvents, holdEvents int
		for _, raw := range events {
			var e feedEvent
			require.NoError(t, json.Unmarshal(raw, &e))
			require.False(t, seen[e.ID], "reader %d: event %s twice", i, e.ID)
			seen[e.ID] = true
			if e.Data.Seq == 0 { // a hold event
				holdEvents++
				continue
			}
			entryEvents++
			require.Equal(t, last[e.Data.UserID]+1, e.Data.Seq, "reader %d: user %d's seq %d after %d", i, e.Data.UserID, e.Data.Seq, last[e.Data.UserID])
			last[e.Data.UserID] = e.Data.Seq
		}
		require.Equal(t, entries, entryEvents, "reader %d: one event per entry", i)
		require.Equal(t, changes, holdEvents, "reader %d: one event per hold change", i)
		require.Equal(t, reads[0], events, "reader %d: every reader sees the same events in the same order", i)
	}
	require.Greater(t, entries, 1000, "the load committed")
	// The mid-load reader: the others' events after the cursor's last one.
	var lastMid feedEvent
	require.NoError(t, json.Unmarshal(mid.Data[len(mid.Data)-1], &lastMid))
	at := -1
	for i, raw := range reads[0] {
		var e feedEvent
		require.NoError(t, json.Unmarshal(raw, &e))
		if e.ID == lastMid.ID {
			at = i
		}
	}
	require.GreaterOrEqual(t, at, 0)
	require.Equal(t, reads[0][at+1:], midRead, "from a mid-load cursor: exactly the rest")
	t.Logf("%d entries, %d hold changes, %d events read from the middle", entries, changes, len(midRead))
}

// TestFeedMatchesBroker: the feed's events, and a user's events, are byte
// for byte the messages the broker delivered, ids included.
func TestFeedMatchesBroker(t *testing.T) {
	t.Parallel()
	s := newEventServer(t)
	ctx := context.Background()
	for id := int64(1); id <= 3; id++ {
		_, err := s.ledger.CreateUser(ctx, ledger.NewUser{ID: id, Balance: 1000})
		require.NoError(t, err)
	}
	_, err := s.ledger.PostEntry(ctx, ledger.Change{UserID: 1, Amount: -250, Description: "Café <crème> & co", Reference: "r-1"})
	require.NoError(t, err)
	tr, err := s.ledger.PostTransfer(ctx, ledger.TransferRequest{FromUserID: 1, ToUserID: 2, Amount: 100})
	require.NoError(t, err)
	_, err = s.ledger.PostBatch(ctx, ledger.BatchRequest{Changes: []ledger.BatchChange{{UserID: 3, Amount: -10}, {UserID: 2, Amount: 10}}})
	require.NoError(t, err)
	_, err = s.ledger.PostReversal(ctx, ledger.ReversalRequest{TransactionID: tr.ID})
	require.NoError(t, err)
	h, err := s.ledger.PlaceHold(ctx, ledger.NewHold{UserID: 3, Amount: 5})
	require.NoError(t, err)
	_, err = s.ledger.CaptureHold(ctx, h.ID, 2, nil)
	require.NoError(t, err)

	var total int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM entries) + (SELECT count(*) FROM hold_changes)`).Scan(&total))
	deliveries := s.consumer.WaitDistinct(total, 30*time.Second)
	broker := map[string][]byte{}
	for _, d := range deliveries {
		broker[d.MessageID] = d.Body
	}
	require.Len(t, broker, total)

	events := readFeedToEnd(t, s.testServer, "", func() bool { return true })
	require.Len(t, events, total)
	for _, raw := range events {
		var e feedEvent
		require.NoError(t, json.Unmarshal(raw, &e))
		require.Equal(t, string(broker[e.ID]), string(raw), "event %s", e.ID)
	}
	// One page, validated against the OpenAPI document.
	p, _ := s.feed(t, true, "limit=5&type=ledger.entry.")
	require.Len(t, p.Data, 5)
	require.True(t, p.Pagination.HasMore)

	r := s.do(t, http.MethodGet, "/api/users/1/events?afterSeq=1&limit=2", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var up feedPage
	require.NoError(t, json.Unmarshal(r.Body, &up))
	require.Len(t, up.Data, 2)
	require.True(t, up.Pagination.HasMore)
	for i, raw := range up.Data {
		var e feedEvent
		require.NoError(t, json.Unmarshal(raw, &e))
		require.Equal(t, int64(2+i), e.Data.Seq)
		require.Equal(t, string(broker[e.ID]), string(raw))
	}
	// The type filter keeps only its events.
	caps := readFeedPrefix(t, s.testServer, "ledger.hold.captured")
	require.Len(t, caps, 1)
	require.Equal(t, 404, s.do(t, http.MethodGet, "/api/users/9/events", nil).Status)
}

func readFeedPrefix(t *testing.T, s *testServer, prefix string) []feedEvent {
	t.Helper()
	p, _ := s.feed(t, true, "limit=1000&type="+url.QueryEscape(prefix))
	out := make([]feedEvent, len(p.Data))
	for i, raw := range p.Data {
		require.NoError(t, json.Unmarshal(raw, &out[i]))
		require.Equal(t, prefix, out[i].Type)
	}
	return out
}

// TestFeedLongPoll: a waiting read returns as soon as an event commits,
// long before its wait ends (the latency is logged, not asserted: this
// machine is shared); a 30 s wait with no writes returns empty when it
// ends, with the same cursor.
func TestFeedLongPoll(t *testing.T) {
	t.Parallel()
	s := newEventServer(t)
	ctx := context.Background()
	_, err := s.ledger.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 10})
	require.NoError(t, err)
	first := readFeedToEnd(t, s.testServer, "", func() bool { return true })
	require.Len(t, first, 1)
	p, _ := s.feed(t, true, "")
	cursor := *p.Pagination.NextCursor

	type answer struct {
		page feedPage
		at   time.Time
	}
	got := make(chan answer, 1)
	start := time.Now()
	go func() {
		p, _ := s.feed(t, false, "wait=30&after="+url.QueryEscape(cursor))
		got <- answer{p, time.Now()}
	}()
	time.Sleep(500 * time.Millisecond) // the read is waiting
	_, err = s.ledger.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 5})
	require.NoError(t, err)
	committed := time.Now()
	a := <-got
	require.Len(t, a.page.Data, 1, "woken by the commit")
	require.Less(t, a.at.Sub(start), 10*time.Second, "long before the 30 s wait ended")
	t.Logf("a waiting read returned %s after the commit", a.at.Sub(committed))

	start = time.Now()
	p, _ = s.feed(t, true, "wait=30s&after="+url.QueryEscape(*a.page.Pagination.NextCursor))
	require.Empty(t, p.Data)
	waited := time.Since(start)
	require.GreaterOrEqual(t, waited, 30*time.Second, "an empty wait lasts its time")
	t.Logf("a 30 s wait with no writes returned empty after %s", waited)
	require.Equal(t, *a.page.Pagination.NextCursor, *p.Pagination.NextCursor, "an empty page keeps the cursor")
}

// TestFeedBadInput: forged, garbled and foreign cursors, bad limits, waits
// and types are 400 with the parameter named, and change nothing.
func TestFeedBadInput(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	// Another database: migrated on its own, it has a key of its own (test
	// databases are clones of one template, so this one gets a new key).
	other := newTestServer(t, 2)
	_, err := other.Pool.Exec(context.Background(), `UPDATE feed_cursor_key SET key = uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())`)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 10}`).Status)
	foreign, _ := other.feed(t, true, "")
	valid, _ := s.feed(t, true, "")
	forged := []byte(fmt.Sprintf("f1:%d.AAAAAAAAAAAAAAAAAAAAAA", 1))
	for _, tc := range []struct{ name, query, param string }{
		{"forged cursor", "after=" + url.QueryEscape(b64(forged)), "after"},
		{"garbled cursor", "after=" + url.QueryEscape((*valid.Pagination.NextCursor)[:5]+"!!"), "after"},
		{"foreign cursor", "after=" + url.QueryEscape(*foreign.Pagination.NextCursor), "after"},
		{"empty cursor", "after=", "after"},
		{"limit 0", "limit=0", "limit"},
		{"limit 1001", "limit=1001", "limit"},
		{"limit not a number", "limit=ten", "limit"},
		{"wait 31", "wait=31", "wait"},
		{"negative wait", "wait=-1", "wait"},
		{"wait in minutes", "wait=1m", "wait"},
		{"wait not a duration", "wait=soon", "wait"},
		{"upper-case type", "type=LEDGER", "type"},
		{"type with a space", "type=ledger+entry", "type"},
		{"empty type", "type=", "type"},
		{"unknown parameter", "cursor=x", "cursor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, http.MethodGet, "/api/events?"+tc.query, nil)
			require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
			require.Equal(t, "validation_error", r.ErrorType(t))
			require.Equal(t, tc.param, r.errorParam(t))
		})
	}
	for _, q := range []string{"afterSeq=-1", "limit=0", "after=1"} {
		r := s.do(t, http.MethodGet, "/api/users/1/events?"+q, nil)
		require.Equal(t, http.StatusBadRequest, r.Status, "%s: %s", q, r.Body)
	}
	again, _ := s.feed(t, true, "after="+url.QueryEscape(*valid.Pagination.NextCursor))
	require.Equal(t, *valid.Pagination.NextCursor, *again.Pagination.NextCursor, "a valid cursor still reads")
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
