package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Event is a CloudEvents 1.0 document of the event feed: the same event,
// byte for byte, that the broker got. Type is "ledger.entry.<type>" (Data
// is an Entry) or "ledger.hold.<change>" (Data is the Hold after the
// change); Subject is "users/<id>".
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	// Raw is the whole document as the server sent it.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes an event and keeps its bytes in Raw.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event // without this method
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*e = Event(p)
	e.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// IsHold reports whether the event is a hold's change (its Data a Hold).
func (e Event) IsHold() bool { return strings.HasPrefix(e.Type, "ledger.hold.") }

// errNotEntry and errNotHold are returned by Entry and Hold for the other
// kind of event.
var (
	errNotEntry = errors.New("ledgerd client: the event is not an entry's")
	errNotHold  = errors.New("ledgerd client: the event is not a hold's")
)

// Entry decodes Data of an entry event (ledger.entry.*).
func (e Event) Entry() (Entry, error) {
	var en Entry
	if !strings.HasPrefix(e.Type, "ledger.entry.") {
		return en, errNotEntry
	}
	err := json.Unmarshal(e.Data, &en)
	return en, err
}

// Hold decodes Data of a hold event (ledger.hold.*).
func (e Event) Hold() (Hold, error) {
	var h Hold
	if !e.IsHold() {
		return h, errNotHold
	}
	err := json.Unmarshal(e.Data, &h)
	return h, err
}

// EventFilter selects a page of the event feed (GET /api/events).
type EventFilter struct {
	// After is the NextCursor of a previous page; "" starts from the
	// first event the ledger ever made.
	After string
	// Limit is the page size, 1 to 1000; 0: 100.
	Limit int
	// Wait, up to 30 s, holds a read that finds no event until one
	// arrives or Wait passes. Keep the http.Client's Timeout above it.
	Wait time.Duration
	// Type keeps the events whose type starts with it ("ledger.entry.",
	// "ledger.hold.captured").
	Type string
}

func (f EventFilter) query() url.Values {
	q := url.Values{}
	setString(q, "after", f.After)
	setInt(q, "limit", int64(f.Limit))
	if f.Wait > 0 {
		q.Set("wait", f.Wait.String())
	}
	setString(q, "type", f.Type)
	return q
}

// ReadEvents returns one page of the event feed (GET /api/events): every
// committed event exactly once, each user's in seq order, even while writes
// commit. Its NextCursor, always set, continues after the page; keep it to
// resume. A cursor the ledger did not make is ErrValidation (Param
// "after").
func (cl *Client) ReadEvents(ctx context.Context, f EventFilter, opts ...CallOption) (Page[Event], error) {
	var (
		data []Event
		info pageInfo
	)
	err := cl.do(ctx, call{method: http.MethodGet, path: "/events", query: f.query(), out: &data, page: &info, opts: opts})
	return page(data, info), err
}

// EventPages iterates over the pages of the event feed from f.After until
// a page says there is no more (HasMore false): the feed's end at the time
// of reading. Save each page's NextCursor after applying its events, and
// pass it as After to resume.
func (cl *Client) EventPages(ctx context.Context, f EventFilter, opts ...CallOption) iter.Seq2[Page[Event], error] {
	return pages(ctx, f.After, func(ctx context.Context, cursor string) (Page[Event], error) {
		f.After = cursor
		return cl.ReadEvents(ctx, f, opts...)
	}, byNextCursor)
}

// UserEventFilter selects one user's entry events.
type UserEventFilter struct {
	// AfterSeq keeps the events of the entries after this seq; 0: from
	// the first.
	AfterSeq int64
	// Limit is the page size, 1 to 1000; 0: 100.
	Limit int
}

// ReadUserEvents returns one page of a user's entry events, in seq order
// (GET /api/users/{id}/events). The page has no NextCursor: continue with
// AfterSeq set to the seq of its last event's entry, as UserEventPages
// does.
func (cl *Client) ReadUserEvents(ctx context.Context, userID int64, f UserEventFilter, opts ...CallOption) (Page[Event], error) {
	q := url.Values{}
	setInt(q, "afterSeq", f.AfterSeq)
	setInt(q, "limit", int64(f.Limit))
	var (
		data []Event
		info pageInfo
	)
	err := cl.do(ctx, call{method: http.MethodGet, path: userPath(userID, "/events"), query: q, out: &data, page: &info, opts: opts})
	return page(data, info), err
}

// UserEventPages iterates over the pages of a user's entry events after
// f.AfterSeq, to the last.
func (cl *Client) UserEventPages(ctx context.Context, userID int64, f UserEventFilter, opts ...CallOption) iter.Seq2[Page[Event], error] {
	start := strconv.FormatInt(f.AfterSeq, 10)
	return pages(ctx, start, func(ctx context.Context, cursor string) (Page[Event], error) {
		f.AfterSeq, _ = strconv.ParseInt(cursor, 10, 64) // cursors are made below
		return cl.ReadUserEvents(ctx, userID, f, opts...)
	}, func(p Page[Event]) (string, error) {
		if len(p.Data) == 0 {
			return "", nil
		}
		e, err := p.Data[len(p.Data)-1].Entry()
		if err != nil {
			return "", fmt.Errorf("ledgerd client: the last event of user %d's page: %w", userID, err)
		}
		return strconv.FormatInt(e.Seq, 10), nil
	})
}
