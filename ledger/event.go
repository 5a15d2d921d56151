package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ledgerd/ledgerd/outbox"
)

// EventSource is the CloudEvents source of every ledger event.
const EventSource = "ledgerd"

// RoutingKey returns the routing key, and CloudEvents type, of an entry of
// type t: "ledger.entry.<type>".
func RoutingKey(t EntryType) string { return "ledger.entry." + string(t) }

// CloudEvent is the CloudEvents 1.0 structured-mode envelope of an event
// whose data is a T.
type CloudEvent[T any] struct {
	SpecVersion     string    `json:"specversion"`
	ID              uuid.UUID `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject"`
	Time            string    `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            T         `json:"data"`
}

// Event is the envelope of one entry.
type Event = CloudEvent[Entry]

// HoldEvent is the envelope of one change of a hold, whose data is the
// hold after the change.
type HoldEvent = CloudEvent[Hold]

// newCloudEvent is the envelope of data, of user userID, at t.
func newCloudEvent[T any](id uuid.UUID, typ string, userID int64, t time.Time, data T) CloudEvent[T] {
	return CloudEvent[T]{SpecVersion: "1.0", ID: id, Source: EventSource, Type: typ,
		Subject: "users/" + strconv.FormatInt(userID, 10), Time: t.UTC().Format(time.RFC3339Nano),
		DataContentType: "application/json", Data: data}
}

// newEvent returns the outbox message of entry e: a slim one, that names
// the entry instead of holding the body; the relay and the feed build the
// body with ExpandEvents. The event's id is the entry's: an event can be
// built again, the same, from the entry alone.
func newEvent(e Entry) outbox.Message {
	return outbox.Message{EventID: e.ID, RoutingKey: RoutingKey(e.Type), CreatedAt: e.CreatedAt, SourceID: e.ID, UserID: e.UserID}
}

// newHoldEvent returns the outbox message of a hold change: slim, like an
// entry's, built by ExpandEvents from the recorded change, whose id it
// takes.
func newHoldEvent(c holdChange) outbox.Message {
	return outbox.Message{EventID: c.id, RoutingKey: HoldRoutingKey(c.change), CreatedAt: c.hold.UpdatedAt, SourceID: c.id, UserID: c.hold.UserID}
}

// NewEvent returns entry e's CloudEvents envelope with the event id id.
func NewEvent(id uuid.UUID, e Entry) Event {
	return newCloudEvent(id, RoutingKey(e.Type), e.UserID, e.CreatedAt, e)
}

// eventHeaders are the AMQP headers of entry e's event.
func eventHeaders(e Entry) map[string]any {
	return map[string]any{"ledger-user-id": e.UserID, "ledger-seq": e.Seq}
}

const entriesByID = `SELECT ` + entryColumns + ` FROM entries WHERE id = ANY($1)`

// ExpandEvents builds the headers and bodies of the events of the entries
// that refs name (the relay's outbox.ExpandFunc): the CloudEvents JSON,
// the same bytes for the same event wherever it is built.
func ExpandEvents(ctx context.Context, q outbox.Querier, refs []outbox.SourceRef) ([]outbox.Expanded, error) {
	ids := make([]uuid.UUID, len(refs))
	for i, r := range refs {
		ids[i] = r.SourceID
	}
	rows, err := q.Query(ctx, entriesByID, ids)
	if err != nil {
		return nil, fmt.Errorf("read entries of events: %w", err)
	}
	entries, err := pgx.CollectRows(rows, scanEntry)
	if err != nil {
		return nil, fmt.Errorf("read entries of events: %w", err)
	}
	byID := make(map[uuid.UUID]Entry, len(entries))
	for _, e := range entries {
		byID[e.ID] = e
	}
	// Sources that are not entries are hold changes.
	var rest []uuid.UUID
	for _, r := range refs {
		if _, ok := byID[r.SourceID]; !ok {
			rest = append(rest, r.SourceID)
		}
	}
	var changes map[uuid.UUID]holdChange
	if len(rest) > 0 {
		if changes, err = readHoldChanges(ctx, q, rest); err != nil {
			return nil, err
		}
	}
	out := make([]outbox.Expanded, len(refs))
	for i, r := range refs {
		var (
			body    []byte
			headers map[string]any
			err     error
		)
		if e, ok := byID[r.SourceID]; ok {
			body, err = json.Marshal(NewEvent(r.EventID, e))
			headers = eventHeaders(e)
		} else if c, ok := changes[r.SourceID]; ok {
			body, err = json.Marshal(newCloudEvent(r.EventID, HoldRoutingKey(c.change), c.hold.UserID, c.hold.UpdatedAt, c.hold))
			headers = map[string]any{"ledger-user-id": c.hold.UserID, "ledger-hold-id": c.hold.ID.String()}
		} else {
			return nil, fmt.Errorf("event %s: source %s not found", r.EventID, r.SourceID)
		}
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", r.EventID, err)
		}
		out[i] = outbox.Expanded{Headers: headers, Body: body}
	}
	return out, nil
}
