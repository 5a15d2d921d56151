package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

// BalanceAt is a user's balance as of an instant, from the ledger.
type BalanceAt struct {
	UserID  int64
	Balance money.Cents
	// At is the instant asked for; nil asks for the latest entry.
	At *time.Time
	// Seq is the last entry at or before At (0 when there is none).
	Seq int64
}

// A user's entry times never decrease along seq (see projection's
// balanceApply), so the entries at or before an instant are a prefix of the
// chain and the last of them is one probe of entries_user_created_idx
// (user_id, created_at, seq), however many entries the user has.
const entryBalanceAt = `SELECT balance_after, seq FROM entries
WHERE user_id = $1 AND ($2::timestamptz IS NULL OR created_at <= $2)
ORDER BY created_at DESC, seq DESC
LIMIT 1`

// FindBalanceAt returns user id's balance as of at: the balance after the
// last entry created at or before at, 0 before the first; a nil at asks for
// the latest entry (every instant, the zero time.Time included, is a real
// instant). It returns ErrNotFound or ErrUnavailable. A balance at an
// instant may be read from the read replica (see withReadConn); the
// current balance (nil at) is read from the primary.
func (l *Ledger) FindBalanceAt(ctx context.Context, id int64, at *time.Time) (BalanceAt, error) {
	out := BalanceAt{UserID: id, At: at}
	read := l.withReadConn
	if at == nil {
		read = l.withConnFor
	}
	err := read(ctx, l.opts.TxTimeout, func(ctx context.Context, conn *pgxpool.Conn) error {
		out = BalanceAt{UserID: id, At: at}
		var balance int64
		err := conn.QueryRow(ctx, entryBalanceAt, id, at).Scan(&balance, &out.Seq)
		if errors.Is(err, pgx.ErrNoRows) {
			exists, err := projection.UserExists(ctx, conn, id)
			if err != nil {
				return err
			}
			if !exists {
				return ErrNotFound
			}
			return nil
		}
		out.Balance = money.Cents(balance)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return BalanceAt{}, fmt.Errorf("balance of user %d: %w", id, err)
	}
	return out, err
}
