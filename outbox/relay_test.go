package outbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/outbox"
	"github.com/ledgerd/ledgerd/outbox/outboxtest"
)

func testLogger() *slog.Logger {
	w := io.Discard
	if os.Getenv("LEDGERD_TEST_LOGS") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// env is one test's database, exchange and consumer.
type env struct {
	url      string
	pool     *pgxpool.Pool
	exchange string
	consumer *outboxtest.Consumer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	url := dbtest.NewURL(t)
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	exchange := outboxtest.UniqueName("test.ledger.events")
	return &env{url: url, pool: pool, exchange: exchange, consumer: outboxtest.NewConsumer(t, exchange)}
}

// startRelay runs a relay until the returned stop function is called;
// change, when given, adjusts its configuration.
func (e *env) startRelay(t *testing.T, name string, change ...func(*outbox.RelayConfig)) (*outbox.Relay, func()) {
	t.Helper()
	cfg := outbox.RelayConfig{
		DatabaseURL: e.url, AMQPURL: outboxtest.URL(), Exchange: e.exchange,
		Name: name, Window: 64, PollInterval: 200 * time.Millisecond, LockRetry: 100 * time.Millisecond,
		MaxBackoff: 500 * time.Millisecond, Logger: testLogger().With("test", t.Name()),
		ExpandFunc: expandForTest,
	}
	for _, c := range change {
		c(&cfg)
	}
	r := outbox.NewRelay(cfg)
	// Each relay comes with a sequencer, as in ledgerd serve: one of them
	// leads and gives the outbox's events their positions in the log.
	seq := outbox.NewSequencer(outbox.SequencerConfig{DatabaseURL: e.url, Name: name + "-sequencer",
		PollInterval: 200 * time.Millisecond, LockRetry: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		Logger: cfg.Logger})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- r.Run(ctx) }()
	go func() { done <- seq.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return r, stop
}

// enqueue commits one message per user for users 1..users, each with its
// per-user seq in the ledger-seq header, as the ledger's transactions do.
func (e *env) enqueue(t *testing.T, users int, seq int) {
	t.Helper()
	ctx := context.Background()
	b := &pgx.Batch{}
	msgs := make([]outbox.Message, users)
	for u := range users {
		msgs[u] = outbox.Message{
			EventID: uuid.New(), RoutingKey: "ledger.entry.deposit",
			Headers:   map[string]any{"ledger-user-id": u + 1, "ledger-seq": seq},
			Body:      []byte(fmt.Sprintf(`{"user":%d,"seq":%d}`, u+1, seq)),
			CreatedAt: time.Now(), UserID: int64(u + 1),
		}
	}
	require.NoError(t, outbox.QueueEnqueue(b, msgs))
	tx, err := e.pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, tx.SendBatch(ctx, b).Close())
	require.NoError(t, tx.Commit(ctx))
}

// requireOrdered checks that, after de-duplication, every user's messages
// arrive in strictly increasing seq and none is missing.
func requireOrdered(t *testing.T, ds []outboxtest.Delivery, users, seqs int) {
	t.Helper()
	unique, _ := outboxtest.Dedup(ds)
	require.Len(t, unique, users*seqs)
	last := map[int64]int64{}
	for _, d := range unique {
		u, s := d.Headers["ledger-user-id"].(int64), d.Headers["ledger-seq"].(int64)
		require.Equal(t, last[u]+1, s, "user %d: seq %d after %d", u, s, last[u])
		last[u] = s
	}
}

func pendingRows(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	b, err := outbox.ReadBacklog(context.Background(), pool)
	require.NoError(t, err)
	return b.Pending
}

// TestRelayPublishes: committed rows reach the broker with the contract's
// properties, in order, and leave the outbox pending set; the relay stops
// cleanly and leaks no goroutine.
func TestRelayPublishes(t *testing.T) {
	e := newEnv(t)
	// Only the relay's own goroutines are checked: the consumer and the
	// pool outlive this function.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for seq := 1; seq <= 5; seq++ {
		e.enqueue(t, 3, seq)
	}
	r, stop := e.startRelay(t, outboxtest.UniqueName("relay"))
	ds := e.consumer.WaitDistinct(15, 30*time.Second)
	requireOrdered(t, ds, 3, 5)
	d := ds[0]
	require.Equal(t, outbox.ContentType, d.ContentType)
	require.True(t, d.Persistent)
	require.Equal(t, "ledger.entry.deposit", d.RoutingKey)
	require.NotEmpty(t, d.MessageID)
	require.False(t, d.Timestamp.IsZero())
	require.True(t, json.Valid(d.Body))

	require.Eventually(t, func() bool { return pendingRows(t, e.pool) == 0 }, 10*time.Second, 50*time.Millisecond)
	st := r.Status()
	require.Equal(t, outbox.RoleLeader, st.Role)
	require.True(t, st.BrokerConnected)
	require.GreaterOrEqual(t, st.Published, uint64(15))

	// Rows committed later are picked up on a notification from a writer.
	n := outbox.NewNotifier(e.pool, nil, 0, testLogger())
	ctx, cancel := context.WithCancel(context.Background())
	go n.Run(ctx)
	e.enqueue(t, 3, 6)
	n.Committed()
	requireOrdered(t, e.consumer.WaitDistinct(18, 30*time.Second), 3, 6)
	cancel()
	stop()
	require.Equal(t, outbox.RoleStopped, r.Status().Role)
}

// TestRelayPipelinesWindows: with many windows' worth of events (the test
// relay's window is 64), published while the previous window's confirms
// are awaited, every event arrives, in per-user order, and every row is
// marked published exactly once.
func TestRelayPipelinesWindows(t *testing.T) {
	e := newEnv(t)
	for seq := 1; seq <= 60; seq++ {
		e.enqueue(t, 10, seq)
	}
	r, stop := e.startRelay(t, outboxtest.UniqueName("relay"))
	defer stop()
	requireOrdered(t, e.consumer.WaitDistinct(600, 60*time.Second), 10, 60)
	require.Eventually(t, func() bool { return pendingRows(t, e.pool) == 0 }, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, uint64(600), r.Status().Published, "each row confirmed and marked once")
}

// expandForTest builds a slim row's message from its source id alone.
func expandForTest(_ context.Context, _ outbox.Querier, refs []outbox.SourceRef) ([]outbox.Expanded, error) {
	out := make([]outbox.Expanded, len(refs))
	for i, r := range refs {
		out[i] = outbox.Expanded{
			Headers: map[string]any{"ledger-user-id": int64(1), "ledger-seq": int64(100 + i)},
			Body:    fmt.Appendf(nil, `{"source":%q,"event":%q}`, r.SourceID, r.EventID),
		}
	}
	return out, nil
}

// TestSlimRows: a message enqueued with a SourceID stores no body, and the
// relay publishes what its ExpandFunc builds from the source, with the
// event id the outbox row holds.
func TestSlimRows(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	src, ev := uuid.New(), uuid.New()
	b := &pgx.Batch{}
	require.NoError(t, outbox.QueueEnqueue(b, []outbox.Message{{EventID: ev, RoutingKey: "ledger.entry.deposit", SourceID: src, CreatedAt: time.Now()}}))
	require.NoError(t, e.pool.SendBatch(ctx, b).Close())
	var stored *string
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT body::text FROM outbox WHERE event_id = $1`, ev).Scan(&stored))
	require.Nil(t, stored, "a slim row stores no body")
	_, stop := e.startRelay(t, outboxtest.UniqueName("relay"))
	defer stop()
	ds := e.consumer.WaitDistinct(1, 30*time.Second)
	require.Len(t, ds, 1)
	require.JSONEq(t, fmt.Sprintf(`{"source":%q,"event":%q}`, src, ev), string(ds[0].Body))
	require.Equal(t, ev.String(), ds[0].MessageID)
	require.Equal(t, int64(100), ds[0].Headers["ledger-seq"])
}

// TestEventLog: the sequencer moves committed outbox rows into the event
// log, in per-user order, and the relay's offset follows the broker's
// confirms; the log is append-only.
func TestEventLog(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for seq := 1; seq <= 3; seq++ {
		e.enqueue(t, 2, seq)
	}
	_, stop := e.startRelay(t, outboxtest.UniqueName("relay"))
	defer stop()
	requireOrdered(t, e.consumer.WaitDistinct(6, 30*time.Second), 2, 3)
	require.Eventually(t, func() bool { return pendingRows(t, e.pool) == 0 }, 10*time.Second, 50*time.Millisecond)
	var outboxRows, logRows, offset int64
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM event_log),
    (SELECT position FROM relay_partitions WHERE partition = 0)`).Scan(&outboxRows, &logRows, &offset))
	require.Zero(t, outboxRows, "sequenced rows leave the outbox")
	require.Equal(t, int64(6), logRows, "and stay in the log")
	require.Equal(t, int64(6), offset, "the relay's offset is past every confirmed event")
	rows, err := e.pool.Query(ctx, `SELECT position, (headers->>'ledger-user-id')::bigint, (headers->>'ledger-seq')::bigint FROM event_log ORDER BY position`)
	require.NoError(t, err)
	last, prev := map[int64]int64{}, int64(0)
	for rows.Next() {
		var pos, user, seq int64
		require.NoError(t, rows.Scan(&pos, &user, &seq))
		require.Equal(t, prev+1, pos, "positions are consecutive")
		require.Equal(t, last[user]+1, seq, "user %d's events in seq order", user)
		last[user], prev = seq, pos
	}
	require.NoError(t, rows.Err())
	_, err = e.pool.Exec(ctx, `UPDATE event_log SET routing_key = 'x' WHERE position = 1`)
	require.ErrorContains(t, err, "append-only")
	_, err = e.pool.Exec(ctx, `DELETE FROM event_log WHERE position = 1`)
	require.ErrorContains(t, err, "append-only")
}

// TestTwoRelays: of two relays on one database only one publishes; when it
// dies the other takes over; no event is lost and none is out of order.
func TestTwoRelays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, stopA := e.startRelay(t, outboxtest.UniqueName("relay-a"))
	b, stopB := e.startRelay(t, outboxtest.UniqueName("relay-b"))
	require.Eventually(t, func() bool {
		return a.IsLeader() != b.IsLeader() // exactly one
	}, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		sa, sb := a.Status(), b.Status()
		return sa.Role == outbox.RoleStandby || sb.Role == outbox.RoleStandby
	}, 10*time.Second, 20*time.Millisecond)
	leader, stopLeader, standby := a, stopA, b
	if b.IsLeader() {
		leader, stopLeader, standby = b, stopB, a
	}

	const users, seqs = 5, 40
	for seq := 1; seq <= seqs; seq++ {
		e.enqueue(t, users, seq)
		if seq == seqs/2 {
			e.consumer.WaitDistinct(users*seq, 30*time.Second)
			require.Eventually(t, func() bool { return leader.Status().Published == uint64(users*seq) },
				10*time.Second, 10*time.Millisecond, "the leader published everything so far")
			require.Zero(t, standby.Status().Published, "the standby published nothing")
			stopLeader() // the leader's session ends; its lock goes with it
			require.Equal(t, outbox.RoleStopped, leader.Status().Role)
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.Eventually(t, standby.IsLeader, 10*time.Second, 20*time.Millisecond, "the standby takes over")
	requireOrdered(t, e.consumer.WaitDistinct(users*seqs, 60*time.Second), users, seqs)
	require.Zero(t, standby.Status().Returned)
	require.Eventually(t, func() bool { return pendingRows(t, e.pool) == 0 }, 10*time.Second, 50*time.Millisecond)
}

// TestBrokerOutage cuts the relay's broker connection several times while
// rows are committed: every event still arrives, in per-user order.
func TestBrokerOutage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	name := outboxtest.UniqueName("relay-outage")
	r, _ := e.startRelay(t, name)
	require.Eventually(t, func() bool { return r.Status().BrokerConnected }, 10*time.Second, 20*time.Millisecond)

	const users, seqs = 4, 60
	cuts := 0
	for seq := 1; seq <= seqs; seq++ {
		e.enqueue(t, users, seq)
		if seq%20 == 10 {
			cuts += outboxtest.CloseConnections(t, name)
		}
	}
	require.Positive(t, cuts, "the relay's connection was cut")
	ds := e.consumer.WaitDistinct(users*seqs, 90*time.Second)
	requireOrdered(t, ds, users, seqs)
	require.Eventually(t, func() bool { return pendingRows(t, e.pool) == 0 }, 20*time.Second, 50*time.Millisecond)
	_, dups := outboxtest.Dedup(ds)
	t.Logf("%d deliveries, %d duplicates after %d connection cuts", len(ds), dups, cuts)
}

// TestRelayStatusWithoutBroker: with the broker unreachable the relay leads,
// reports itself disconnected, and the backlog grows; nothing is marked.
func TestRelayStatusWithoutBroker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := outbox.NewRelay(outbox.RelayConfig{
		DatabaseURL: e.url, AMQPURL: "amqp://guest:guest@127.0.0.1:1/", Exchange: e.exchange,
		PollInterval: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: testLogger(),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	e.enqueue(t, 2, 1)
	require.Eventually(t, func() bool {
		st := r.Status()
		return st.Role == outbox.RoleLeader && !st.BrokerConnected && st.Pending == 2
	}, 10*time.Second, 20*time.Millisecond)
	st, err := outbox.ReadClusterStatus(context.Background(), e.pool)
	require.NoError(t, err)
	require.True(t, st.LeaderPresent)
	require.Equal(t, int64(2), st.Pending)
	cancel()
	require.NoError(t, <-done)
	require.Eventually(t, func() bool {
		st, err := outbox.ReadClusterStatus(context.Background(), e.pool)
		return err == nil && !st.LeaderPresent
	}, 10*time.Second, 20*time.Millisecond, "the lock goes with the relay's session")
}

// TestRelayQueueAndReturns: the relay declares its durable queue bound with
// "#", so events are kept before any consumer exists; with no queue bound,
// events come back as mandatory returns, which are counted.
func TestRelayQueueAndReturns(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	e := &env{url: url, pool: pool}

	for _, c := range []struct {
		name  string
		queue string
	}{{"kept", outboxtest.UniqueName("test.ledger.events.all")}, {"returned", ""}} {
		e.exchange = outboxtest.UniqueName("test.ledger.events." + c.name)
		r := outbox.NewRelay(outbox.RelayConfig{
			DatabaseURL: url, AMQPURL: outboxtest.URL(), Exchange: e.exchange, Queue: c.queue,
			PollInterval: 100 * time.Millisecond, Logger: testLogger(),
		})
		seq := outbox.NewSequencer(outbox.SequencerConfig{DatabaseURL: url, PollInterval: 100 * time.Millisecond, Logger: testLogger()})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 2)
		go func() { done <- r.Run(ctx) }()
		go func() { done <- seq.Run(ctx) }()
		e.enqueue(t, 3, 1)
		require.Eventually(t, func() bool { return pendingRows(t, pool) == 0 }, 20*time.Second, 20*time.Millisecond, c.name)
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, <-done)

		conn, err := amqp.Dial(outboxtest.URL())
		require.NoError(t, err)
		ch, err := conn.Channel()
		require.NoError(t, err)
		if c.queue != "" {
			q, err := ch.QueueDeclarePassive(c.queue, true, false, false, false, nil)
			require.NoError(t, err, "the relay declared the queue")
			require.Equal(t, 3, q.Messages, "the events wait in the queue")
			require.Zero(t, r.Status().Returned)
			_, _ = ch.QueueDelete(c.queue, false, false, false)
		} else {
			require.Equal(t, uint64(3), r.Status().Returned, "unroutable events are counted")
		}
		_ = ch.ExchangeDelete(e.exchange, false, false)
		_ = conn.Close()
	}
}

// partitioned sets the relay's partition count.
func partitioned(n int) func(*outbox.RelayConfig) {
	return func(c *outbox.RelayConfig) { c.Partitions = n }
}

// leadingCounts returns how many partitions each relay leads, and how many
// in all.
func leadingCounts(rs ...*outbox.Relay) ([]int, int) {
	counts, total := make([]int, len(rs)), 0
	for i, r := range rs {
		counts[i] = len(r.Status().Leading)
		total += counts[i]
	}
	return counts, total
}

// TestRelayPartitions: with 4 partitions and 3 relays, leadership spreads
// (2, 1, 1); events of every user arrive complete and in per-user order
// while the relay that leads two stops, and its partitions move to the
// others; each partition keeps its own offset.
func TestRelayPartitions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var (
		relays []*outbox.Relay
		stops  []func()
	)
	for _, n := range []string{"a", "b", "c"} {
		r, stop := e.startRelay(t, outboxtest.UniqueName("relay-"+n), partitioned(4))
		relays, stops = append(relays, r), append(stops, stop)
	}
	require.Eventually(t, func() bool {
		counts, total := leadingCounts(relays...)
		return total == 4 && slices.Min(counts) == 1 && slices.Max(counts) == 2
	}, 20*time.Second, 20*time.Millisecond, "leadership spreads over the three relays")
	counts, _ := leadingCounts(relays...)
	t.Logf("partitions led: %v", counts)

	const users, seqs = 12, 40
	for seq := 1; seq <= seqs; seq++ {
		e.enqueue(t, users, seq)
		if seq == seqs/2 {
			e.consumer.WaitDistinct(users*seq, 30*time.Second)
			i := slices.Index(counts, 2)
			stops[i]()
			relays = slices.Delete(relays, i, i+1)
		}
		time.Sleep(2 * time.Millisecond)
	}
	require.Eventually(t, func() bool {
		counts, total := leadingCounts(relays...)
		return total == 4 && slices.Min(counts) == 2
	}, 20*time.Second, 20*time.Millisecond, "the two left lead two partitions each")
	requireOrdered(t, e.consumer.WaitDistinct(users*seqs, 60*time.Second), users, seqs)
	require.Eventually(t, func() bool { return pendingRows(t, e.pool) == 0 }, 10*time.Second, 50*time.Millisecond)

	rows, err := e.pool.Query(context.Background(), `SELECT partitions, position FROM relay_partitions ORDER BY partition`)
	require.NoError(t, err)
	type offset struct{ Partitions, Position int64 }
	offsets, err := pgx.CollectRows(rows, pgx.RowToStructByPos[offset])
	require.NoError(t, err)
	require.Len(t, offsets, 4)
	for _, o := range offsets {
		require.Equal(t, int64(4), o.Partitions)
		require.Positive(t, o.Position)
	}
	st, err := outbox.ReadClusterStatus(context.Background(), e.pool)
	require.NoError(t, err)
	require.Equal(t, 4, st.Partitions)
	require.Equal(t, 4, st.Led)
	require.True(t, st.LeaderPresent)
}

// TestRelayRepartition: offsets recorded for one partition move to four
// only once no relay of the old count leads; from the smallest offset, so
// nothing is skipped.
func TestRelayRepartition(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	old, stopOld := e.startRelay(t, outboxtest.UniqueName("relay-one"))
	require.Eventually(t, old.IsLeader, 10*time.Second, 20*time.Millisecond)
	e.enqueue(t, 6, 1)
	e.consumer.WaitDistinct(6, 30*time.Second)

	four, _ := e.startRelay(t, outboxtest.UniqueName("relay-four"), partitioned(4))
	e.enqueue(t, 6, 2)
	e.consumer.WaitDistinct(12, 30*time.Second)
	time.Sleep(500 * time.Millisecond) // several lock retries of the new relay
	require.Empty(t, four.Status().Leading, "a relay of another count does not lead while the old one does")
	var partitions int
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT partitions FROM relay_partitions LIMIT 1`).Scan(&partitions))
	require.Equal(t, 1, partitions)

	stopOld()
	require.Eventually(t, func() bool { return len(four.Status().Leading) == 4 }, 20*time.Second, 20*time.Millisecond)
	e.enqueue(t, 6, 3)
	requireOrdered(t, e.consumer.WaitDistinct(18, 30*time.Second), 6, 3)
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM relay_partitions WHERE partitions = 4`).Scan(&partitions))
	require.Equal(t, 4, partitions)
}

// TestRelayQuorumQueue: RELAY_QUEUE_TYPE=quorum declares the relay's queue
// as a quorum queue that keeps the events; a queue that exists with
// another type is not silently reused: the relay reports why it cannot
// declare it and publishes nothing.
func TestRelayQuorumQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	queue := outboxtest.UniqueName("test.ledger.events.quorum")
	r, stop := e.startRelay(t, outboxtest.UniqueName("relay-quorum"), func(c *outbox.RelayConfig) {
		c.Queue, c.QueueType = queue, outbox.QueueQuorum
	})
	e.enqueue(t, 3, 1)
	require.Eventually(t, func() bool { return pendingRows(t, e.pool) == 0 }, 20*time.Second, 20*time.Millisecond)
	stop()
	require.Zero(t, r.Status().Returned)

	conn, err := amqp.Dial(outboxtest.URL())
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, 3, q.Messages, "the quorum queue keeps the events")
	// A declaration as classic of a quorum queue is refused by the broker:
	// the queue's type is the one it was made with.
	_, err = ch.QueueDeclare(queue, true, false, false, false, nil)
	require.Error(t, err)
	ch, err = conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDelete(queue, false, false, false)
	require.NoError(t, err)

	// The other way round: a classic queue, and a relay told quorum.
	classic := outboxtest.UniqueName("test.ledger.events.classic")
	_, err = ch.QueueDeclare(classic, true, false, false, false, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = ch.QueueDelete(classic, false, false, false) })
	var logs syncBuffer
	r, _ = e.startRelay(t, outboxtest.UniqueName("relay-mismatch"), func(c *outbox.RelayConfig) {
		c.Queue, c.QueueType = classic, outbox.QueueQuorum
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	e.enqueue(t, 1, 2)
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "it exists with other arguments")
	}, 20*time.Second, 20*time.Millisecond, "the relay says why")
	require.False(t, r.Status().BrokerConnected)
	require.Positive(t, pendingRows(t, e.pool), "nothing is published")
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRelayPartitionSkipsOthers: a partition whose users are quiet while
// another's write thousands of events publishes its own event behind them,
// and its offset moves past the others' events. Its fetches look a bounded
// range ahead and must go on at once while the log does: with no poll in
// the test's time, a partition that waited for a wake-up after a range
// without its events would never reach its own.
func TestRelayPartitionSkipsOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	// 2,000 events of user 2 (partition 0 of 2), then one of user 1.
	for seq := 1; seq <= 2000; seq += 100 {
		b := &pgx.Batch{}
		msgs := make([]outbox.Message, 100)
		for i := range msgs {
			msgs[i] = outbox.Message{EventID: uuid.New(), RoutingKey: "ledger.entry.deposit",
				Headers: map[string]any{"ledger-user-id": 2, "ledger-seq": seq + i}, Body: []byte(`{}`), CreatedAt: time.Now(), UserID: 2}
		}
		require.NoError(t, outbox.QueueEnqueue(b, msgs))
		require.NoError(t, e.pool.SendBatch(ctx, b).Close())
	}
	b := &pgx.Batch{}
	require.NoError(t, outbox.QueueEnqueue(b, []outbox.Message{{EventID: uuid.New(), RoutingKey: "ledger.entry.deposit",
		Headers: map[string]any{"ledger-user-id": 1, "ledger-seq": 1}, Body: []byte(`{}`), CreatedAt: time.Now(), UserID: 1}}))
	require.NoError(t, e.pool.SendBatch(ctx, b).Close())

	_, _ = e.startRelay(t, outboxtest.UniqueName("relay-skip"), partitioned(2), func(c *outbox.RelayConfig) {
		c.PollInterval = time.Hour // one wake-up: the sequencer's, once
	})
	ds := e.consumer.WaitDistinct(2001, 60*time.Second)
	last := map[int64]int64{}
	for _, d := range ds {
		u, s := d.Headers["ledger-user-id"].(int64), d.Headers["ledger-seq"].(int64)
		require.Greater(t, s, last[u], "user %d in seq order", u)
		last[u] = s
	}
	require.Equal(t, int64(1), last[1], "partition 1 published its one event")
	require.Eventually(t, func() bool {
		var lagging int
		err := e.pool.QueryRow(ctx, `SELECT count(*) FROM relay_partitions WHERE position < (SELECT max(position) FROM event_log)`).Scan(&lagging)
		return err == nil && lagging == 0
	}, 10*time.Second, 20*time.Millisecond, "both offsets reach the log's end")
}
