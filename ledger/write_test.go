package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// anyKey is an Idempotency whose stored answer names the outcome.
func anyKey[T any](key string) *ledger.Idempotency[T] {
	return &ledger.Idempotency[T]{Key: key, RequestHash: [32]byte{1}, AnswerFunc: func(res T, err error) ledger.Answer {
		if err != nil {
			return ledger.Answer{Code: 400, Body: []byte(err.Error())}
		}
		return ledger.Answer{Code: 201, Body: fmt.Appendf(nil, "%T", res)}
	}}
}

// TestRefusedKeyedTransferWritesNothing: a transfer refused for either
// side, with or without an Idempotency-Key, changes no balance, no seq, no
// entry and no event; with a key, the refusal is stored and replayed; the
// users take writes afterwards and verify.
func TestRefusedKeyedTransferWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1}) // balance 0
	require.NoError(t, err)
	_, err = l.CreateUser(ctx, ledger.NewUser{ID: 2, Balance: 500})
	require.NoError(t, err)
	_, err = l.CreateUser(ctx, ledger.NewUser{ID: 3}) // brought to the maximum
	require.NoError(t, err)
	for range money.MaxBalance / money.MaxAmount {
		_, err = l.PostEntry(ctx, ledger.Change{UserID: 3, Amount: money.MaxAmount})
		require.NoError(t, err)
	}
	state := func() string {
		var s string
		require.NoError(t, pool.QueryRow(ctx, `SELECT string_agg(id || ':' || balance || ':' || seq, ' ' ORDER BY id)
|| ' entries=' || (SELECT count(*) FROM entries) || ' outbox=' || (SELECT count(*) FROM outbox) FROM users`).Scan(&s))
		return s
	}
	before := state()
	for i, tc := range []struct {
		name string
		req  ledger.TransferRequest
		err  error
	}{
		{"unknown payer", ledger.TransferRequest{FromUserID: 9223372036854775806, ToUserID: 2, Amount: 1000}, ledger.ErrNotFound},
		{"unknown payee", ledger.TransferRequest{FromUserID: 2, ToUserID: 77, Amount: 100}, ledger.ErrNotFound},
		{"payer without funds", ledger.TransferRequest{FromUserID: 1, ToUserID: 2, Amount: 500}, ledger.ErrInsufficientFunds},
		{"payee at the maximum", ledger.TransferRequest{FromUserID: 2, ToUserID: 3, Amount: 100}, ledger.ErrBalanceLimit},
	} {
		for _, keyed := range []bool{false, true} {
			req := tc.req
			if keyed {
				req.Idempotency = anyKey[ledger.Transfer](fmt.Sprint("k", i))
			}
			_, err := l.PostTransfer(ctx, req)
			require.ErrorIs(t, err, tc.err, "%s (keyed %v)", tc.name, keyed)
			require.Equal(t, before, state(), "%s (keyed %v) wrote something", tc.name, keyed)
			if keyed {
				_, err := l.PostTransfer(ctx, req)
				var replay *ledger.ReplayError
				require.ErrorAs(t, err, &replay, "the refusal is stored")
				require.Equal(t, 400, replay.Answer.Code)
			}
		}
	}
	require.Equal(t, int64(4), count(t, pool, `SELECT count(*) FROM idempotency_keys WHERE status = 400`))

	// Every user still takes writes, and verifies.
	for id, amount := range map[int64]money.Cents{1: 1, 2: -1, 3: -1} {
		_, err := l.PostEntry(ctx, ledger.Change{UserID: id, Amount: amount})
		require.NoError(t, err, "user %d", id)
	}
	sum, err := l.VerifyAll(ctx, nil)
	require.NoError(t, err)
	require.Zero(t, sum.FailedCount)
}

// TestProjectionWithoutEntryFailsCommit: the database refuses to commit a
// users row that disagrees with its ledger, whoever writes it.
func TestProjectionWithoutEntryFailsCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 100})
	require.NoError(t, err)
	for _, sql := range []string{
		`UPDATE users SET balance = balance + 1000, seq = seq + 1 WHERE id = 1`,
		`UPDATE users SET seq = 0 WHERE id = 1`,
		`INSERT INTO users (id, balance) VALUES (2, 50)`,
	} {
		_, err := pool.Exec(ctx, sql)
		requirePgConstraint(t, err, "users_match_ledger")
	}
	u, err := l.FindUser(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, money.Cents(100), u.Balance)
	require.Equal(t, int64(1), u.Seq)
}

// TestVerifyHasItsOwnDeadline: verifying a user reads its whole history,
// so it runs under VerifyTimeout, not the request deadline TxTimeout.
func TestVerifyHasItsOwnDeadline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 100})
	require.NoError(t, err)
	short := ledger.New(pool, ledger.Options{TxTimeout: time.Nanosecond})
	_, err = short.FindUser(ctx, 1)
	require.ErrorIs(t, err, ledger.ErrUnavailable, "a request read hits TxTimeout")
	v, err := short.VerifyUser(ctx, 1)
	require.NoError(t, err)
	require.True(t, v.OK)
}
