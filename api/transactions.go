package api

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// DefaultPageSize is the page size of a list without a limit.
const DefaultPageSize = 50

func handleGetTransaction(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := parseUUID("entryId", "transaction id", chi.URLParam(r, "entryId"))
		if err != nil {
			writeError(w, r, err)
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
		id, err := pathUserID(r)
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
			c := encodeCursor(f.Order, page.Entries[len(page.Entries)-1].Seq)
			p.NextCursor = &c
		}
		entries := page.Entries
		if entries == nil {
			entries = []ledger.Entry{}
		}
		writeJSON(w, http.StatusOK, envelope{Success: true, Data: entries, Pagination: p})
	}
}

// entryFilterParams are the query parameters of GET
// /users/{id}/transactions. Any other is a 400: a misspelt filter
// silently ignored would answer another question than the one asked.
var entryFilterParams = []string{"limit", "order", "cursor", "afterSeq", "from", "to",
	"type", "reference", "transactionId", "minAmount", "maxAmount"}

// parseEntryFilter reads the query's syntax; the ledger checks the rules
// (the limit's range, amount bounds in order, afterSeq only oldest first…).
func parseEntryFilter(r *http.Request) (ledger.EntryFilter, error) {
	f := ledger.EntryFilter{Limit: DefaultPageSize, Order: ledger.Descending}
	q, err := queryParams(r, entryFilterParams)
	if err != nil {
		return f, err
	}
	if err := parsePaging(q, &f); err != nil {
		return f, err
	}
	return f, parseFilters(q, &f)
}

// parsePaging reads limit, order, cursor and afterSeq into f.
func parsePaging(q url.Values, f *ledger.EntryFilter) error {
	var err error
	if f.Limit, err = parseLimit(q, DefaultPageSize, ledger.MaxPageSize); err != nil {
		return err
	}
	if s, ok := q["order"]; ok {
		switch o := ledger.Order(s[0]); o {
		case ledger.Ascending, ledger.Descending:
			f.Order = o
		default:
			return badParam("order", "order must be %s or %s", ledger.Ascending, ledger.Descending)
		}
	}
	if s, ok := q["cursor"]; ok {
		order, seq, ok := decodeCursor(s[0])
		if !ok {
			return badParam("cursor", "cursor is not valid; pass the nextCursor of the previous page")
		}
		if order != f.Order {
			return badParam("cursor", "cursor belongs to a listing with order=%s; pass the same order with it", order)
		}
		f.CursorSeq = seq
	}
	if s, ok := q["afterSeq"]; ok {
		n, err := parseSeq(s[0])
		if err != nil {
			return badParam("afterSeq", "afterSeq must be a non-negative integer")
		}
		f.AfterSeq = &n // the ledger checks its sign and order
	}
	return nil
}

// parseFilters reads from, to, type, reference, transactionId, minAmount
// and maxAmount into f.
func parseFilters(q url.Values, f *ledger.EntryFilter) error {
	var err error
	if f.From, err = parseInstant(q, "from"); err != nil {
		return err
	}
	if f.To, err = parseInstant(q, "to"); err != nil {
		return err
	}
	f.Type = ledger.EntryType(q.Get("type")) // the ledger checks it
	if s, ok := q["reference"]; ok {
		if s[0] == "" {
			return badParam("reference", "reference must not be empty")
		}
		f.Reference = s[0] // the ledger checks it
	}
	if s, ok := q["transactionId"]; ok {
		id, err := parseUUID("transactionId", "transactionId", s[0])
		if err != nil {
			return err
		}
		f.TransactionID = uuid.NullUUID{UUID: id, Valid: true}
	}
	if f.MinAmount, err = parseAmountParam(q, "minAmount"); err != nil {
		return err
	}
	f.MaxAmount, err = parseAmountParam(q, "maxAmount")
	return err
}

// decimalSeq matches a decimal integer, signed or not, without a plus.
var decimalSeq = regexp.MustCompile(`^-?[0-9]{1,19}$`)

// parseSeq reads a seq written in decimal; its sign is the ledger's rule.
func parseSeq(s string) (int64, error) {
	if !decimalSeq.MatchString(s) {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(s, 10, 64)
}

// parseAmountParam reads the query parameter name as a signed amount
// written as a decimal ("-2.50", "100", zero allowed); nil when absent.
func parseAmountParam(q url.Values, name string) (*money.Cents, error) {
	s, ok := q[name]
	if !ok {
		return nil, nil
	}
	c, err := money.Parse(s[0])
	switch {
	case errors.Is(err, money.ErrSyntax):
		return nil, badParam(name, "%s must be a decimal number with at most 2 fraction digits, such as -2.50", name)
	case err != nil:
		return nil, badParam(name, "%s", money.Describe(name, err))
	}
	return &c, nil
}

// A cursor is the order and the seq of the last entry of the previous
// page, encoded so that clients treat it as opaque. "s1:" is the newest
// first cursor of old (kept valid), "a1:" the oldest first one.
var cursorPrefixes = map[ledger.Order]string{ledger.Descending: "s1:", ledger.Ascending: "a1:"}

func encodeCursor(order ledger.Order, seq int64) string {
	if order == "" {
		order = ledger.Descending
	}
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefixes[order] + strconv.FormatInt(seq, 10)))
}

func decodeCursor(s string) (ledger.Order, int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", 0, false
	}
	for order, prefix := range cursorPrefixes {
		rest, ok := strings.CutPrefix(string(b), prefix)
		if !ok {
			continue
		}
		seq, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || seq < 1 {
			return "", 0, false
		}
		return order, seq, true
	}
	return "", 0, false
}
