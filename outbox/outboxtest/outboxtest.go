// Package outboxtest is the test side of the event relay: a real RabbitMQ
// consumer that survives connection loss, unique exchange names, and a way
// to cut a relay's broker connection with rabbitmqctl.
//
// The broker is found through TEST_AMQP_URL (default
// amqp://guest:guest@localhost:5672/). A test that needs it fails, loudly,
// when it is absent: it never skips.
package outboxtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultURL is used when TEST_AMQP_URL is not set.
const DefaultURL = "amqp://guest:guest@localhost:5672/" //nolint:gosec // RabbitMQ's well-known local default

// URL returns the broker URL for tests.
func URL() string {
	if u := os.Getenv("TEST_AMQP_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// UniqueName returns a name no other test uses, such as an exchange name.
func UniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "." + hex.EncodeToString(b)
}

// Delivery is one received message.
type Delivery struct {
	MessageID   string
	RoutingKey  string
	ContentType string
	Persistent  bool
	Timestamp   time.Time
	Headers     amqp.Table
	Body        []byte
}

// Consumer collects every message published to an exchange, through a
// durable queue of its own (bound with "#" before the test publishes), and
// reconnects when its connection is lost, so no message is lost to it.
type Consumer struct {
	tb       testing.TB
	queue    string
	exchange string

	mu         sync.Mutex
	deliveries []Delivery
	cond       chan struct{} // closed and replaced on each delivery
}

// NewConsumer declares the exchange (as the relay does) and a queue bound
// to it, and consumes until the test ends; the queue and the exchange are
// deleted then.
func NewConsumer(tb testing.TB, exchange string) *Consumer {
	tb.Helper()
	c := &Consumer{tb: tb, queue: UniqueName("test.consumer"), exchange: exchange, cond: make(chan struct{})}
	conn, err := amqp.Dial(URL())
	if err != nil {
		tb.Fatalf("outboxtest: connect to RabbitMQ at %s (is it running?): %v", redact(URL()), err)
	}
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatalf("outboxtest: open channel: %v", err)
	}
	if err := ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		tb.Fatalf("outboxtest: declare exchange: %v", err)
	}
	if _, err := ch.QueueDeclare(c.queue, true, false, false, false, nil); err != nil {
		tb.Fatalf("outboxtest: declare queue: %v", err)
	}
	if err := ch.QueueBind(c.queue, "#", exchange, false, nil); err != nil {
		tb.Fatalf("outboxtest: bind queue: %v", err)
	}
	_ = conn.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		defer close(done)
		c.consume(ctx, ready)
	}()
	select {
	case <-ready: // consuming: whatever the test does next is seen
	case <-time.After(30 * time.Second):
		tb.Fatalf("outboxtest: consumer did not start")
	}
	tb.Cleanup(func() {
		cancel()
		<-done
		conn, err := amqp.Dial(URL())
		if err != nil {
			tb.Errorf("outboxtest: connect to clean up: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return
		}
		_, _ = ch.QueueDelete(c.queue, false, false, false)
		_ = ch.ExchangeDelete(exchange, false, false)
	})
	return c
}

// consume reads the queue until ctx ends, reconnecting after a loss. A
// message is acknowledged after it is recorded, so a loss redelivers it
// (a duplicate), never drops it.
func (c *Consumer) consume(ctx context.Context, ready chan<- struct{}) {
	var once sync.Once
	for ctx.Err() == nil {
		conn, err := amqp.Dial(URL())
		if err != nil {
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		ch, err := conn.Channel()
		if err != nil {
			_ = conn.Close()
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		_ = ch.Qos(500, 0, false)
		msgs, err := ch.Consume(c.queue, "", false, false, false, false, nil)
		if err != nil {
			_ = conn.Close()
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		once.Do(func() { close(ready) })
	read:
		for {
			select {
			case <-ctx.Done():
				break read
			case m, ok := <-msgs:
				if !ok {
					break read // connection or channel lost
				}
				c.record(m)
				_ = m.Ack(false)
			}
		}
		_ = conn.Close()
	}
}

func (c *Consumer) record(m amqp.Delivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deliveries = append(c.deliveries, Delivery{
		MessageID: m.MessageId, RoutingKey: m.RoutingKey, ContentType: m.ContentType,
		Persistent: m.DeliveryMode == amqp.Persistent, Timestamp: m.Timestamp, Headers: m.Headers, Body: m.Body,
	})
	close(c.cond)
	c.cond = make(chan struct{})
}

// Deliveries returns every message received so far, duplicates included,
// in arrival order.
func (c *Consumer) Deliveries() []Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Delivery(nil), c.deliveries...)
}

// WaitDistinct waits until n distinct message ids have arrived, failing the
// test after timeout, and returns the deliveries.
func (c *Consumer) WaitDistinct(n int, timeout time.Duration) []Delivery {
	c.tb.Helper()
	ds := c.WaitDistinctOrTimeout(n, timeout)
	if unique, _ := Dedup(ds); len(unique) < n {
		c.tb.Fatalf("outboxtest: %d distinct messages after %s, want %d", len(unique), timeout, n)
	}
	return ds
}

// WaitDistinctOrTimeout waits until n distinct message ids have arrived or
// timeout passes, and returns the deliveries either way; the caller judges.
func (c *Consumer) WaitDistinctOrTimeout(n int, timeout time.Duration) []Delivery {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		seen := map[string]bool{}
		for _, d := range c.deliveries {
			seen[d.MessageID] = true
		}
		got, cond := len(seen), c.cond
		c.mu.Unlock()
		if got >= n {
			return c.Deliveries()
		}
		select {
		case <-cond:
		case <-deadline:
			return c.Deliveries()
		}
	}
}

// Dedup keeps the first delivery of each message id, in arrival order, and
// returns them with the number of duplicates dropped.
func Dedup(ds []Delivery) ([]Delivery, int) {
	seen := map[string]bool{}
	out := make([]Delivery, 0, len(ds))
	for _, d := range ds {
		if !seen[d.MessageID] {
			seen[d.MessageID] = true
			out = append(out, d)
		}
	}
	return out, len(ds) - len(out)
}

// EventData decodes a CloudEvents body and returns its data member.
func EventData(tb testing.TB, body []byte) json.RawMessage {
	tb.Helper()
	var ev struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		tb.Fatalf("outboxtest: body is not JSON: %v", err)
	}
	return ev.Data
}

// connectionLine matches a `rabbitmqctl list_connections pid client_properties` line.
var connectionLine = regexp.MustCompile(`^(<[^>]+>)\s`)

// CloseConnections closes, with rabbitmqctl, every broker connection whose
// client properties mention name (the relay's connection_name), as a broker
// outage would, and returns how many it closed.
func CloseConnections(tb testing.TB, name string) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", "-q", "list_connections", "pid", "client_properties").CombinedOutput()
	if err != nil {
		tb.Fatalf("outboxtest: rabbitmqctl list_connections: %v: %s", err, out)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.Contains(line, name) {
			continue
		}
		m := connectionLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		//nolint:gosec // the pid comes from rabbitmqctl's own listing
		if out, err := exec.CommandContext(ctx, "rabbitmqctl", "-q", "close_connection", m[1], "test: simulated broker outage").CombinedOutput(); err != nil {
			tb.Logf("outboxtest: close_connection %s: %v: %s", m[1], err, out)
			continue
		}
		n++
	}
	return n
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func redact(raw string) string {
	if i := strings.Index(raw, "@"); i > 0 {
		if j := strings.Index(raw, "://"); j > 0 && j < i {
			return raw[:j+3] + "***" + raw[i:]
		}
	}
	return raw
}
