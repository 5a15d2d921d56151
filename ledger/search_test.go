package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// TestSearchMatchesReference pages through the users' entries for every
// filter alone and for combinations of them, in both orders and with small
// pages that follow the cursor, and compares the pages with the same filter
// applied in Go to every entry of the user.
func TestSearchMatchesReference(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _ := newLedger(t)
	users := []int64{1, 2, 3}
	all := writeMixedHistory(t, l, users)

	// Values the filters below look for, taken from what was written.
	one := all[1]
	var transferTx, depositTx uuid.UUID
	var times []time.Time
	for _, e := range one {
		switch {
		case e.Type == ledger.TransferIn && transferTx == uuid.Nil:
			transferTx = e.TransactionID.UUID
		case e.Type == ledger.Deposit && depositTx == uuid.Nil:
			depositTx = e.TransactionID.UUID
		}
		if len(times) == 0 || !e.CreatedAt.Equal(times[len(times)-1]) {
			times = append(times, e.CreatedAt)
		}
	}
	require.NotEqual(t, uuid.Nil, transferTx)
	require.NotEqual(t, uuid.Nil, depositTx)
	require.Greater(t, len(times), 20, "entries written at distinct instants")
	slices.SortFunc(times, func(a, b time.Time) int { return b.Compare(a) }) // newest first
	early, mid, late := times[len(times)*3/4], times[len(times)/2], times[len(times)/4]

	cents := func(c money.Cents) *money.Cents { return &c }
	seq := func(n int64) *int64 { return &n }
	at := func(t time.Time) *time.Time { return &t }
	cases := []struct {
		name string
		f    ledger.EntryFilter
		// ascOnly: the filter needs order=asc (afterSeq).
		ascOnly bool
	}{
		{name: "everything"},
		{name: "type deposit", f: ledger.EntryFilter{Type: ledger.Deposit}},
		{name: "type withdrawal", f: ledger.EntryFilter{Type: ledger.Withdrawal}},
		{name: "type transfer_in", f: ledger.EntryFilter{Type: ledger.TransferIn}},
		{name: "type transfer_out", f: ledger.EntryFilter{Type: ledger.TransferOut}},
		{name: "type opening", f: ledger.EntryFilter{Type: ledger.Opening}},
		{name: "type reversal, none written", f: ledger.EntryFilter{Type: ledger.EntryType("reversal")}},
		{name: "shared reference", f: ledger.EntryFilter{Reference: "shared-a"}},
		{name: "other shared reference", f: ledger.EntryFilter{Reference: "shared-b"}},
		{name: "unique reference", f: ledger.EntryFilter{Reference: "once-7"}},
		{name: "unknown reference", f: ledger.EntryFilter{Reference: "nobody"}},
		{name: "transfer's transaction", f: ledger.EntryFilter{TransactionID: uuid.NullUUID{UUID: transferTx, Valid: true}}},
		{name: "deposit's transaction", f: ledger.EntryFilter{TransactionID: uuid.NullUUID{UUID: depositTx, Valid: true}}},
		{name: "unknown transaction", f: ledger.EntryFilter{TransactionID: uuid.NullUUID{UUID: uuid.New(), Valid: true}}},
		{name: "minAmount", f: ledger.EntryFilter{MinAmount: cents(250)}},
		{name: "minAmount zero", f: ledger.EntryFilter{MinAmount: cents(0)}},
		{name: "minAmount negative", f: ledger.EntryFilter{MinAmount: cents(-100)}},
		{name: "maxAmount", f: ledger.EntryFilter{MaxAmount: cents(-100)}},
		{name: "maxAmount zero", f: ledger.EntryFilter{MaxAmount: cents(0)}},
		{name: "amount range", f: ledger.EntryFilter{MinAmount: cents(-250), MaxAmount: cents(250)}},
		{name: "one amount", f: ledger.EntryFilter{MinAmount: cents(250), MaxAmount: cents(250)}},
		{name: "one amount, none written", f: ledger.EntryFilter{MinAmount: cents(1), MaxAmount: cents(1)}},
		{name: "from", f: ledger.EntryFilter{From: at(mid)}},
		{name: "to", f: ledger.EntryFilter{To: at(mid)}},
		{name: "from to", f: ledger.EntryFilter{From: at(early), To: at(late)}},
		{name: "from after everything", f: ledger.EntryFilter{From: at(times[0].Add(time.Hour))}},
		{name: "to before everything", f: ledger.EntryFilter{To: at(times[len(times)-1].Add(-time.Hour))}},
		{name: "type and amount", f: ledger.EntryFilter{Type: ledger.Deposit, MinAmount: cents(500)}},
		{name: "type and amount range", f: ledger.EntryFilter{Type: ledger.Withdrawal, MinAmount: cents(-100), MaxAmount: cents(-50)}},
		{name: "reference from to", f: ledger.EntryFilter{Reference: "shared-a", From: at(early), To: at(late)}},
		{name: "reference and type", f: ledger.EntryFilter{Reference: "shared-b", Type: ledger.TransferOut}},
		{name: "transaction and type", f: ledger.EntryFilter{TransactionID: uuid.NullUUID{UUID: transferTx, Valid: true}, Type: ledger.TransferIn}},
		{name: "transaction and other type", f: ledger.EntryFilter{TransactionID: uuid.NullUUID{UUID: transferTx, Valid: true}, Type: ledger.TransferOut}},
		{name: "amount from", f: ledger.EntryFilter{MaxAmount: cents(0), From: at(mid)}},
		{name: "everything at once", f: ledger.EntryFilter{Type: ledger.Deposit, Reference: "shared-a", MinAmount: cents(100), MaxAmount: cents(999), From: at(early), To: at(late)}},
		{name: "afterSeq", f: ledger.EntryFilter{AfterSeq: seq(40)}, ascOnly: true},
		{name: "afterSeq zero", f: ledger.EntryFilter{AfterSeq: seq(0)}, ascOnly: true},
		{name: "afterSeq past the end", f: ledger.EntryFilter{AfterSeq: seq(100_000)}, ascOnly: true},
		{name: "afterSeq and type", f: ledger.EntryFilter{AfterSeq: seq(20), Type: ledger.TransferOut}, ascOnly: true},
		{name: "afterSeq and amount to", f: ledger.EntryFilter{AfterSeq: seq(10), MinAmount: cents(-250), To: at(late)}, ascOnly: true},
	}
	nonEmpty := 0
	for _, tc := range cases {
		orders := []ledger.Order{ledger.Descending, ledger.Ascending}
		if tc.ascOnly {
			orders = orders[1:]
		}
		for _, order := range orders {
			for _, user := range users {
				want := referenceFilter(all[user], tc.f, order)
				if len(want) > 0 {
					nonEmpty++
				}
				for _, limit := range []int{1, 4, 1000} {
					f := tc.f
					f.UserID, f.Order, f.Limit = user, order, limit
					got := pageThrough(t, l, f)
					require.Equal(t, seqs(want), seqs(got), "%s, %s, user %d, limit %d", tc.name, order, user, limit)
					require.Equal(t, want, got, "%s, %s, user %d, limit %d: whole entries", tc.name, order, user, limit)
				}
			}
		}
	}
	require.Greater(t, nonEmpty, len(cases), "most cases match something")

	t.Run("afterSeq and cursor: the larger bound wins", func(t *testing.T) {
		f := ledger.EntryFilter{UserID: 1, Order: ledger.Ascending, AfterSeq: seq(30), CursorSeq: 10, Limit: 5}
		page, err := l.FindEntries(ctx, f)
		require.NoError(t, err)
		require.Equal(t, []int64{31, 32, 33, 34, 35}, seqs(page.Entries))
		f.CursorSeq = 50
		page, err = l.FindEntries(ctx, f)
		require.NoError(t, err)
		require.Equal(t, []int64{51, 52, 53, 54, 55}, seqs(page.Entries))
	})
	t.Run("empty page of a user without a match, 404 for an unknown user", func(t *testing.T) {
		page, err := l.FindEntries(ctx, ledger.EntryFilter{UserID: 1, Reference: "nobody", Limit: 10})
		require.NoError(t, err)
		require.Empty(t, page.Entries)
		require.False(t, page.HasMore)
		_, err = l.FindEntries(ctx, ledger.EntryFilter{UserID: 99, Reference: "nobody", Limit: 10})
		require.ErrorIs(t, err, ledger.ErrNotFound)
	})
}

// pageThrough follows the cursor from the first page to the last, and
// checks that only the last page says there is no more.
func pageThrough(t *testing.T, l *ledger.Ledger, f ledger.EntryFilter) []ledger.Entry {
	t.Helper()
	var out []ledger.Entry
	for range 10_000 {
		page, err := l.FindEntries(context.Background(), f)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Entries), f.Limit)
		out = append(out, page.Entries...)
		if !page.HasMore {
			return out
		}
		require.Len(t, page.Entries, f.Limit, "only a full page has more")
		f.CursorSeq = page.Entries[len(page.Entries)-1].Seq
	}
	t.Fatal("the pages never end")
	return nil
}

// referenceFilter is what FindEntries must return, page after page: all
// is every entry of one user, oldest first.
func referenceFilter(all []ledger.Entry, f ledger.EntryFilter, order ledger.Order) []ledger.Entry {
	var out []ledger.Entry
	for _, e := range all {
		switch {
		case f.Type != "" && e.Type != f.Type,
			f.Reference != "" && e.Reference != f.Reference,
			f.TransactionID.Valid && ledger.TransactionOf(e) != f.TransactionID.UUID,
			f.MinAmount != nil && e.Amount < *f.MinAmount,
			f.MaxAmount != nil && e.Amount > *f.MaxAmount,
			f.From != nil && e.CreatedAt.Before(*f.From),
			f.To != nil && !e.CreatedAt.Before(*f.To),
			f.AfterSeq != nil && e.Seq <= *f.AfterSeq:
			continue
		}
		out = append(out, e)
	}
	if order == ledger.Descending {
		slices.Reverse(out)
	}
	return out
}

// writeMixedHistory writes a few hundred entries for the users through the
// ledger: openings, deposits and withdrawals of a few amounts, transfers
// between them, with no reference, shared references or unique ones. It
// returns every entry of each user, oldest first, read in one page.
func writeMixedHistory(t *testing.T, l *ledger.Ledger, users []int64) map[int64][]ledger.Entry {
	t.Helper()
	ctx := context.Background()
	for _, u := range users {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: u, Balance: 1_000_000})
		require.NoError(t, err)
	}
	references := func(i int) string {
		switch {
		case i%5 == 0:
			return "shared-a"
		case i%7 == 0:
			return "shared-b"
		case i%3 == 0:
			return fmt.Sprintf("once-%d", i)
		}
		return ""
	}
	amounts := []money.Cents{100, 250, 999, 5000, -50, -250, -100}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for k, u := range users {
		wg.Go(func() {
			for i := range 80 {
				ref := references(i)
				var err error
				if i%4 == 3 {
					to := users[(k+1+i%2)%len(users)]
					_, err = l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: u, ToUserID: to,
						Amount: money.Cents(75 + 25*(i%3)), Reference: ref})
				} else {
					_, err = l.PostEntry(ctx, ledger.Change{UserID: u, Amount: amounts[(i+k)%len(amounts)], Reference: ref})
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("user %d, change %d: %w", u, i, err))
					mu.Unlock()
					return
				}
				if i%10 == 0 {
					time.Sleep(2 * time.Millisecond) // distinct instants for from and to
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))

	all := map[int64][]ledger.Entry{}
	for _, u := range users {
		page, err := l.FindEntries(ctx, ledger.EntryFilter{UserID: u, Order: ledger.Ascending, Limit: ledger.MaxPageSize})
		require.NoError(t, err)
		require.False(t, page.HasMore)
		require.Greater(t, len(page.Entries), 100)
		for i, e := range page.Entries {
			require.Equal(t, int64(i+1), e.Seq)
		}
		all[u] = page.Entries
	}
	var refs []string
	for _, e := range all[1] {
		refs = append(refs, e.Reference)
	}
	require.Contains(t, strings.Join(refs, ","), "once-7")
	return all
}

func seqs(es []ledger.Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

// TestFindEntriesRules: each broken rule is a *ValidationError naming the
// query parameter at fault, and nothing is read.
func TestFindEntriesRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _ := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 5})
	require.NoError(t, err)
	cents := func(c money.Cents) *money.Cents { return &c }
	seq := func(n int64) *int64 { return &n }
	from := time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC)
	to := from.Add(-time.Second)
	for _, tc := range []struct {
		name  string
		f     ledger.EntryFilter
		field string
	}{
		{"limit 0", ledger.EntryFilter{Limit: 0}, "limit"},
		{"limit above the page size", ledger.EntryFilter{Limit: ledger.MaxPageSize + 1}, "limit"},
		{"unknown order", ledger.EntryFilter{Order: "sideways"}, "order"},
		{"negative cursor", ledger.EntryFilter{CursorSeq: -1}, "cursor"},
		{"negative afterSeq", ledger.EntryFilter{Order: ledger.Ascending, AfterSeq: seq(-1)}, "afterSeq"},
		{"afterSeq newest first", ledger.EntryFilter{AfterSeq: seq(3)}, "afterSeq"},
		{"afterSeq 0 newest first", ledger.EntryFilter{Order: ledger.Descending, AfterSeq: seq(0)}, "afterSeq"},
		{"unknown type", ledger.EntryFilter{Type: "refund"}, "type"},
		{"from after to", ledger.EntryFilter{From: &from, To: &to}, "from"},
		{"from equal to", ledger.EntryFilter{From: &from, To: &from}, "from"},
		{"minAmount above maxAmount", ledger.EntryFilter{MinAmount: cents(1), MaxAmount: cents(0)}, "minAmount"},
		{"minAmount out of range", ledger.EntryFilter{MinAmount: cents(money.MaxAmount + 1)}, "minAmount"},
		{"maxAmount out of range", ledger.EntryFilter{MaxAmount: cents(-money.MaxAmount - 1)}, "maxAmount"},
		{"reference too long", ledger.EntryFilter{Reference: strings.Repeat("é", ledger.MaxReferenceLen+1)}, "reference"},
		{"reference not UTF-8", ledger.EntryFilter{Reference: "\xff"}, "reference"},
		{"reference with NUL", ledger.EntryFilter{Reference: "a\x00"}, "reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.UserID = 1
			if f.Limit == 0 && tc.field != "limit" {
				f.Limit = 10
			}
			_, err := l.FindEntries(ctx, f)
			var verr *ledger.ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, tc.field, verr.Field, "%v", err)
		})
	}
	// The bounds of each rule are allowed.
	_, err = l.FindEntries(ctx, ledger.EntryFilter{UserID: 1, Limit: ledger.MaxPageSize, Order: ledger.Ascending, AfterSeq: seq(0),
		MinAmount: cents(-money.MaxAmount), MaxAmount: cents(money.MaxAmount), Reference: strings.Repeat("é", ledger.MaxReferenceLen)})
	require.NoError(t, err)
	_, err = l.FindEntries(ctx, ledger.EntryFilter{UserID: 1, Limit: 1, MinAmount: cents(0), MaxAmount: cents(0)})
	require.NoError(t, err)
}
