package ledger

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

// Order is the order of a page of entries, by seq.
type Order string

// The orders of a page.
const (
	// Descending lists the newest entry first; an empty Order means it too.
	Descending Order = "desc"
	// Ascending lists the oldest entry first.
	Ascending Order = "asc"
)

// EntryFilter selects a page of one user's entries. Every filter that is
// set applies (AND), in either order and on every page of a listing.
type EntryFilter struct {
	UserID int64
	// Order is Descending (also when empty) or Ascending.
	Order Order
	// CursorSeq, when positive, continues a listing after the entry with
	// this seq, the last of the previous page, in Order (keyset
	// pagination): only entries with a smaller seq when descending, with a
	// larger one when ascending.
	CursorSeq int64
	// AfterSeq, with Ascending only, keeps the entries with a seq above it:
	// a client syncing from the last entry it has. With CursorSeq, the
	// larger of the two bounds applies.
	AfterSeq *int64
	// From (inclusive) and To (exclusive) bound created_at; nil is open.
	From, To *time.Time
	// Type, when set, keeps only entries of this type.
	Type EntryType
	// Reference, when set, keeps only the entries with exactly this
	// reference.
	Reference string
	// TransactionID, when valid, keeps only the entries of this
	// transaction (see TransactionOf: version-1 entries included).
	TransactionID uuid.NullUUID
	// MinAmount and MaxAmount, when set, bound the signed amount, both
	// inclusive.
	MinAmount, MaxAmount *money.Cents
	// Limit is the page size, 1..MaxPageSize.
	Limit int
}

// MaxPageSize bounds EntryFilter.Limit.
const MaxPageSize = 1000

// EntryPage is one page of entries.
type EntryPage struct {
	Entries []Entry
	// HasMore reports whether entries beyond this page match the filter;
	// the next page continues after the last entry's seq (CursorSeq).
	HasMore bool
}

func (f EntryFilter) order() Order {
	if f.Order == "" {
		return Descending
	}
	return f.Order
}

// validate checks the rules of a filter; each error names the query
// parameter of GET /users/{id}/transactions at fault.
func (f EntryFilter) validate() error {
	switch {
	case f.Limit < 1 || f.Limit > MaxPageSize:
		return invalid("limit", "limit must be between 1 and %d", MaxPageSize)
	case f.Order != "" && f.Order != Descending && f.Order != Ascending:
		return invalid("order", "order must be %s or %s", Ascending, Descending)
	case f.CursorSeq < 0:
		return invalid("cursor", "cursor is not valid")
	case f.AfterSeq != nil && *f.AfterSeq < 0:
		return invalid("afterSeq", "afterSeq must be a non-negative integer")
	case f.AfterSeq != nil && f.order() != Ascending:
		return invalid("afterSeq", "afterSeq needs order=%s: it lists the entries after a seq, oldest first", Ascending)
	case f.Type != "" && !f.Type.Valid():
		names := make([]string, len(EntryTypes))
		for i, t := range EntryTypes {
			names[i] = string(t)
		}
		return invalid("type", "type must be one of %s", strings.Join(names, ", "))
	case f.From != nil && f.To != nil && !f.From.Before(*f.To):
		return invalid("from", "from must be before to")
	case outOfRange(f.MinAmount):
		return invalid("minAmount", "minAmount must be at most %s in absolute value", money.Format(money.MaxAmount))
	case outOfRange(f.MaxAmount):
		return invalid("maxAmount", "maxAmount must be at most %s in absolute value", money.Format(money.MaxAmount))
	case f.MinAmount != nil && f.MaxAmount != nil && *f.MinAmount > *f.MaxAmount:
		return invalid("minAmount", "minAmount must not be greater than maxAmount")
	}
	// The rule of a change's reference: no reference it breaks was stored.
	return validateText("", f.Reference)
}

func outOfRange(c *money.Cents) bool {
	return c != nil && (*c > money.MaxAmount || *c < -money.MaxAmount)
}

// The pieces of a search statement (see searchStatement). Only "$n"
// placeholders are written into them, never a value.
const (
	searchSelect = `SELECT ` + entryColumns + ` FROM entries WHERE user_id = $1`
	// A user's entry times never decrease along seq (see
	// projection.Locked.ChangeTime, and entryBalanceAt, which relies on
	// the same), so the entries created in [from, to) are the seqs from
	// the first entry created at or after from to the last created before
	// to: each one probe of entries_user_created_idx, run once per
	// statement (an InitPlan). As seq bounds, they narrow whichever index
	// serves the other filters, in seq order. No such entry: the bound is
	// NULL and nothing matches, as it should.
	searchFrom = ` AND seq >= (SELECT seq FROM entries WHERE user_id = $1 AND created_at >= %s ORDER BY created_at, seq LIMIT 1)`
	searchTo   = ` AND seq <= (SELECT seq FROM entries WHERE user_id = $1 AND created_at < %s ORDER BY created_at DESC, seq DESC LIMIT 1)`
)

// searchStatement writes the statement of f (already valid) and its
// arguments: one predicate per filter that is set, so that every
// combination is a statement of its own and its plan, generic ones too,
// puts the filters into the Index Cond of the index made for them
// (migration 000009): entries_user_type_idx, entries_user_reference_idx
// and entries_user_amount_idx, all (user_id, <filter>, seq), for a type, a
// reference and an amount; entries_transaction_idx for a transaction;
// entries_user_seq_key alone, or entries_user_created_idx's probes for
// from and to, for the rest. The keyset bound is always there (the largest
// seq when there is no cursor), which halves the number of statements.
func searchStatement(f EntryFilter) (string, []any) {
	var b strings.Builder
	args := []any{f.UserID}
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	b.WriteString(searchSelect)
	if f.Type != "" {
		b.WriteString(" AND type = " + param(string(f.Type)))
	}
	if f.Reference != "" {
		b.WriteString(" AND reference = " + param(f.Reference))
	}
	if f.TransactionID.Valid {
		b.WriteString(" AND " + transactionIDExpr + " = " + param(f.TransactionID.UUID.String()))
	}
	switch minA, maxA := f.MinAmount, f.MaxAmount; {
	case minA != nil && maxA != nil && *minA == *maxA:
		// One amount: the index's entries of it are in seq order, no sort.
		b.WriteString(" AND amount = " + param(int64(*minA)))
	case minA != nil || maxA != nil:
		// Always a two-sided range: an open side is the amounts' limit,
		// which the CHECK entries_amount_range holds. A generic plan
		// estimates a one-sided range to match a third of the rows and
		// would rather filter the user's whole history newest first than
		// read the range from entries_user_amount_idx and sort it; a
		// two-sided one it estimates selective.
		lo, hi := -money.MaxAmount, money.MaxAmount
		if minA != nil {
			lo = *minA
		}
		if maxA != nil {
			hi = *maxA
		}
		b.WriteString(" AND amount >= " + param(int64(lo)) + " AND amount <= " + param(int64(hi)))
	}
	if f.From != nil {
		fmt.Fprintf(&b, searchFrom, param(*f.From))
	}
	if f.To != nil {
		fmt.Fprintf(&b, searchTo, param(*f.To))
	}
	if f.order() == Ascending {
		after := f.CursorSeq
		if f.AfterSeq != nil && *f.AfterSeq > after {
			after = *f.AfterSeq
		}
		b.WriteString(" AND seq > " + param(after) + " ORDER BY seq LIMIT " + param(f.Limit+1))
	} else {
		before := f.CursorSeq
		if before == 0 {
			before = math.MaxInt64
		}
		b.WriteString(" AND seq < " + param(before) + " ORDER BY seq DESC LIMIT " + param(f.Limit+1))
	}
	return b.String(), args
}

// FindEntries returns a page of the user's entries in f.Order that match
// every filter of f, read in one statement. It returns a *ValidationError
// for a bad filter (Field is the query parameter at fault), ErrNotFound
// when the user does not exist, or ErrUnavailable.
func (l *Ledger) FindEntries(ctx context.Context, f EntryFilter) (EntryPage, error) {
	if err := f.validate(); err != nil {
		return EntryPage{}, err
	}
	sql, args := searchStatement(f)
	if f.MinAmount != nil || f.MaxAmount != nil {
		// Which is rarer, the amounts asked for or the newest entries, only
		// the values tell: a wide range is best read newest first and
		// filtered, a narrow one from entries_user_amount_idx. Plan these
		// with the request's values rather than with a cached generic plan.
		args = append([]any{pgx.QueryExecModeExec}, args...)
	}
	var page EntryPage
	err := l.withReadConn(ctx, l.opts.TxTimeout, func(ctx context.Context, conn *pgxpool.Conn) error {
		page = EntryPage{}
		rows, err := conn.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		entries, err := pgx.CollectRows(rows, scanEntry)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			// An empty page of an unknown user is a 404, not an empty list.
			exists, err := projection.UserExists(ctx, conn, f.UserID)
			if err != nil {
				return err
			}
			if !exists {
				return ErrNotFound
			}
		}
		if len(entries) > f.Limit {
			page.HasMore = true
			entries = entries[:f.Limit]
		}
		page.Entries = entries
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return EntryPage{}, fmt.Errorf("find entries of user %d: %w", f.UserID, err)
	}
	return page, err
}
