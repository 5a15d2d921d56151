// Command consumer is a small, runnable consumer of ledgerd's events (see
// docs/events.md): its own durable queue bound to the ledger's exchange,
// manual acks, reconnection with backoff, and per user the seq rule: seq ==
// last+1 is applied, seq <= last is a duplicate, seq > last+1 a gap (not
// applied); every message is acked once handled. "Applied" means logged here;
// the last seq per user is kept in memory or in the -state file, where a real
// service keeps it in its database, in the transaction of the event's effect.
//
//	go run ./examples/consumer -amqp-url amqp://guest:guest@localhost:5672/ -queue my-service.ledger
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// event is the CloudEvents 1.0 envelope (structured mode) of one entry.
type event struct {
	ID   string `json:"id"`   // unique per event; also the AMQP message_id
	Type string `json:"type"` // ledger.entry.<type>, also the routing key
	Data entry  `json:"data"` // also: specversion, source, subject, time, datacontenttype
}

// entry is the event's data: one ledger entry, exactly as the HTTP API shows it.
type entry struct {
	ID             string      `json:"id"`
	UserID         int64       `json:"userId"`
	Seq            int64       `json:"seq"` // 1, 2, 3… per user, no gap
	Type           string      `json:"type"`
	Amount         json.Number `json:"amount"`        // exact decimal: never a float64
	BalanceAfter   json.Number `json:"balanceAfter"`  // exact decimal
	TransactionID  *string     `json:"transactionId"` // the request that wrote it (null on entries before v2)
	TransferID     *string     `json:"transferId"`    // null unless a transfer
	Description    *string     `json:"description"`
	Reference      *string     `json:"reference"`
	IdempotencyKey *string     `json:"idempotencyKey"`
	CreatedAt      string      `json:"createdAt"`
	Hash           string      `json:"hash"`
	PrevHash       string      `json:"prevHash"`
}

type consumer struct {
	url, exchange, queue, statePath string
	bindings                        []string
	gaps                            bool            // whether seq > last+1 is a gap (every type is bound)
	last                            map[int64]int64 // user id → last applied seq
	log                             *slog.Logger
}

func main() {
	c := consumer{log: slog.New(slog.NewTextHandler(os.Stderr, nil)), last: map[int64]int64{}}
	flag.StringVar(&c.url, "amqp-url", cmp.Or(os.Getenv("AMQP_URL"), "amqp://guest:guest@localhost:5672/"), "RabbitMQ URL (AMQP_URL)")
	flag.StringVar(&c.exchange, "exchange", cmp.Or(os.Getenv("AMQP_EXCHANGE"), "ledger.events"), "ledgerd's topic exchange (AMQP_EXCHANGE)")
	flag.StringVar(&c.queue, "queue", cmp.Or(os.Getenv("CONSUMER_QUEUE"), "ledger-consumer.example"), "this consumer's own durable queue (CONSUMER_QUEUE)")
	binding := flag.String("binding", cmp.Or(os.Getenv("CONSUMER_BINDING"), "ledger.entry.#"), "comma-separated binding keys, e.g. ledger.entry.withdrawal (CONSUMER_BINDING)")
	flag.StringVar(&c.statePath, "state", "", "JSON file keeping the last applied seq per user (default: memory only)")
	flag.Parse()
	c.bindings = strings.Split(*binding, ",")
	c.gaps = *binding == "ledger.entry.#" || *binding == "#"
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	const minWait, maxWait = 500 * time.Millisecond, 30 * time.Second
	for wait := minWait; ; wait = min(2*wait, maxWait) {
		err := c.run(ctx, func() { wait = minWait })
		if ctx.Err() != nil {
			break
		}
		c.log.Warn("connection lost; reconnecting", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	c.log.Info("stopped")
}

// run connects, declares the topology and consumes until ctx ends (nil) or the
// connection is lost (an error). Unacked messages then go back to the queue.
func (c *consumer) run(ctx context.Context, connected func()) error {
	conn, err := amqp.DialConfig(c.url, amqp.Config{Heartbeat: 10 * time.Second, Properties: amqp.Table{"connection_name": c.queue}})
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	// As the relay declares it, so the consumer may start before ledgerd.
	if err := ch.ExchangeDeclare(c.exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return err
	}
	// Single active consumer: replicas may run; one at a time consumes, in order.
	sac := amqp.Table{"x-single-active-consumer": true}
	if _, err := ch.QueueDeclare(c.queue, true, false, false, false, sac); err != nil {
		return err
	}
	for _, key := range c.bindings {
		if err := ch.QueueBind(c.queue, strings.TrimSpace(key), c.exchange, false, nil); err != nil {
			return err
		}
	}
	if err := ch.Qos(64, 0, false); err != nil { // prefetch: at most 64 unacked messages
		return err
	}
	msgs, err := ch.Consume(c.queue, "", false, false, false, false, nil) // autoAck false: manual acks
	if err != nil {
		return err
	}
	connected()
	c.log.Info("consuming", "exchange", c.exchange, "queue", c.queue, "bindings", c.bindings)
	fresh := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-msgs:
			if !ok {
				return errors.New("channel or connection closed")
			}
			if fresh { // a replica active before this one may have moved the state on
				if err := c.load(); err != nil {
					return fmt.Errorf("load state: %w", err) // d goes back to the queue
				}
				fresh = false
			}
			if err := c.process(d); err != nil {
				return err
			}
		}
	}
}

// process handles one delivery by the per-user seq rule, then acks it. An error
// means it was requeued: the caller reconnects (with backoff) and retries.
func (c *consumer) process(d amqp.Delivery) error {
	var ev event
	dec := json.NewDecoder(bytes.NewReader(d.Body))
	dec.UseNumber() // numbers stay exact text, even when decoded into any
	if err := dec.Decode(&ev); err != nil || ev.ID == "" || ev.Data.UserID <= 0 || ev.Data.Seq <= 0 {
		c.log.Error("malformed event rejected", "message_id", d.MessageId, "err", err)
		return d.Reject(false) // dead-lettered if the queue has a dead-letter exchange, else dropped
	}
	e := ev.Data
	last := c.last[e.UserID]
	switch {
	case e.Seq <= last:
		c.log.Info("duplicate ignored", "event", ev.ID, "user", e.UserID, "seq", e.Seq, "last", last)
	case e.Seq > last+1 && c.gaps:
		c.log.Warn("gap: not applied, waiting for the missing entries", "event", ev.ID, "user", e.UserID, "seq", e.Seq, "last", last)
	default:
		// The effect of the event goes here; this example only logs it.
		c.log.Info("applied", "event", ev.ID, "user", e.UserID, "seq", e.Seq, "type", e.Type,
			"amount", e.Amount, "balance_after", e.BalanceAfter, "entry", e.ID)
		c.last[e.UserID] = e.Seq
		if err := c.save(); err != nil {
			c.last[e.UserID] = last
			_ = d.Nack(false, true)
			return fmt.Errorf("save state: %w", err)
		}
	}
	return d.Ack(false)
}

// load reads the -state file, when there is one.
func (c *consumer) load() error {
	if b, err := os.ReadFile(c.statePath); err == nil {
		return json.Unmarshal(b, &c.last)
	} else if c.statePath != "" && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// save writes the last seqs to the -state file atomically (write, rename).
func (c *consumer) save() error {
	if c.statePath == "" {
		return nil
	}
	b, _ := json.Marshal(c.last) // a map[int64]int64 always encodes
	if err := os.WriteFile(c.statePath+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(c.statePath+".tmp", c.statePath)
}
