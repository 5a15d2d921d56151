package client_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/money"
)

// TestTransactions reads a user's history: every filter, one page at a
// time and across pages.
func TestTransactions(t *testing.T) {
	t.Parallel()
	_, c := start(t)
	ctx := t.Context()
	_, err := c.CreateUser(ctx, client.NewUser{ID: 7, Balance: 100_00})
	require.NoError(t, err)
	mid := time.Now()
	// Entries 2..11: deposits of 1..10, every third with reference "inv".
	for i := range 10 {
		ref := ""
		if i%3 == 0 {
			ref = "inv"
		}
		_, err := c.UpdateBalance(ctx, 7, client.BalanceChange{Amount: money.Cents(i+1) * 100, Reference: ref})
		require.NoError(t, err)
	}
	w, err := c.UpdateBalance(ctx, 7, client.BalanceChange{Amount: -50, Description: "fee"})
	require.NoError(t, err)

	// One page: newest first by default.
	p, err := c.ListTransactions(ctx, 7, client.TransactionFilter{Limit: 5})
	require.NoError(t, err)
	require.Equal(t, []int64{12, 11, 10, 9, 8}, seqs(p.Data))
	require.True(t, p.HasMore)
	require.NotEmpty(t, p.NextCursor)
	require.Equal(t, client.EntryWithdrawal, p.Data[0].Type)
	require.Equal(t, money.Cents(-50), p.Data[0].Amount)
	require.Equal(t, "fee", p.Data[0].Description)
	require.Equal(t, w.Entry.ID, p.Data[0].ID)

	// The next page, then every page: 12 entries in pages of 5.
	p2, err := c.ListTransactions(ctx, 7, client.TransactionFilter{Limit: 5, Cursor: p.NextCursor})
	require.NoError(t, err)
	require.Equal(t, []int64{7, 6, 5, 4, 3}, seqs(p2.Data))
	var sizes []int
	var all []client.Entry
	for page, err := range c.TransactionPages(ctx, 7, client.TransactionFilter{Limit: 5}) {
		require.NoError(t, err)
		sizes = append(sizes, len(page.Data))
		all = append(all, page.Data...)
	}
	require.Equal(t, []int{5, 5, 2}, sizes)
	require.Equal(t, []int64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, seqs(all))
	for i, e := range all[1:] {
		require.Equal(t, e.Hash, all[i].PrevHash, "the chain links entry %d to %d", e.Seq, all[i].Seq)
	}

	// All flattens, oldest first, stopping early when asked.
	var asc []int64
	for e, err := range client.All(c.TransactionPages(ctx, 7, client.TransactionFilter{Order: client.OldestFirst, Limit: 2})) {
		require.NoError(t, err)
		asc = append(asc, e.Seq)
		if len(asc) == 5 {
			break
		}
	}
	require.Equal(t, []int64{1, 2, 3, 4, 5}, asc)

	// Filters.
	for name, tc := range map[string]struct {
		f    client.TransactionFilter
		want []int64
	}{
		"type":       {client.TransactionFilter{Type: client.EntryOpening}, []int64{1}},
		"reference":  {client.TransactionFilter{Reference: "inv", Order: client.OldestFirst}, []int64{2, 5, 8, 11}},
		"afterSeq":   {client.TransactionFilter{AfterSeq: 9, Order: client.OldestFirst}, []int64{10, 11, 12}},
		"min amount": {client.TransactionFilter{MinAmount: new(money.Cents(8_00)), Order: client.OldestFirst}, []int64{1, 9, 10, 11}},
		"max amount": {client.TransactionFilter{MaxAmount: new(money.Cents(0))}, []int64{12}},
		"amounts":    {client.TransactionFilter{MinAmount: new(money.Cents(2_00)), MaxAmount: new(money.Cents(3_00))}, []int64{4, 3}},
		"from":       {client.TransactionFilter{From: mid, Type: client.EntryWithdrawal}, []int64{12}},
		"to":         {client.TransactionFilter{To: mid}, []int64{1}},
		"tx id":      {client.TransactionFilter{TransactionID: all[0].TransactionID}, []int64{12}},
	} {
		p, err := c.ListTransactions(ctx, 7, tc.f)
		require.NoError(t, err, name)
		require.Equal(t, tc.want, seqs(p.Data), name)
		require.False(t, p.HasMore, name)
		require.Empty(t, p.NextCursor, name)
	}

	// One entry by id.
	e, err := c.GetTransaction(ctx, w.Entry.ID)
	require.NoError(t, err)
	require.Equal(t, all[0], e)
	require.NotEmpty(t, e.IdempotencyKey, "the client's key is recorded with the entry")

	// A cursor of the other order is refused, naming the parameter.
	_, err = c.ListTransactions(ctx, 7, client.TransactionFilter{Cursor: p.NextCursor, Order: client.OldestFirst})
	requireParam(t, err, client.ErrValidation, "cursor")
	_, err = c.ListTransactions(ctx, 7, client.TransactionFilter{Limit: 1001})
	requireParam(t, err, client.ErrValidation, "limit")
}

func seqs(es []client.Entry) []int64 {
	out := []int64{}
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

// requireParam checks that err is target with error.param param.
func requireParam(tb testing.TB, err, target error, param string) {
	tb.Helper()
	require.ErrorIs(tb, err, target)
	var apiErr *client.Error
	require.ErrorAs(tb, err, &apiErr)
	require.Equal(tb, param, apiErr.Param, "%v", err)
	require.NotEmpty(tb, apiErr.RequestID)
}

// TestPagesEnd: iteration stops at an error (yielded once, after the
// items before it) and at a cursor that does not move, whatever hasMore
// says.
func TestPagesEnd(t *testing.T) {
	t.Parallel()
	var calls int
	c := newClient(t, "http://ledgerd.invalid", func(http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			calls++
			switch r.URL.Query().Get("cursor") {
			case "":
				return canned(r, http.StatusOK, nil, `{"success":true,"data":[{"seq":2},{"seq":1}],"pagination":{"nextCursor":"c1","hasMore":true}}`), nil
			case "c1":
				return canned(r, http.StatusOK, nil, `{"success":true,"data":[],"pagination":{"nextCursor":"c1","hasMore":true}}`), nil
			default:
				return canned(r, http.StatusBadRequest, nil, `{"success":false,"error":{"message":"cursor is not valid","code":400,"type":"validation_error","param":"cursor"}}`), nil
			}
		})
	})
	ctx := t.Context()
	var got []int64
	for e, err := range client.All(c.TransactionPages(ctx, 1, client.TransactionFilter{})) {
		require.NoError(t, err)
		got = append(got, e.Seq)
	}
	require.Equal(t, []int64{2, 1}, got)
	require.Equal(t, 2, calls, "the stuck cursor is read once")

	var errs int
	got = nil
	for e, err := range client.All(c.TransactionPages(ctx, 1, client.TransactionFilter{Cursor: "bad"})) {
		if err != nil {
			errs++
			requireParamNoID(t, err, "cursor")
			continue
		}
		got = append(got, e.Seq)
	}
	require.Equal(t, 1, errs)
	require.Empty(t, got)
}

// requireParamNoID is requireParam for canned answers, which have no
// request id.
func requireParamNoID(tb testing.TB, err error, param string) {
	tb.Helper()
	var apiErr *client.Error
	require.ErrorAs(tb, err, &apiErr)
	require.Equal(tb, param, apiErr.Param)
}
