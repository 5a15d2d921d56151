package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/ledgerd/ledgerd/ledger"
)

// DefaultPageSize is the page size of a list without a limit.
const DefaultPageSize = 50

func handleGetTransaction(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw := chi.URLParam(r, "entryId")
		id, err := uuid.Parse(raw)
		if err != nil || len(raw) != 36 {
			writeError(w, r, badRequest("transaction id must be a UUID such as 0192f0c4-5d1e-7c3a-9b7e-1f2a3b4c5d6e"))
			return
		}
		e, err := l.FindEntryByID(r.Context(), id)
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeData(w, http.StatusOK, e, "")
	}
}

func handleListTransactions(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := parseID("user id", chi.URLParam(r, "id"))
		if err != nil {
			writeError(w, r, err)
			return
		}
		f, err := parseEntryFilter(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		f.UserID = id
		page, err := l.FindEntries(r.Context(), f)
		if err != nil {
			writeError(w, r, err)
			return
		}
		p := &pagination{HasMore: page.HasMore}
		if page.HasMore {
			c := encodeCursor(page.Entries[len(page.Entries)-1].Seq)
			p.NextCursor = &c
		}
		entries := page.Entries
		if entries == nil {
			entries = []ledger.Entry{}
		}
		writeJSON(w, http.StatusOK, envelope{Success: true, Data: entries, Pagination: p})
	}
}

func parseEntryFilter(r *http.Request) (ledger.EntryFilter, error) {
	f := ledger.EntryFilter{Limit: DefaultPageSize}
	q, err := queryParams(r)
	if err != nil {
		return f, err
	}
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > ledger.MaxPageSize {
			return f, badRequest("limit must be an integer between 1 and %d", ledger.MaxPageSize)
		}
		f.Limit = n
	}
	if _, ok := q["cursor"]; ok {
		seq, ok := decodeCursor(q.Get("cursor"))
		if !ok {
			return f, badRequest("cursor is not valid; pass the nextCursor of the previous page")
		}
		f.BeforeSeq = seq
	}
	if f.From, err = parseInstant(q, "from"); err != nil {
		return f, err
	}
	if f.To, err = parseInstant(q, "to"); err != nil {
		return f, err
	}
	f.Type = ledger.EntryType(q.Get("type")) // the ledger checks it
	return f, nil
}

// A cursor is the seq of the last entry of the previous page, encoded so
// that clients treat it as opaque.
const cursorPrefix = "s1:"

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(seq, 10)))
}

func decodeCursor(s string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return 0, false
	}
	seq, err := strconv.ParseInt(strings.TrimPrefix(string(b), cursorPrefix), 10, 64)
	if err != nil || seq < 1 {
		return 0, false
	}
	return seq, true
}
