package ledger_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/signing"
)

// newSigner makes a fresh Ed25519 key and the key ring that checks it.
func newSigner(t *testing.T) (*signing.Signer, signing.KeyRing) {
	t.Helper()
	priv, _, err := signing.GenerateKey()
	require.NoError(t, err)
	s, err := signing.ParseSigner(priv)
	require.NoError(t, err)
	ring := signing.KeyRing{}
	ring.Add(s.PublicKey())
	return s, ring
}

func newSignedLedger(t *testing.T, opts ledger.Options) (*ledger.Ledger, *pgxpool.Pool, signing.KeyRing) {
	t.Helper()
	s, ring := newSigner(t)
	pool := newPool(t, 8)
	opts.Signer = s
	return ledger.New(pool, opts), pool, ring
}

// statementHistory gives user 1 entries of every kind of version-2
// content (text fields, a transfer, a reversal, a hold's capture), and
// returns the instants between them.
func statementHistory(t *testing.T, l *ledger.Ledger) (marks []time.Time) {
	t.Helper()
	ctx := context.Background()
	mark := func() {
		time.Sleep(2 * time.Millisecond)
		marks = append(marks, time.Now())
		time.Sleep(2 * time.Millisecond)
	}
	mark()
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 10_000})
	require.NoError(t, err)
	_, err = l.CreateUser(ctx, ledger.NewUser{ID: 2})
	require.NoError(t, err)
	mark()
	p, err := l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: -250, Description: "Café crème", Reference: "pos-17"})
	require.NoError(t, err)
	_, err = l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: 1, ToUserID: 2, Amount: 1_000})
	require.NoError(t, err)
	mark()
	_, err = l.PostReversal(ctx, ledger.ReversalRequest{TransactionID: p.Entry.TransactionID.UUID, Description: "Refund"})
	require.NoError(t, err)
	h, err := l.PlaceHold(ctx, ledger.NewHold{UserID: 1, Amount: 500})
	require.NoError(t, err)
	_, err = l.CaptureHold(ctx, h.ID, 0, nil)
	require.NoError(t, err)
	mark()
	return marks
}

func TestStatementRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _, ring := newSignedLedger(t, ledger.Options{})
	statementHistory(t, l)

	s, err := l.FindStatement(ctx, 1, nil, nil)
	require.NoError(t, err)
	require.Len(t, s.Entries, 5)
	require.Equal(t, int64(0), s.OpeningSeq)
	require.Equal(t, ledger.Hash{}, s.OpeningHash)
	require.Equal(t, int64(5), s.ClosingSeq)
	u, err := l.FindUser(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, u.Balance, s.ClosingBalance)
	require.Equal(t, s.Entries[4].Hash, s.ClosingHash)
	require.NotEmpty(t, s.KeyID)
	require.Len(t, s.Signature, 64)

	raw, err := json.Marshal(s)
	require.NoError(t, err)
	parsed, err := ledger.ParseStatement(raw)
	require.NoError(t, err)
	require.NoError(t, ledger.CheckStatement(parsed, ring))

	// The signed bytes are RFC 8785 of the JSON without signature.
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	delete(m, "signature")
	canon, err := signing.Canonical(m)
	require.NoError(t, err)
	signed, err := s.SignedBytes()
	require.NoError(t, err)
	require.Equal(t, string(canon), string(signed))

	// Each change is named by what it broke.
	cases := []struct {
		name   string
		change func(m map[string]any)
		reason string
	}{
		{"an entry's description", func(m map[string]any) { entry(m, 1)["description"] = "Cafe creme" }, "entry seq 2: hash does not recompute"},
		{"an entry's amount", func(m map[string]any) { entry(m, 1)["amount"] = -3.5 }, "entry seq 2: hash does not recompute"},
		{"an entry's balanceAfter", func(m map[string]any) { entry(m, 4)["balanceAfter"] = 1 }, "entry seq 5: hash does not recompute"},
		{"an entry's transactionId", func(m map[string]any) { entry(m, 2)["transactionId"] = entry(m, 1)["transactionId"] }, "entry seq 3: hash does not recompute"},
		{"an entry's prevHash", func(m map[string]any) { entry(m, 3)["prevHash"] = entry(m, 1)["hash"] }, "entry seq 4: prevHash is not the hash of seq 3"},
		{"an entry left out", func(m map[string]any) {
			es := m["entries"].([]any)
			m["entries"] = append(es[:2:2], es[3:]...)
		}, "entry 2: seq 4 does not follow seq 2"},
		{"the closing balance", func(m map[string]any) { m["closingBalance"] = 1000 }, "closing: the balances end at"},
		{"the opening balance", func(m map[string]any) { m["openingBalance"] = 5 }, "opening: openingSeq 0 needs"},
		{"the closing hash", func(m map[string]any) { m["closingHash"] = m["openingHash"] }, "closing: the chain ends at hash"},
		{"the range's end", func(m map[string]any) { m["to"] = entry(m, 4)["createdAt"] }, "entry 4: createdAt"},
		{"the range's start", func(m map[string]any) { m["from"] = "2100-01-01T00:00:00.000000Z" }, "range: from 2100-01-01"},
		{"the user", func(m map[string]any) { m["userId"] = 2 }, "entry 0: userId 1 is not the statement's user 2"},
		{"generatedAt", func(m map[string]any) { m["generatedAt"] = "2000-01-01T00:00:00.000000Z" }, "signature of the statement: does not verify"},
		{"the signature", func(m map[string]any) {
			sig, _ := base64.StdEncoding.DecodeString(m["signature"].(string))
			sig[10] ^= 1
			m["signature"] = base64.StdEncoding.EncodeToString(sig)
		}, "signature of the statement: does not verify"},
		{"the signature removed", func(m map[string]any) { m["signature"] = nil }, "signature of the statement: unsigned"},
		{"the key id", func(m map[string]any) { m["keyId"] = "00" + m["keyId"].(string)[2:] }, "no public key given for its keyId"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			require.NoError(t, json.Unmarshal(raw, &m))
			tc.change(m)
			b, err := json.Marshal(m)
			require.NoError(t, err)
			parsed, err := ledger.ParseStatement(b)
			require.NoError(t, err)
			err = ledger.CheckStatement(parsed, ring)
			var serr *ledger.StatementError
			require.ErrorAs(t, err, &serr)
			require.Contains(t, serr.Reason, tc.reason)
		})
	}
}

func entry(m map[string]any, i int) map[string]any {
	return m["entries"].([]any)[i].(map[string]any)
}

func TestStatementBoundaries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _, ring := newSignedLedger(t, ledger.Options{MaxStatementEntries: 3})
	marks := statementHistory(t, l)
	_, err := l.FindStatement(ctx, 1, &marks[0], nil)
	require.ErrorAs(t, err, new(*ledger.ValidationError), "5 entries, 3 allowed")
	require.Contains(t, err.Error(), "narrower range")
	_, err = l.FindStatement(ctx, 1, &marks[0], &marks[3])
	require.Error(t, err)
	var all ledger.Statement
	check := func(s ledger.Statement) {
		t.Helper()
		raw, err := json.Marshal(s)
		require.NoError(t, err)
		parsed, err := ledger.ParseStatement(raw)
		require.NoError(t, err)
		require.NoError(t, ledger.CheckStatement(parsed, ring))
	}

	t.Run("before the first entry", func(t *testing.T) {
		s, err := l.FindStatement(ctx, 1, &marks[0], &marks[2])
		require.NoError(t, err)
		require.Len(t, s.Entries, 3) // opening, withdrawal, transfer out
		require.Equal(t, int64(0), s.OpeningSeq)
		require.Equal(t, ledger.Hash{}, s.OpeningHash)
		check(s)
		all = s
	})
	t.Run("no entries", func(t *testing.T) {
		from, to := marks[2], marks[2].Add(time.Millisecond)
		s, err := l.FindStatement(ctx, 1, &from, &to)
		require.NoError(t, err)
		require.Empty(t, s.Entries)
		require.Equal(t, int64(3), s.OpeningSeq)
		require.Equal(t, all.ClosingHash, s.OpeningHash)
		require.Equal(t, s.OpeningHash, s.ClosingHash)
		require.Equal(t, s.OpeningBalance, s.ClosingBalance)
		check(s)
	})
	t.Run("ending at the present", func(t *testing.T) {
		future := time.Now().Add(time.Hour)
		for _, to := range []*time.Time{nil, &future} {
			s, err := l.FindStatement(ctx, 1, &marks[2], to)
			require.NoError(t, err)
			require.Equal(t, s.GeneratedAt, s.To, "the present ends it")
			require.Len(t, s.Entries, 2) // reversal, capture
			require.Equal(t, int64(3), s.OpeningSeq)
			require.Equal(t, int64(5), s.ClosingSeq)
			check(s)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		var verr *ledger.ValidationError
		_, err := l.FindStatement(ctx, 1, &marks[2], &marks[1])
		require.ErrorAs(t, err, &verr)
		require.Equal(t, "from", verr.Field)
		_, err = l.FindStatement(ctx, 1, &marks[2], &marks[2])
		require.ErrorAs(t, err, &verr)
		_, err = l.FindStatement(ctx, 99, nil, nil)
		require.ErrorIs(t, err, ledger.ErrNotFound)
	})
}

func TestStatementUnsigned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _ := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 100})
	require.NoError(t, err)
	s, err := l.FindStatement(ctx, 1, nil, nil)
	require.NoError(t, err)
	raw, err := json.Marshal(s)
	require.NoError(t, err)
	require.Contains(t, string(raw), `"keyId":null`)
	require.Contains(t, string(raw), `"signature":null`)
	parsed, err := ledger.ParseStatement(raw)
	require.NoError(t, err)
	err = ledger.CheckStatement(parsed, signing.KeyRing{})
	require.ErrorContains(t, err, "unsigned")
	_, err = l.FindSigningKey(ctx, "")
	require.ErrorIs(t, err, ledger.ErrNoSigningKey)
	require.True(t, errors.Is(err, ledger.ErrNoSigningKey))
}
