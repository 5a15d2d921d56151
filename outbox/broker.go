package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ContentType is the content type of every event.
const ContentType = "application/cloudevents+json"

// confirmation is the broker's future answer to one publish.
type confirmation interface {
	WaitContext(ctx context.Context) (bool, error)
}

// publisher publishes one row and returns its future confirmation. The
// broker session implements it; tests use a fake.
type publisher interface {
	publish(ctx context.Context, row pendingRow) (confirmation, error)
}

// Errors of a publish window.
var (
	errNacked      = errors.New("broker refused the message (nack)")
	errUnconfirmed = errors.New("broker did not confirm in time")
)

// publishWindow publishes rows in order, then waits for their confirms in
// order. It returns how many rows from the start were confirmed: only those
// may be marked published. A publish error, a nack or a missing confirm
// ends the count there and is returned; the rows after it stay pending and
// are published again, in order, so per-user order holds for a consumer that
// de-duplicates.
func publishWindow(ctx context.Context, p publisher, rows []pendingRow) (int, error) {
	return publishRows(ctx, p, rows).await(ctx)
}

// flight is a window of rows published and waiting for their confirms.
type flight struct {
	rows   []pendingRow
	confs  []confirmation // of rows[:len(confs)]
	pubErr error          // why the rows after confs were not published
	// upTo is the position up to which the fetch of rows looked in their
	// partition: confirmed in full, the partition is confirmed up to it.
	upTo int64
}

// publishRows publishes rows in order without waiting for any confirm.
func publishRows(ctx context.Context, p publisher, rows []pendingRow) *flight {
	f := &flight{rows: rows, confs: make([]confirmation, 0, len(rows))}
	for _, row := range rows {
		c, err := p.publish(ctx, row)
		if err != nil {
			f.pubErr = fmt.Errorf("publish event %s: %w", row.EventID, err)
			break
		}
		f.confs = append(f.confs, c)
	}
	return f
}

// await waits for the flight's confirms in order and returns how many rows
// from the start were confirmed, with the error that ended the count.
func (f *flight) await(ctx context.Context) (int, error) {
	for i, c := range f.confs {
		ok, err := c.WaitContext(ctx)
		switch {
		case err != nil:
			return i, fmt.Errorf("event %s: %w: %w", f.rows[i].EventID, errUnconfirmed, err)
		case !ok:
			return i, fmt.Errorf("event %s: %w", f.rows[i].EventID, errNacked)
		}
	}
	return len(f.confs), f.pubErr
}

// session is one broker connection with a confirming channel.
type session struct {
	conn     *amqp.Connection
	ch       *amqp.Channel
	exchange string
	done     chan struct{} // closed when the channel or the connection closes
}

// dialSession connects, puts a channel in confirm mode and declares the
// topology: the durable topic exchange and, when queue is not empty, a
// durable queue bound to it with "#". Returned (unroutable) messages are
// passed to onReturn.
func dialSession(ctx context.Context, url, name, exchange, queue, queueType string, onReturn func(amqp.Return)) (*session, error) {
	deadline := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	conn, err := amqp.DialConfig(url, amqp.Config{
		Heartbeat:  10 * time.Second,
		Dial:       amqp.DefaultDial(min(deadline, 10*time.Second)),
		Properties: amqp.Table{"connection_name": name},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to broker: %w", redactAMQP(err))
	}
	s := &session{conn: conn, exchange: exchange}
	if err := s.setup(queue, queueType, onReturn); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return s, nil
}

// Queue types (RELAY_QUEUE_TYPE).
const (
	QueueClassic = "classic"
	QueueQuorum  = "quorum"
)

// queueArgs are the declare arguments of a queue of type t. A classic
// queue is declared without any, as before types were chosen, so that a
// queue declared by an earlier ledgerd is declared again unchanged.
func queueArgs(t string) amqp.Table {
	if t == QueueQuorum {
		return amqp.Table{"x-queue-type": QueueQuorum}
	}
	return nil
}

func (s *session) setup(queue, queueType string, onReturn func(amqp.Return)) error {
	ch, err := s.conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	s.ch = ch
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("confirm mode: %w", err)
	}
	if err := ch.ExchangeDeclare(s.exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", s.exchange, err)
	}
	if queue != "" {
		if _, err := ch.QueueDeclare(queue, true, false, false, false, queueArgs(queueType)); err != nil {
			var aerr *amqp.Error
			if errors.As(err, &aerr) && aerr.Code == amqp.PreconditionFailed {
				return fmt.Errorf("declare queue %s as %s: it exists with other arguments (a queue keeps its type: delete it, or set RELAY_QUEUE_TYPE to its type): %w", queue, queueTypeName(queueType), err)
			}
			return fmt.Errorf("declare queue %s: %w", queue, err)
		}
		if err := ch.QueueBind(queue, "#", s.exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s: %w", queue, err)
		}
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, 64))
	go func() {
		for r := range returns { // closed by the library when the channel closes
			onReturn(r)
		}
	}()
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	s.done = make(chan struct{})
	go func() {
		for range closed { // the library closes it after the one close event
		}
		close(s.done)
	}()
	return nil
}

func (s *session) publish(ctx context.Context, row pendingRow) (confirmation, error) {
	dc, err := s.ch.PublishWithDeferredConfirmWithContext(ctx, s.exchange, row.RoutingKey, true, false, amqp.Publishing{
		Headers:      amqp.Table(row.Headers),
		ContentType:  ContentType,
		DeliveryMode: amqp.Persistent,
		MessageId:    row.EventID,
		Timestamp:    row.CreatedAt,
		Type:         row.RoutingKey,
		AppId:        "ledgerd",
		Body:         row.Body,
	})
	if err != nil {
		return nil, err
	}
	return dc, nil
}

// close ends the session, waiting at most a few seconds.
func (s *session) close() {
	_ = s.conn.CloseDeadline(time.Now().Add(3 * time.Second))
}

// redactAMQP keeps credentials out of dial errors, which can quote the URL.
func redactAMQP(err error) error {
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) {
		return fmt.Errorf("%s (code %d)", amqpErr.Reason, amqpErr.Code)
	}
	return err
}

func queueTypeName(t string) string {
	if t == "" {
		return QueueClassic
	}
	return t
}
