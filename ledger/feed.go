package ledger

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/outbox"
	"github.com/ledgerd/ledgerd/projection"
)

// The event feed: every event the ledger published or will publish, from
// the event log that the relay publishes (package outbox), in the log's
// order. Positions become visible in increasing order only (one sequencer
// commits them one run after the other), so a reader that pages by
// position never misses an event that commits later.

// Limits of a feed request.
const (
	MaxFeedPage     = 1000
	DefaultFeedPage = 100
	MaxFeedWait     = 30 * time.Second
)

// FeedFilter selects a page of the event feed.
type FeedFilter struct {
	// After is the position of the last event of the previous page; 0
	// starts from the beginning.
	After int64
	// Limit is the page size, 1..MaxFeedPage.
	Limit int
	// Wait, when positive (at most MaxFeedWait), holds the read until an
	// event arrives or Wait passes, when none is there at first.
	Wait time.Duration
	// TypePrefix keeps only the events whose type starts with it.
	TypePrefix string
}

// FeedPage is one page of the feed.
type FeedPage struct {
	// Events are the CloudEvents JSON documents, byte for byte the
	// messages the relay publishes.
	Events []json.RawMessage
	// Last is the position to continue after: the last event's, or After
	// when the page is empty.
	Last int64
	// HasMore reports whether more events are there already.
	HasMore bool
}

// typePrefixPattern is the shape of a type prefix: event types are
// dot-separated lowercase words.
var typePrefixPattern = regexp.MustCompile(`^[a-z][a-z_]*(\.[a-z_]*)*$`)

func (f FeedFilter) validate() error {
	switch {
	case f.Limit < 1 || f.Limit > MaxFeedPage:
		return invalid("limit", "limit must be between 1 and %d", MaxFeedPage)
	case f.Wait < 0 || f.Wait > MaxFeedWait:
		return invalid("wait", "wait must be between 0 and %s", MaxFeedWait)
	case f.After < 0:
		return invalid("after", "after is not a valid cursor")
	case f.TypePrefix != "" && (len(f.TypePrefix) > 100 || !typePrefixPattern.MatchString(f.TypePrefix)):
		return invalid("type", "type must be an event type or its prefix, such as ledger.entry. or ledger.hold.captured")
	}
	return nil
}

// ReadFeed returns a page of the event feed after f.After. With f.Wait, an
// empty page waits for the log to grow (woken by Options.FeedChangedFunc,
// or by polling every 50ms without one). It returns a *ValidationError or
// ErrUnavailable.
func (l *Ledger) ReadFeed(ctx context.Context, f FeedFilter) (FeedPage, error) {
	if err := f.validate(); err != nil {
		return FeedPage{}, err
	}
	deadline := time.Now().Add(f.Wait)
	for {
		var changed <-chan struct{}
		if l.opts.FeedChangedFunc != nil {
			changed = l.opts.FeedChangedFunc() // before the read: no wake-up is lost
		}
		page, err := l.readFeed(ctx, f)
		if err != nil || len(page.Events) > 0 || f.Wait <= 0 {
			return page, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return page, nil
		}
		if changed == nil || l.replica != nil {
			// With a read replica, the primary's wake-up may come before
			// the replica has replayed the change: poll as well.
			left = min(left, 50*time.Millisecond)
		}
		t := time.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return page, nil
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

func (l *Ledger) readFeed(ctx context.Context, f FeedFilter) (FeedPage, error) {
	page := FeedPage{Last: f.After}
	err := l.withReadConn(ctx, l.opts.TxTimeout, func(ctx context.Context, conn *pgxpool.Conn) error {
		page = FeedPage{Last: f.After}
		rows, err := outbox.ReadLog(ctx, conn, f.After, f.Limit+1, f.TypePrefix)
		if err != nil {
			return err
		}
		if len(rows) > f.Limit {
			page.HasMore, rows = true, rows[:f.Limit]
		}
		if err := outbox.Expand(ctx, conn, ExpandEvents, rows); err != nil {
			return err
		}
		page.Events = make([]json.RawMessage, len(rows))
		for i, r := range rows {
			page.Events[i] = r.Body
			page.Last = r.ID
		}
		return nil
	})
	if err != nil {
		return FeedPage{}, fmt.Errorf("read the event feed: %w", err)
	}
	return page, nil
}

// userEvents reads a user's entries after a seq, each with the id of its
// event: the entry's own, or the one the event log keeps for events
// published before ids were the entries' (migration 000010).
var userEvents = `SELECT ` + entryColumnsOf("e") + `, coalesce(l.event_id, e.id)
FROM entries e LEFT JOIN event_log l ON l.source_id = e.id AND l.event_id IS NOT NULL
WHERE e.user_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3`

// UserEventPage is a page of one user's entry events.
type UserEventPage struct {
	Events  []json.RawMessage
	HasMore bool
	// LastSeq is the seq of the last event's entry, or the AfterSeq asked
	// for when the page is empty.
	LastSeq int64
}

// ReadUserEvents returns the events of the user's entries with a seq above
// afterSeq, in seq order: the same CloudEvents documents as the feed and
// the broker. It returns a *ValidationError, ErrNotFound or
// ErrUnavailable.
func (l *Ledger) ReadUserEvents(ctx context.Context, userID, afterSeq int64, limit int) (UserEventPage, error) {
	switch {
	case limit < 1 || limit > MaxFeedPage:
		return UserEventPage{}, invalid("limit", "limit must be between 1 and %d", MaxFeedPage)
	case afterSeq < 0:
		return UserEventPage{}, invalid("afterSeq", "afterSeq must be a non-negative integer")
	}
	page := UserEventPage{LastSeq: afterSeq}
	err := l.withReadConn(ctx, l.opts.TxTimeout, func(ctx context.Context, conn *pgxpool.Conn) error {
		page = UserEventPage{LastSeq: afterSeq}
		rows, err := conn.Query(ctx, userEvents, userID, afterSeq, limit+1)
		if err != nil {
			return err
		}
		type evented struct {
			e  Entry
			id uuid.UUID
		}
		got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (evented, error) {
			var r entryRow
			var id uuid.UUID
			if err := row.Scan(append(r.dest(), &id)...); err != nil {
				return evented{}, err
			}
			e, _ := r.entry()
			return evented{e, id}, nil
		})
		if err != nil {
			return err
		}
		if len(got) == 0 {
			exists, err := projection.UserExists(ctx, conn, userID)
			if err != nil {
				return err
			}
			if !exists {
				return ErrNotFound
			}
		}
		if len(got) > limit {
			page.HasMore, got = true, got[:limit]
		}
		for _, g := range got {
			b, err := json.Marshal(NewEvent(g.id, g.e))
			if err != nil {
				return fmt.Errorf("encode event %s: %w", g.id, err)
			}
			page.Events = append(page.Events, b)
			page.LastSeq = g.e.Seq
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return UserEventPage{}, fmt.Errorf("read events of user %d: %w", userID, err)
	}
	return page, err
}

// Feed cursors are signed, so that a forged cursor, or one of another
// ledgerd database (each has its own key, made by migration 000010), is
// refused rather than served.

const feedCursorPrefix = "f1:"

// ErrBadCursor means a feed cursor was not made by this ledger.
var ErrBadCursor = errors.New("not a cursor of this ledger's feed")

// feedKey returns the database's cursor key, read once.
func (l *Ledger) feedKey(ctx context.Context) ([]byte, error) {
	l.feedKeyMu.Lock()
	defer l.feedKeyMu.Unlock()
	if l.feedKeyVal != nil {
		return l.feedKeyVal, nil
	}
	var key []byte
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		return conn.QueryRow(ctx, `SELECT key FROM feed_cursor_key`).Scan(&key)
	})
	if err != nil {
		return nil, fmt.Errorf("read the feed's cursor key: %w", err)
	}
	l.feedKeyVal = key
	return key, nil
}

func cursorMAC(key []byte, position string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(feedCursorPrefix + position))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// EncodeFeedCursor returns the opaque cursor of a position of the feed.
func (l *Ledger) EncodeFeedCursor(ctx context.Context, position int64) (string, error) {
	key, err := l.feedKey(ctx)
	if err != nil {
		return "", err
	}
	p := strconv.FormatInt(position, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(feedCursorPrefix + p + "." + cursorMAC(key, p))), nil
}

// DecodeFeedCursor returns the position of a cursor made by
// EncodeFeedCursor, a *ValidationError (field "after") for any other
// text, or ErrUnavailable.
func (l *Ledger) DecodeFeedCursor(ctx context.Context, cursor string) (int64, error) {
	bad := invalid("after", "after is not a cursor of this ledger's feed; pass the nextCursor of a previous page, or nothing to start from the beginning")
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || !strings.HasPrefix(string(raw), feedCursorPrefix) {
		return 0, bad
	}
	p, mac, ok := strings.Cut(strings.TrimPrefix(string(raw), feedCursorPrefix), ".")
	if !ok {
		return 0, bad
	}
	key, err := l.feedKey(ctx)
	if err != nil {
		return 0, err
	}
	if !hmac.Equal([]byte(mac), []byte(cursorMAC(key, p))) {
		return 0, bad
	}
	pos, err := strconv.ParseInt(p, 10, 64)
	if err != nil || pos < 0 {
		return 0, bad
	}
	return pos, nil
}
