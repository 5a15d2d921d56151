package outbox

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Message is one event waiting to be published.
type Message struct {
	// EventID identifies the event (the CloudEvents id and the AMQP
	// message_id); consumers de-duplicate on it.
	EventID uuid.UUID
	// RoutingKey is the topic exchange routing key.
	RoutingKey string
	// Headers are AMQP application headers.
	Headers map[string]any
	// Body is the message body, a JSON document, stored byte for byte.
	Body []byte
	// SourceID, when not zero, names the row the message is built from
	// when it is published (RelayConfig.ExpandFunc): the outbox then stores
	// neither Headers nor Body.
	SourceID uuid.UUID
	// CreatedAt is the time of the change the message announces (the AMQP
	// timestamp).
	CreatedAt time.Time
	// UserID is the user the message is about (0 for none): it picks the
	// relay partition, user_id mod RELAY_PARTITIONS, so that a user's
	// messages keep their order.
	UserID int64
}

// outboxInsert inserts many messages in one statement, in slice order.
const outboxInsert = `INSERT INTO outbox (event_id, routing_key, headers, body, source_id, created_at, user_id)
SELECT m.event_id, m.routing_key, m.headers::jsonb, m.body::json, m.source_id, m.created_at, m.user_id
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::timestamptz[], $7::bigint[])
    WITH ORDINALITY AS m(event_id, routing_key, headers, body, source_id, created_at, user_id, ord)
ORDER BY m.ord`

// QueueEnqueue queues onto b the insert of msgs, in order. Send b inside the
// producer's transaction: the messages are then committed, or not, with the
// change they announce. The batch reports an error when an insert fails.
//
// It queues rather than runs so that the ledger writes its entries and their
// messages in one round trip.
func QueueEnqueue(b *pgx.Batch, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(msgs))
	keys := make([]string, len(msgs))
	headers := make([]string, len(msgs))
	bodies := make([]*string, len(msgs))
	sources := make([]*uuid.UUID, len(msgs))
	times := make([]time.Time, len(msgs))
	users := make([]int64, len(msgs))
	for i, m := range msgs {
		ids[i], keys[i], headers[i], times[i], users[i] = m.EventID, m.RoutingKey, "{}", m.CreatedAt, m.UserID
		if m.SourceID != uuid.Nil {
			sources[i] = &msgs[i].SourceID
			continue
		}
		if m.Headers != nil {
			h, err := json.Marshal(m.Headers)
			if err != nil {
				return fmt.Errorf("encode headers of event %s: %w", m.EventID, err)
			}
			headers[i] = string(h)
		}
		body := string(m.Body)
		bodies[i] = &body
	}
	b.Queue(outboxInsert, ids, keys, headers, bodies, sources, times, users)
	return nil
}
