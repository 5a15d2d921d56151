package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/outbox"
	"github.com/ledgerd/ledgerd/outbox/outboxtest"
)

// eventServer is a test server whose commits a real relay publishes to a
// real RabbitMQ, with a consumer on the exchange.
type eventServer struct {
	*testServer
	ledger    *ledger.Ledger
	relay     *outbox.Relay
	relayName string
	consumer  *outboxtest.Consumer
}

func newEventServer(t *testing.T) *eventServer {
	t.Helper()
	url := dbtest.NewURL(t)
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	exchange := outboxtest.UniqueName("test.ledger.events")
	consumer := outboxtest.NewConsumer(t, exchange)
	name := outboxtest.UniqueName("relay")
	relay := outbox.NewRelay(outbox.RelayConfig{
		DatabaseURL: url, AMQPURL: outboxtest.URL(), Exchange: exchange, Name: name,
		MaxBackoff: 500 * time.Millisecond, Logger: discardLogger(), ExpandFunc: ledger.ExpandEvents,
	})
	sequencer := outbox.NewSequencer(outbox.SequencerConfig{DatabaseURL: url, Logger: discardLogger()})
	listener := outbox.NewListener(url, discardLogger())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 3)
	go func() { done <- relay.Run(ctx) }()
	go func() { done <- sequencer.Run(ctx) }()
	go func() { listener.Run(ctx); done <- nil }()
	t.Cleanup(func() {
		cancel()
		for range 3 {
			require.NoError(t, <-done)
		}
	})

	opts := ledger.Options{AcquireTimeout: time.Minute, TxTimeout: time.Minute, OnCommit: sequencer.Poke, FeedChangedFunc: listener.Changed}
	s := newTestServerOn(t, pool, opts)
	return &eventServer{testServer: s, ledger: ledger.New(pool, opts), relay: relay, relayName: name, consumer: consumer}
}

// requireEventsMatchLedger checks the consumer's view against the ledger:
// exactly one distinct event per entry, each body's data equal to the entry
// as the API shows it, headers naming user and seq, and per user strictly
// increasing seq after de-duplication; and the outbox has nothing pending.
func (s *eventServer) requireEventsMatchLedger(t *testing.T, userID int64, entries int) {
	t.Helper()
	ds := s.consumer.WaitDistinct(entries, 2*time.Minute)
	unique, dups := outboxtest.Dedup(ds)
	require.Len(t, unique, entries, "one distinct event per entry, no more")
	t.Logf("%d deliveries, %d duplicates", len(ds), dups)

	want := map[string][]byte{}
	var page ledger.EntryPage
	filter := ledger.EntryFilter{UserID: userID, Limit: ledger.MaxPageSize}
	for {
		var err error
		page, err = s.ledger.FindEntries(context.Background(), filter)
		require.NoError(t, err)
		for _, e := range page.Entries {
			b, err := json.Marshal(e)
			require.NoError(t, err)
			want[e.ID.String()] = b
		}
		if !page.HasMore {
			break
		}
		filter.CursorSeq = page.Entries[len(page.Entries)-1].Seq
	}
	require.Len(t, want, entries)

	var lastSeq int64
	for _, d := range unique {
		var ev struct {
			ID      string          `json:"id"`
			Type    string          `json:"type"`
			Subject string          `json:"subject"`
			Data    json.RawMessage `json:"data"`
		}
		require.NoError(t, json.Unmarshal(d.Body, &ev))
		require.Equal(t, d.MessageID, ev.ID)
		require.Equal(t, d.RoutingKey, ev.Type)
		var e struct {
			ID  string `json:"id"`
			Seq int64  `json:"seq"`
		}
		require.NoError(t, json.Unmarshal(ev.Data, &e))
		w, ok := want[e.ID]
		require.True(t, ok, "event for an unknown entry %s", e.ID)
		require.JSONEq(t, string(w), string(ev.Data))
		require.Equal(t, userID, d.Headers["ledger-user-id"])
		require.Equal(t, e.Seq, d.Headers["ledger-seq"])
		require.Equal(t, lastSeq+1, e.Seq, "per-user order")
		lastSeq = e.Seq
	}
	require.Eventually(t, func() bool { return pendingCount(t, s.Pool) == 0 }, 30*time.Second, 50*time.Millisecond,
		"the outbox ends with nothing unpublished")
}

func pendingCount(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	b, err := outbox.ReadBacklog(context.Background(), pool)
	require.NoError(t, err)
	return b.Pending
}

// TestLoadRequirementEvents is the original load requirement end to end: a
// consumer bound to the exchange receives exactly the 5,001 distinct events
// of the 5,001 entries, in seq order, each carrying its entry.
func TestLoadRequirementEvents(t *testing.T) {
	t.Parallel()
	s := newEventServer(t)
	originalLoadRequirement(t, s.testServer)
	s.requireEventsMatchLedger(t, 1, 5001)
}

// TestBrokerOutageDuringWrites cuts the relay's broker connection while
// balance updates run: every update is answered as if nothing happened, and
// once the broker is back every event arrives, none lost.
func TestBrokerOutageDuringWrites(t *testing.T) {
	t.Parallel()
	s := newEventServer(t)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 3, "balance": 1000}`).Status)
	require.Eventually(t, func() bool { return s.relay.Status().BrokerConnected }, 10*time.Second, 10*time.Millisecond)

	const n = 1500
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		status = map[int]int{}
	)
	sem := make(chan struct{}, 50)
	stopCuts := make(chan struct{})
	cutsDone := make(chan int)
	go func() {
		cuts := 0
		for {
			select {
			case <-stopCuts:
				cutsDone <- cuts
				return
			case <-time.After(300 * time.Millisecond):
				cuts += outboxtest.CloseConnections(t, s.relayName)
			}
		}
	}()
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			body := `{"amount": 1}`
			if i%2 == 1 {
				body = `{"amount": -1}`
			}
			r := s.send(t, false, http.MethodPut, "/api/users/3/balance", body)
			mu.Lock()
			status[r.Status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	close(stopCuts)
	cuts := <-cutsDone
	require.Equal(t, map[int]int{http.StatusOK: n}, status, "writes never wait for the broker")
	require.Positive(t, cuts, "the relay's connection was cut during the load")
	t.Logf("%d connection cuts", cuts)
	s.requireEventsMatchLedger(t, 3, n+1)
}
