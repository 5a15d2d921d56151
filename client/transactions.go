package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ledgerd/ledgerd/money"
)

// Order is the order of a list of entries, by seq.
type Order string

// The orders of a list of entries.
const (
	// NewestFirst is the default order.
	NewestFirst Order = "desc"
	// OldestFirst lists the oldest entry first.
	OldestFirst Order = "asc"
)

// TransactionFilter selects one user's entries (GET
// /api/users/{id}/transactions). Every field that is set applies; the zero
// filter lists every entry, newest first, 50 a page.
type TransactionFilter struct {
	// Limit is the page size, 1 to 1000; 0: the server's default, 50.
	Limit int
	// Order is NewestFirst (also when empty) or OldestFirst.
	Order Order
	// Cursor is the NextCursor of the previous page, from a listing in
	// the same Order; "" for the first page.
	Cursor string
	// From (inclusive) and To (exclusive) bound the entries' creation
	// time; the zero time leaves that side open.
	From, To time.Time
	// Type keeps the entries of one type.
	Type EntryType
	// Reference keeps the entries with exactly this reference.
	Reference string
	// TransactionID keeps the entries one request wrote.
	TransactionID string
	// MinAmount and MaxAmount bound the signed amount, inclusive; nil
	// leaves that side open. new(money.Cents(-50_00)) makes one.
	MinAmount, MaxAmount *money.Cents
	// AfterSeq, with OldestFirst, keeps the entries after this seq: a copy
	// that holds entries 1..AfterSeq syncs from there. 0: from the first.
	AfterSeq int64
}

func (f TransactionFilter) query() url.Values {
	q := url.Values{}
	setInt(q, "limit", int64(f.Limit))
	setString(q, "order", string(f.Order))
	setString(q, "cursor", f.Cursor)
	setTime(q, "from", f.From)
	setTime(q, "to", f.To)
	setString(q, "type", string(f.Type))
	setString(q, "reference", f.Reference)
	setString(q, "transactionId", f.TransactionID)
	if f.MinAmount != nil {
		q.Set("minAmount", money.Format(*f.MinAmount))
	}
	if f.MaxAmount != nil {
		q.Set("maxAmount", money.Format(*f.MaxAmount))
	}
	setInt(q, "afterSeq", f.AfterSeq)
	return q
}

// ListTransactions returns one page of a user's entries that match f
// (GET /api/users/{id}/transactions). It returns ErrNotFound for an
// unknown user and ErrValidation (with the parameter in Error.Param) for
// a filter the server refuses, such as a cursor of the other order.
func (cl *Client) ListTransactions(ctx context.Context, userID int64, f TransactionFilter, opts ...CallOption) (Page[Entry], error) {
	var (
		data []Entry
		info pageInfo
	)
	err := cl.do(ctx, call{method: http.MethodGet, path: userPath(userID, "/transactions"), query: f.query(),
		out: &data, page: &info, opts: opts})
	return page(data, info), err
}

// TransactionPages iterates over the pages of a user's entries that match
// f, from f.Cursor to the last page. Wrap it in All to range over the
// entries themselves.
func (cl *Client) TransactionPages(ctx context.Context, userID int64, f TransactionFilter, opts ...CallOption) iter.Seq2[Page[Entry], error] {
	return pages(ctx, f.Cursor, func(ctx context.Context, cursor string) (Page[Entry], error) {
		f.Cursor = cursor
		return cl.ListTransactions(ctx, userID, f, opts...)
	}, byNextCursor)
}

// GetTransaction returns one entry by its id (GET
// /api/transactions/{entryId}). It returns ErrNotFound for an unknown
// entry and ErrValidation for an id that is not a UUID.
func (cl *Client) GetTransaction(ctx context.Context, entryID string, opts ...CallOption) (Entry, error) {
	if entryID == "" {
		return Entry{}, errEmptyID
	}
	var out Entry
	err := cl.do(ctx, call{method: http.MethodGet, path: "/transactions/" + segment(entryID), out: &out, opts: opts})
	return out, err
}

func setString(q url.Values, name, v string) {
	if v != "" {
		q.Set(name, v)
	}
}

func setInt(q url.Values, name string, v int64) {
	if v != 0 {
		q.Set(name, strconv.FormatInt(v, 10))
	}
}
