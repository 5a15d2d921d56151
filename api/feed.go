package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
)

// feedParams are the query parameters of GET /events.
var feedParams = []string{"after", "limit", "wait", "type"}

// userFeedParams are the query parameters of GET /users/{id}/events.
var userFeedParams = []string{"afterSeq", "limit"}

// parseWait reads wait: whole seconds (10) or a duration (10s, 500ms),
// 0 to 30 seconds.
func parseWait(q map[string][]string) (time.Duration, error) {
	s, ok := q["wait"]
	if !ok {
		return 0, nil
	}
	bad := badParam("wait", "wait must be 0 to 30 seconds, in seconds (10) or as a duration (10s, 500ms)")
	if n, err := strconv.Atoi(s[0]); err == nil {
		if n < 0 || n > 30 {
			return 0, bad
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s[0])
	if err != nil || d < 0 || d > ledger.MaxFeedWait || !strings.HasSuffix(s[0], "s") {
		return 0, bad
	}
	return d, nil
}

func handleReadFeed(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := parseFeedFilter(r, l)
		if err != nil {
			writeError(w, r, err)
			return
		}
		page, err := l.ReadFeed(r.Context(), f)
		if err != nil {
			writeError(w, r, err)
			return
		}
		next, err := l.EncodeFeedCursor(r.Context(), page.Last)
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeEvents(w, page.Events, &pagination{NextCursor: &next, HasMore: page.HasMore})
	}
}

func parseFeedFilter(r *http.Request, l *ledger.Ledger) (ledger.FeedFilter, error) {
	f := ledger.FeedFilter{}
	q, err := queryParams(r, feedParams)
	if err != nil {
		return f, err
	}
	if f.Limit, err = parseLimit(q, ledger.DefaultFeedPage, ledger.MaxFeedPage); err != nil {
		return f, err
	}
	if f.Wait, err = parseWait(q); err != nil {
		return f, err
	}
	if s, ok := q["type"]; ok {
		if s[0] == "" {
			return f, badParam("type", "type must not be empty")
		}
		f.TypePrefix = s[0] // the ledger checks it
	}
	if s, ok := q["after"]; ok {
		if f.After, err = l.DecodeFeedCursor(r.Context(), s[0]); err != nil {
			return f, err
		}
	}
	return f, nil
}

func handleReadUserEvents(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathUserID(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		q, err := queryParams(r, userFeedParams)
		var limit int
		if err == nil {
			limit, err = parseLimit(q, ledger.DefaultFeedPage, ledger.MaxFeedPage)
		}
		var after int64
		if s, ok := q["afterSeq"]; ok && err == nil {
			if after, err = parseSeq(s[0]); err != nil || after < 0 {
				err = badParam("afterSeq", "afterSeq must be a non-negative integer")
			}
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		page, err := l.ReadUserEvents(r.Context(), id, after, limit)
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeEvents(w, page.Events, &pagination{HasMore: page.HasMore})
	}
}

// writeEvents answers a page of events: each CloudEvents document as it is,
// byte for byte.
func writeEvents(w http.ResponseWriter, events []json.RawMessage, p *pagination) {
	if events == nil {
		events = []json.RawMessage{}
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Data: events, Pagination: p})
}
