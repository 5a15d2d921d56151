// Command consumer is a small, runnable consumer of ledgerd's events (see
// docs/events.md): its own durable queue bound to the ledger's exchange,
// manual acks, reconnection with backoff, and per user the seq rule: seq ==
// last+1 is applied, seq <= last is a duplicate, seq > last+1 a gap (not
// applied); a hold event, which has no seq, is a duplicate when its id was
// applied already. Every message is acked once handled. "Applied" means
// logged here; the state (last seq per user, applied hold events, feed
// cursor) is kept in memory or in the -state file, where a real service
// keeps it in its database, in the transaction of the event's effect.
//
// With -catch-up, it first reads what its queue missed (everything
// published before the queue was bound) from ledgerd's event feed, GET
// /api/events, through ledgerd's Go client (package client, which retries
// 429, 503 and dropped connections): it declares and binds its queue, so
// that nothing published from then on is lost, pages the feed to its end,
// applying each event by the same rules, then consumes the queue, where
// the events it already applied from the feed come again and are skipped
// as duplicates.
//
//	go run ./examples/consumer -amqp-url amqp://guest:guest@localhost:5672/ -queue my-service.ledger
//	go run ./examples/consumer -queue my-service.ledger -catch-up http://localhost:3000 -state /tmp/my-service.ledger.json
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
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ledgerd/ledgerd/client"
)

// event is the CloudEvents 1.0 envelope (structured mode) of one entry or
// hold change.
type event struct {
	ID   string `json:"id"`   // unique per event, the entry's (or hold change's) id; also the AMQP message_id
	Type string `json:"type"` // ledger.entry.<type> or ledger.hold.<change>, also the routing key
	Data entry  `json:"data"` // also: specversion, source, subject, time, datacontenttype
}

// entry is the event's data: one ledger entry, exactly as the HTTP API shows
// it. A hold event's data is the hold; of it, only id and userId are read.
type entry struct {
	ID             string      `json:"id"`
	UserID         int64       `json:"userId"`
	Seq            int64       `json:"seq"` // 1, 2, 3… per user, no gap
	Type           string      `json:"type"`
	Amount         json.Number `json:"amount"`        // exact decimal: never a float64
	BalanceAfter   json.Number `json:"balanceAfter"`  // exact decimal
	TransactionID  *string     `json:"transactionId"` // the request that wrote it (null on entries before v2)
	TransferID     *string     `json:"transferId"`    // null unless a transfer
	HoldID         *string     `json:"holdId"`        // the hold a withdrawal captures, else null
	ReversalOf     *string     `json:"reversalOf"`    // the entry a reversal undoes, else null
	Description    *string     `json:"description"`
	Reference      *string     `json:"reference"`
	IdempotencyKey *string     `json:"idempotencyKey"`
	CreatedAt      string      `json:"createdAt"`
	Hash           string      `json:"hash"`
	PrevHash       string      `json:"prevHash"`
}

// state is what the consumer has applied: the -state file.
type state struct {
	Last   map[int64]int64 `json:"last"`   // user id → last applied seq
	Holds  map[string]bool `json:"holds"`  // ids of the applied hold events
	Cursor string          `json:"cursor"` // the feed's nextCursor after the last page applied ("" = its beginning)
}

func newState() state { return state{Last: map[int64]int64{}, Holds: map[string]bool{}} }

type consumer struct {
	url, exchange, queue, statePath string
	bindings                        []string
	gaps                            bool           // whether seq > last+1 is a gap (every entry type is bound)
	feed                            *client.Client // -catch-up: ledgerd's API; nil without it
	caughtUp                        bool
	st                              state
	log                             *slog.Logger
}

func main() {
	c := consumer{log: slog.New(slog.NewTextHandler(os.Stderr, nil)), st: newState()}
	flag.StringVar(&c.url, "amqp-url", cmp.Or(os.Getenv("AMQP_URL"), "amqp://guest:guest@localhost:5672/"), "RabbitMQ URL (AMQP_URL)")
	flag.StringVar(&c.exchange, "exchange", cmp.Or(os.Getenv("AMQP_EXCHANGE"), "ledger.events"), "ledgerd's topic exchange (AMQP_EXCHANGE)")
	flag.StringVar(&c.queue, "queue", cmp.Or(os.Getenv("CONSUMER_QUEUE"), "ledger-consumer.example"), "this consumer's own durable queue (CONSUMER_QUEUE)")
	binding := flag.String("binding", cmp.Or(os.Getenv("CONSUMER_BINDING"), "ledger.entry.#"), "comma-separated binding keys, e.g. ledger.entry.withdrawal (CONSUMER_BINDING)")
	flag.StringVar(&c.statePath, "state", "", "JSON file keeping the state: last applied seq per user, applied hold events, feed cursor (default: memory only)")
	feedURL := flag.String("catch-up", "", "ledgerd's base URL, e.g. http://localhost:3000: first apply what the queue missed from its event feed, then consume the queue")
	token := flag.String("token", "", "bearer token for -catch-up, the auditor role is enough (default: LEDGER_API_TOKEN)")
	flag.Parse()
	if *feedURL != "" {
		var err error
		c.feed, err = client.New(*feedURL,
			client.WithToken(cmp.Or(*token, os.Getenv("LEDGER_API_TOKEN"))), // not a flag default: -h would print it
			client.WithUserAgent("ledgerd-example-consumer"),
			client.WithHTTPClient(&http.Client{Timeout: time.Minute}))
		if err != nil {
			fmt.Fprintln(os.Stderr, "-catch-up:", err)
			os.Exit(2)
		}
	}
	for key := range strings.SplitSeq(*binding, ",") {
		c.bindings = append(c.bindings, strings.TrimSpace(key))
	}
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

// run connects, declares the topology, catches up from the feed the first
// time with -catch-up, and consumes until ctx ends (nil) or the connection
// is lost (an error). Unacked messages then go back to the queue.
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
		if err := ch.QueueBind(c.queue, key, c.exchange, false, nil); err != nil {
			return err
		}
	}
	// The queue is bound: it keeps every event published from now on, so the
	// feed may be read to its end before the queue is.
	if c.feed != nil && !c.caughtUp {
		if err := c.load(); err != nil {
			return fmt.Errorf("load state: %w", err)
		}
		if err := c.catchUp(ctx); err != nil {
			return fmt.Errorf("catch up from the feed: %w", err)
		}
		c.caughtUp = true
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

// process handles one delivery by the rules above, then acks it. An error
// means it was requeued: the caller reconnects (with backoff), reloads the
// state and retries.
func (c *consumer) process(d amqp.Delivery) error {
	ev, err := decode(d.Body)
	if err != nil {
		c.log.Error("malformed event rejected", "message_id", d.MessageId, "err", err)
		return d.Reject(false) // dead-lettered if the queue has a dead-letter exchange, else dropped
	}
	if c.apply(ev, "queue") {
		if err := c.save(); err != nil {
			_ = d.Nack(false, true)
			return fmt.Errorf("save state: %w", err)
		}
	}
	return d.Ack(false)
}

// decode reads a CloudEvent, amounts as exact text; it refuses one that is
// not a ledger event.
func decode(body []byte) (event, error) {
	var ev event
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers stay exact text, even when decoded into any
	if err := dec.Decode(&ev); err != nil {
		return ev, err
	}
	if ev.ID == "" || ev.Data.UserID <= 0 || (ev.Data.Seq <= 0 && !isHold(ev)) {
		return ev, errors.New("not a ledger event: no id, userId or seq")
	}
	return ev, nil
}

func isHold(ev event) bool { return strings.HasPrefix(ev.Type, "ledger.hold.") }

// apply applies ev unless it is a duplicate or, for an entry, beyond a gap;
// from says where it came from ("queue" or "feed"). It reports whether the
// state changed.
func (c *consumer) apply(ev event, from string) bool {
	e := ev.Data
	if isHold(ev) { // no seq: a duplicate is an id applied already
		if c.st.Holds[ev.ID] {
			c.log.Info("duplicate ignored", "from", from, "event", ev.ID, "user", e.UserID, "type", ev.Type)
			return false
		}
		c.log.Info("applied", "from", from, "event", ev.ID, "user", e.UserID, "type", ev.Type, "hold", e.ID)
		c.st.Holds[ev.ID] = true
		return true
	}
	last := c.st.Last[e.UserID]
	switch {
	case e.Seq <= last:
		c.log.Info("duplicate ignored", "from", from, "event", ev.ID, "user", e.UserID, "seq", e.Seq, "last", last)
		return false
	case e.Seq > last+1 && c.gaps:
		c.log.Warn("gap: not applied, waiting for the missing entries", "from", from, "event", ev.ID, "user", e.UserID, "seq", e.Seq, "last", last)
		return false
	}
	// The effect of the event goes here; this example only logs it.
	c.log.Info("applied", "from", from, "event", ev.ID, "user", e.UserID, "seq", e.Seq, "type", e.Type,
		"amount", e.Amount, "balance_after", e.BalanceAfter)
	c.st.Last[e.UserID] = e.Seq
	return true
}

// catchUp pages the event feed from the saved cursor (its beginning the first
// time) to its end, applying the events the bindings match by the same
// rules as the queue's, and saving the state with the cursor after each
// page. Each event is decoded from its raw bytes, the body the broker got,
// by the queue's decode.
func (c *consumer) catchUp(ctx context.Context) error {
	typePrefix := feedTypePrefix(c.bindings)
	c.log.Info("catching up from the feed", "type", typePrefix, "resume", c.st.Cursor != "")
	read, applied := 0, 0
	f := client.EventFilter{After: c.st.Cursor, Limit: 1000, Type: typePrefix}
	for page, err := range c.feed.EventPages(ctx, f) {
		if err != nil { // a cursor of another ledger (validation_error), 401…, or retries spent
			return err
		}
		for _, e := range page.Data {
			read++
			ev, err := decode(e.Raw)
			switch {
			case err != nil: // the broker got the same bytes: its consumers reject it too
				c.log.Error("malformed event skipped", "err", err)
			case c.bound(ev.Type) && c.apply(ev, "feed"):
				applied++
			}
		}
		c.st.Cursor = page.NextCursor
		if err := c.save(); err != nil {
			return fmt.Errorf("save state: %w", err)
		}
	}
	c.log.Info("caught up", "read", read, "applied", applied)
	return nil
}

// bound reports whether the queue's bindings match the routing key (the
// event's type), so that the feed applies what the queue would get.
func (c *consumer) bound(key string) bool {
	for _, b := range c.bindings {
		if topicMatch(strings.Split(b, "."), strings.Split(key, ".")) {
			return true
		}
	}
	return false
}

// topicMatch is RabbitMQ's topic matching, word by word: * is one word, #
// zero or more.
func topicMatch(pattern, words []string) bool {
	switch {
	case len(pattern) == 0:
		return len(words) == 0
	case pattern[0] == "#":
		for i := range len(words) + 1 {
			if topicMatch(pattern[1:], words[i:]) {
				return true
			}
		}
		return false
	case len(words) == 0:
		return false
	}
	return (pattern[0] == "*" || pattern[0] == words[0]) && topicMatch(pattern[1:], words[1:])
}

// feedTypePrefix returns the feed's type filter for the bindings: the text
// every binding starts with before any wildcard ("ledger.entry." for
// ledger.entry.#), so that the feed sends no event the queue would not get;
// "" (every event) when there is none. bound still checks each event.
func feedTypePrefix(bindings []string) string {
	prefix := ""
	for i, b := range bindings {
		if j := strings.IndexFunc(b, func(r rune) bool { return (r < 'a' || r > 'z') && r != '.' && r != '_' }); j >= 0 {
			b = b[:j] // a wildcard, or a character no type has
		}
		if i == 0 {
			prefix = b
		}
		for !strings.HasPrefix(b, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	if prefix == "" || prefix[0] < 'a' || prefix[0] > 'z' {
		return ""
	}
	return prefix
}

// load reads the -state file, when there is one: the file is the truth, so a
// state not saved (a failed save) is forgotten and its events come again.
func (c *consumer) load() error {
	if c.statePath == "" {
		return nil
	}
	st := newState()
	b, err := os.ReadFile(c.statePath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields() // a file of another format is refused, not read as empty
		if err := dec.Decode(&st); err != nil {
			return err
		}
	}
	if st.Last == nil { // "last": null
		st.Last = map[int64]int64{}
	}
	if st.Holds == nil {
		st.Holds = map[string]bool{}
	}
	c.st = st
	return nil
}

// save writes the state to the -state file atomically (write, rename).
func (c *consumer) save() error {
	if c.statePath == "" {
		return nil
	}
	b, _ := json.Marshal(c.st) // maps of ints and strings always encode
	if err := os.WriteFile(c.statePath+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(c.statePath+".tmp", c.statePath)
}
