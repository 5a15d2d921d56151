package ledger_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
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
	requireAllVerify(t, l)
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

// insertV1Opening creates user id with a version-1 opening entry of
// amount, as ledgerd wrote them before migration 7.
func insertV1Opening(t *testing.T, pool *pgxpool.Pool, id int64, amount money.Cents) ledger.Entry {
	t.Helper()
	ctx := context.Background()
	v1 := ledger.Entry{ID: uuid.Must(uuid.NewV7()), UserID: id, Seq: 1, Type: ledger.Opening, Amount: amount, BalanceAfter: amount,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Version: 1}
	v1.Hash = v1.ComputeHash()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO users (id, balance, seq, created_at, updated_at) VALUES ($1, $2, 1, $3, $3)`, id, int64(amount), v1.CreatedAt)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO entries (id, user_id, seq, type, amount, balance_after, created_at, prev_hash, hash)
VALUES ($1, $2, 1, 'opening', $3, $3, $4, $5, $6)`, v1.ID, id, int64(amount), v1.CreatedAt, v1.PrevHash[:], v1.Hash[:])
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	return v1
}

// TestEntryVersions: entries are written with version 2 of the canonical
// encoding, carrying their request's transaction id (a transfer's id on both
// its entries); a chain that starts with version-1 entries, written before,
// goes on with version-2 ones and verifies; a changed transaction id breaks
// the chain.
func TestEntryVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)

	// User 1's first entry is a version-1 opening, as written before
	// migration 7.
	v1 := insertV1Opening(t, pool, 1, 500)
	require.True(t, strings.HasPrefix(string(v1.Canonical()), "ledgerd-entry-v1\n"))
	require.NotContains(t, string(v1.Canonical()), "transaction_id")

	p, err := l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: -20})
	require.NoError(t, err)
	require.Equal(t, ledger.CurrentVersion, p.Entry.Version)
	require.True(t, p.Entry.TransactionID.Valid)
	require.Equal(t, v1.Hash, p.Entry.PrevHash, "the version-2 entry chains on from the version-1 one")
	canon := string(p.Entry.Canonical())
	require.True(t, strings.HasPrefix(canon, "ledgerd-entry-v2\n"))
	require.True(t, strings.HasSuffix(canon, "\ntransaction_id="+p.Entry.TransactionID.UUID.String()+"\nhold_id=\nreversal_of=\n"), canon)

	_, err = l.CreateUser(ctx, ledger.NewUser{ID: 2})
	require.NoError(t, err)
	tr, err := l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: 1, ToUserID: 2, Amount: 30})
	require.NoError(t, err)
	for _, e := range tr.Entries {
		require.Equal(t, uuid.NullUUID{UUID: tr.ID, Valid: true}, e.TransactionID, "a transfer's entries share its id")
	}
	stored, err := l.FindEntryByID(ctx, tr.Entries[0].ID)
	require.NoError(t, err)
	require.Equal(t, tr.Entries[0], stored, "the stored entry is the written one, version and all")

	v, err := l.VerifyUser(ctx, 1)
	require.NoError(t, err)
	require.True(t, v.OK)
	require.Equal(t, int64(3), v.Entries)
	requireAllVerify(t, l)

	// The transaction id is in the hash.
	_, err = pool.Exec(ctx, `ALTER TABLE entries DISABLE TRIGGER entries_no_update_delete;
UPDATE entries SET transaction_id = gen_random_uuid() WHERE user_id = 1 AND seq = 2;
ALTER TABLE entries ENABLE TRIGGER entries_no_update_delete;`)
	require.NoError(t, err)
	v, err = l.VerifyUser(ctx, 1)
	require.NoError(t, err)
	require.False(t, v.ChainValid)
	require.Equal(t, int64(2), v.FirstBadSeq)

	// Version 1 carries none of the new fields, version 2 a transaction id.
	_, err = pool.Exec(ctx, `INSERT INTO entries (id, user_id, seq, type, amount, balance_after, created_at, prev_hash, hash, canonical_version)
VALUES (gen_random_uuid(), 2, 2, 'deposit', 1, 31, now(), $1, $1, 2)`, make([]byte, 32))
	requirePgConstraint(t, err, "entries_canonical_version")
}

// TestAuditDocQuery runs docs/audit.md's one-query check of a user, as an
// auditor would paste it, on a chain of version-1 and version-2 entries:
// every rule holds; and it notices a changed amount.
func TestAuditDocQuery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	doc, err := os.ReadFile("../docs/audit.md")
	require.NoError(t, err)
	section := string(doc)[strings.Index(string(doc), "## Checking a whole user in one query"):]
	start := strings.Index(section, "```sql\n") + len("```sql\n")
	query := section[start : start+strings.Index(section[start:], "```")]
	require.Contains(t, query, "canonical_version")

	l, pool := newLedger(t)
	insertV1Opening(t, pool, 1, 100) // a chain of both versions
	_, err = l.CreateUser(ctx, ledger.NewUser{ID: 2})
	require.NoError(t, err)
	_, err = l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: -1, Description: "Café crème", Reference: "r", Idempotency: anyKey[ledger.Posted]("k")})
	require.NoError(t, err)
	_, err = l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: 1, ToUserID: 2, Amount: 5})
	require.NoError(t, err)
	check := func() (rows, ok int) {
		r, err := pool.Query(ctx, query)
		require.NoError(t, err)
		for r.Next() {
			var seq int64
			var hashOK, linkOK, sumOK, seqOK bool
			require.NoError(t, r.Scan(&seq, &hashOK, &linkOK, &sumOK, &seqOK))
			rows++
			if hashOK && linkOK && sumOK && seqOK {
				ok++
			}
		}
		require.NoError(t, r.Err())
		return rows, ok
	}
	rows, ok := check()
	require.Equal(t, 3, rows)
	require.Equal(t, 3, ok)
	_, err = pool.Exec(ctx, `ALTER TABLE entries DISABLE TRIGGER entries_no_update_delete;
UPDATE entries SET transaction_id = gen_random_uuid() WHERE user_id = 1 AND seq = 3;
ALTER TABLE entries ENABLE TRIGGER entries_no_update_delete;`)
	require.NoError(t, err)
	rows, ok = check()
	require.Equal(t, 3, rows)
	require.Equal(t, 2, ok, "the changed entry fails")
}

// TestAuditDocWorkedExamples runs docs/audit.md's by-hand checks of a
// version-1 and a version-2 entry with the shell tools they name, and
// checks that each prints the hash the document shows; the version-2
// entry, built here from its documented row, hashes the same in Go.
func TestAuditDocWorkedExamples(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/audit.md")
	require.NoError(t, err)
	blocks := strings.Split(string(doc), "```sh\n")
	ran := 0
	for _, b := range blocks[1:] {
		script := b[:strings.Index(b, "```")]
		if !strings.Contains(script, "printf 'ledgerd-entry-v") {
			continue
		}
		rest := b[strings.Index(b, "```")+3:]
		start := strings.Index(rest, "```\n") + 4
		want := strings.TrimSpace(rest[start : start+strings.Index(rest[start:], "```")])
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Equal(t, want, strings.TrimSpace(string(out)))
		ran++
	}
	require.Equal(t, 2, ran, "both worked examples ran")

	var prev ledger.Hash
	_, err = hex.Decode(prev[:], []byte("bb2433a7943b2cd5fb822595bd218347142553e3f7860cfb4272a141c8d57259"))
	require.NoError(t, err)
	e := ledger.Entry{ID: uuid.MustParse("01a217f6-fe8a-7c41-9d3e-5b7f0c2a8e11"), UserID: 1, Seq: 3, Type: ledger.ReversalEntry,
		Amount: 250, BalanceAfter: 10000, Description: "Refund", Reference: "pos-17", IdempotencyKey: "refund-4711",
		CreatedAt: time.UnixMicro(1795698392712345), PrevHash: prev, Version: 2,
		TransactionID: uuid.NullUUID{UUID: uuid.MustParse("01a217f6-fe8a-7b10-8c55-2f1e4d3c2b1a"), Valid: true},
		ReversalOf:    uuid.NullUUID{UUID: uuid.MustParse("01a217f6-fe6b-76aa-bfc8-d0003ee09e20"), Valid: true}}
	require.Equal(t, "4d2a6f1ac9c7f173d9194db89bee4f41c9891253f8c05b66d8f94fd360340c55", e.ComputeHash().String())
}
