package ledger

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ledgerd/ledgerd/outbox"
)

// EventSource is the CloudEvents source of every ledger event.
const EventSource = "ledgerd"

// RoutingKey returns the routing key, and CloudEvents type, of an entry of
// type t: "ledger.entry.<type>".
func RoutingKey(t EntryType) string { return "ledger.entry." + string(t) }

// Event is the CloudEvents 1.0 structured-mode envelope of one entry.
type Event struct {
	SpecVersion     string    `json:"specversion"`
	ID              uuid.UUID `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject"`
	Time            string    `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            Entry     `json:"data"`
}

// newEvent wraps e in its CloudEvents envelope, ready for the outbox.
func newEvent(e Entry) (outbox.Message, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return outbox.Message{}, fmt.Errorf("new event id: %w", err)
	}
	ev := Event{
		SpecVersion:     "1.0",
		ID:              id,
		Source:          EventSource,
		Type:            RoutingKey(e.Type),
		Subject:         "users/" + strconv.FormatInt(e.UserID, 10),
		Time:            e.CreatedAt.UTC().Format(time.RFC3339Nano),
		DataContentType: "application/json",
		Data:            e,
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return outbox.Message{}, fmt.Errorf("encode event: %w", err)
	}
	return outbox.Message{
		EventID:    id,
		RoutingKey: ev.Type,
		Headers:    map[string]any{"ledger-user-id": e.UserID, "ledger-seq": e.Seq},
		Body:       body,
		CreatedAt:  e.CreatedAt,
	}, nil
}
