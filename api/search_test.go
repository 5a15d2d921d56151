package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// searchPage is one decoded page of GET /api/users/{id}/transactions.
type searchPage struct {
	Data []struct {
		ID            string      `json:"id"`
		Seq           int64       `json:"seq"`
		Type          string      `json:"type"`
		Amount        json.Number `json:"amount"`
		Reference     *string     `json:"reference"`
		TransactionID string      `json:"transactionId"`
	} `json:"data"`
	Pagination struct {
		NextCursor *string `json:"nextCursor"`
		HasMore    bool    `json:"hasMore"`
	} `json:"pagination"`
}

func (s *testServer) search(t *testing.T, path string) searchPage {
	t.Helper()
	r := s.do(t, http.MethodGet, path, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s: %s", path, r.Body)
	var p searchPage
	require.NoError(t, json.Unmarshal(r.Body, &p))
	require.Equal(t, p.Pagination.HasMore, p.Pagination.NextCursor != nil, "%s: a next cursor exactly when there is more", path)
	return p
}

// searchAll follows the cursors from the first page of path to the last
// and returns the seqs of every entry.
func (s *testServer) searchAll(t *testing.T, path string) []int64 {
	t.Helper()
	var seqs []int64
	next := ""
	for range 100 {
		p := path
		if next != "" {
			p += "&cursor=" + url.QueryEscape(next)
		}
		page := s.search(t, p)
		for _, e := range page.Data {
			seqs = append(seqs, e.Seq)
		}
		if !page.Pagination.HasMore {
			return seqs
		}
		next = *page.Pagination.NextCursor
	}
	t.Fatalf("%s: the pages never end", path)
	return nil
}

// TestSearchTransactions: the filters of the list combine, in both orders,
// across pages.
func TestSearchTransactions(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 1000}`).Status)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 2}`).Status)
	// seq 2..13 of user 1: -1.50, -2.50, -3.50 and 10 in turn, under the
	// references inv-a, inv-a and inv-b in turn; then a transfer_out of 7
	// under inv-a.
	for i := range 12 {
		amount := []string{"-1.50", "-2.50", "-3.50", "10"}[i%4]
		ref := []string{"inv-a", "inv-a", "inv-b"}[i%3]
		r := s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": `+amount+`, "reference": "`+ref+`"}`)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	}
	r := s.do(t, http.MethodPost, "/api/transfers", `{"fromUserId": 1, "toUserId": 2, "amount": 7, "reference": "inv-a"}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	transferID := r.JSON(t)["data"].(map[string]any)["id"].(string)

	base := "/api/users/1/transactions?limit=2"
	// The withdrawals of inv-a are seq 2 (-1.50), 3 (-2.50), 6 (-1.50), 8
	// (-3.50), 11 (-2.50) and 12 (-3.50).
	filters := "&type=withdrawal&reference=inv-a&minAmount=-2.50&maxAmount=-1.5"
	require.Equal(t, []int64{11, 6, 3, 2}, s.searchAll(t, base+filters))
	require.Equal(t, []int64{2, 3, 6, 11}, s.searchAll(t, base+filters+"&order=asc"))
	require.Equal(t, []int64{6, 11}, s.searchAll(t, base+filters+"&order=asc&afterSeq=3"))
	var sixth struct {
		Data struct {
			CreatedAt string `json:"createdAt"`
		} `json:"data"`
	}
	sixthID := s.search(t, "/api/users/1/transactions?order=asc&afterSeq=5&limit=1").Data[0].ID
	require.NoError(t, json.Unmarshal(s.do(t, http.MethodGet, "/api/transactions/"+sixthID, nil).Body, &sixth))
	require.Equal(t, []int64{6, 11}, s.searchAll(t, base+filters+"&order=asc&from="+url.QueryEscape(sixth.Data.CreatedAt)))
	require.Equal(t, []int64{3, 2}, s.searchAll(t, base+filters+"&to="+url.QueryEscape(sixth.Data.CreatedAt)))

	// A transaction's entries, of one user each.
	page := s.search(t, "/api/users/1/transactions?transactionId="+transferID)
	require.Len(t, page.Data, 1)
	require.Equal(t, "transfer_out", page.Data[0].Type)
	require.Equal(t, json.Number("-7"), page.Data[0].Amount)
	require.Equal(t, transferID, page.Data[0].TransactionID)
	page = s.search(t, "/api/users/2/transactions?type=transfer_in&reference=inv-a&transactionId="+transferID)
	require.Len(t, page.Data, 1)
	require.Empty(t, s.search(t, "/api/users/2/transactions?type=deposit&transactionId="+transferID).Data)

	// Zero bounds: credits and debits.
	require.Equal(t, []int64{13, 9, 5, 1}, s.searchAll(t, base+"&minAmount=0"))
	require.Len(t, s.searchAll(t, base+"&maxAmount=0"), 10)

	// Syncing oldest first: afterSeq with a cursor, the larger bound wins.
	first := s.search(t, "/api/users/1/transactions?order=asc&afterSeq=3&limit=2")
	require.Equal(t, int64(4), first.Data[0].Seq)
	cursor := url.QueryEscape(*first.Pagination.NextCursor)
	require.Equal(t, int64(6), s.search(t, "/api/users/1/transactions?order=asc&afterSeq=3&limit=2&cursor="+cursor).Data[0].Seq)
	require.Equal(t, int64(10), s.search(t, "/api/users/1/transactions?order=asc&afterSeq=9&limit=2&cursor="+cursor).Data[0].Seq)
	last := s.search(t, "/api/users/1/transactions?order=asc&afterSeq=12")
	require.Len(t, last.Data, 2)
	require.False(t, last.Pagination.HasMore)
	require.Empty(t, s.search(t, "/api/users/1/transactions?order=asc&afterSeq=14").Data)

	// A cursor of before this change ("s1:", newest first) keeps working.
	old := base64.RawURLEncoding.EncodeToString([]byte("s1:5"))
	require.Equal(t, []int64{4, 3}, seqsOf(s.search(t, "/api/users/1/transactions?limit=2&cursor="+old)))
}

func seqsOf(p searchPage) []int64 {
	var out []int64
	for _, e := range p.Data {
		out = append(out, e.Seq)
	}
	return out
}

// TestSearchTransactionsBadInput: each bad search is a 400
// validation_error, and an unknown user still a 404.
func TestSearchTransactionsBadInput(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 10}`).Status)
	for range 3 {
		require.Equal(t, http.StatusOK, s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": 1}`).Status)
	}
	descCursor := *s.search(t, "/api/users/1/transactions?limit=1").Pagination.NextCursor
	ascCursor := *s.search(t, "/api/users/1/transactions?limit=1&order=asc").Pagination.NextCursor
	require.NotEqual(t, descCursor, ascCursor)
	list := "/api/users/1/transactions?"
	for _, tc := range []struct{ name, query, param string }{
		{"bad order", "order=newest", "order"},
		{"empty order", "order=", "order"},
		{"upper-case order", "order=ASC", "order"},
		{"afterSeq newest first", "afterSeq=1", "afterSeq"},
		{"afterSeq with order=desc", "order=desc&afterSeq=0", "afterSeq"},
		{"negative afterSeq", "order=asc&afterSeq=-1", "afterSeq"},
		{"afterSeq not a number", "order=asc&afterSeq=one", "afterSeq"},
		{"afterSeq with a plus", "order=asc&afterSeq=%2B1", "afterSeq"},
		{"afterSeq too large", "order=asc&afterSeq=99999999999999999999", "afterSeq"},
		{"minAmount above maxAmount", "minAmount=5&maxAmount=4.99", "minAmount"},
		{"minAmount with 3 decimals", "minAmount=1.005", "minAmount"},
		{"maxAmount with 3 decimals", "maxAmount=-0.001", "maxAmount"},
		{"amount not a number", "minAmount=ten", "minAmount"},
		{"amount with a comma", "maxAmount=1,50", "maxAmount"},
		{"amount out of range", "minAmount=1000000000000.01", "minAmount"},
		{"empty amount", "minAmount=", "minAmount"},
		{"transactionId not a UUID", "transactionId=123", "transactionId"},
		{"transactionId without hyphens", "transactionId=0192f0c45d1e7c3a9b7e1f2a3b4c5d6e", "transactionId"},
		{"empty reference", "reference=", "reference"},
		{"reference too long", "reference=" + strings.Repeat("r", 201), "reference"},
		{"reference not UTF-8", "reference=%FF", "reference"},
		{"a desc cursor with asc", "order=asc&cursor=" + url.QueryEscape(descCursor), "cursor"},
		{"an asc cursor with desc", "cursor=" + url.QueryEscape(ascCursor), "cursor"},
		{"garbled cursor", "cursor=" + url.QueryEscape(descCursor[:len(descCursor)-1]+"!"), "cursor"},
		{"cursor of another prefix", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("x1:5")), "cursor"},
		{"cursor at seq 0", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("a1:0")) + "&order=asc", "cursor"},
		{"unknown type", "type=reversed", "type"},
		{"unknown parameter", "minAmmount=5", "minAmmount"},
		{"parameter twice", "reference=a&reference=b", "reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, http.MethodGet, list+tc.query, nil)
			require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
			require.Equal(t, "validation_error", r.ErrorType(t))
			require.Equal(t, tc.param, r.errorParam(t), "error.param names the query parameter at fault")
		})
	}
	r := s.do(t, http.MethodGet, "/api/users/2/transactions?order=asc&afterSeq=1&type=reversal", nil)
	require.Equal(t, http.StatusNotFound, r.Status, "%s", r.Body)
	require.Equal(t, "not_found", r.ErrorType(t))
}
