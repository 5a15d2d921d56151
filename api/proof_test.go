package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/api"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/signing"
)

// zeroHash is the hash before a user's first entry.
var zeroHash = strings.Repeat("0", 64)

// proofServer is a test server with its ledger at hand, to make
// checkpoints.
type proofServer struct {
	*testServer
	ledger *ledger.Ledger
}

// newProofServer is a test server on a fresh database whose ledger has
// opts (a Signer, say) and whose API has d's tokens.
func newProofServer(t testing.TB, opts ledger.Options, d api.Deps) *proofServer {
	t.Helper()
	pool := newPool(t, 4)
	d.Ledger = ledger.New(pool, opts)
	return &proofServer{testServer: newTestServerDeps(t, pool, d), ledger: d.Ledger}
}

// newSigner returns a new signing key and a key ring holding its public
// key.
func newSigner(t testing.TB) (*signing.Signer, signing.KeyRing) {
	t.Helper()
	privPEM, pubPEM, err := signing.GenerateKey()
	require.NoError(t, err)
	s, err := signing.ParseSigner(privPEM)
	require.NoError(t, err)
	pub, err := signing.ParsePublicKey(pubPEM)
	require.NoError(t, err)
	require.Equal(t, s.KeyID(), pub.KeyID())
	ring := signing.KeyRing{}
	ring.Add(pub)
	return s, ring
}

// get sends GET path, requires 200 and returns the answer.
func (s *proofServer) get(t testing.TB, path string) response {
	t.Helper()
	r := s.do(t, http.MethodGet, path, nil)
	require.Equal(t, http.StatusOK, r.Status, "GET %s: %s", path, r.Body)
	return r
}

// write sends a change and requires the status want.
func (s *proofServer) write(t testing.TB, want int, method, path, body string) {
	t.Helper()
	r := s.do(t, method, path, body)
	require.Equal(t, want, r.Status, "%s %s: %s", method, path, r.Body)
}

// checkpoint makes a checkpoint now.
func (s *proofServer) checkpoint(t testing.TB) ledger.Checkpoint {
	t.Helper()
	c, err := s.ledger.MakeCheckpoint(context.Background())
	require.NoError(t, err)
	return c
}

// data returns the data member of a success envelope.
func data(t testing.TB, r response) map[string]any {
	t.Helper()
	d, ok := r.JSON(t)["data"].(map[string]any)
	require.True(t, ok, "%s", r.Body)
	return d
}

// proofSnapshot sums up what a request could change: users, entries,
// outbox, and the checkpoint and signing key tables.
func proofSnapshot(t testing.TB, s *proofServer) string {
	t.Helper()
	var counts string
	require.NoError(t, s.Pool.QueryRow(context.Background(), `SELECT concat_ws(' | ',
		(SELECT count(*) || ' checkpoints ' || coalesce(max(id), 0) FROM checkpoints),
		(SELECT count(*) || ' chunks' FROM checkpoint_chunks),
		(SELECT count(*) || ' signing keys' FROM signing_keys))`).Scan(&counts))
	return snapshot(t, s.Pool) + " | " + counts
}

// TestStatementAndCheckpointsSigned: with a signing key, a statement
// shows the user's chain from the start or in a range, and passes every
// offline check; the key is served; checkpoints page, are signed, and the
// proofs tie the statement's closing head to them.
func TestStatementAndCheckpointsSigned(t *testing.T) {
	t.Parallel()
	signer, ring := newSigner(t)
	s := newProofServer(t, ledger.Options{Signer: signer}, api.Deps{})
	s.write(t, http.StatusCreated, http.MethodPost, "/api/users", `{"id": 1, "balance": 100}`)
	s.write(t, http.StatusCreated, http.MethodPost, "/api/users", `{"id": 2}`)
	s.write(t, http.StatusCreated, http.MethodPost, "/api/users", `{"id": 3}`) // never an entry
	s.write(t, http.StatusOK, http.MethodPut, "/api/users/1/balance", `{"amount": 100.50, "description": "Top-up <café> & more"}`)
	s.write(t, http.StatusOK, http.MethodPut, "/api/users/1/balance", `{"amount": -20, "reference": "inv-1"}`)
	s.write(t, http.StatusCreated, http.MethodPost, "/api/transfers", `{"fromUserId": 1, "toUserId": 2, "amount": 5.25}`)

	// The whole history of user 1.
	r := s.get(t, "/api/users/1/statement")
	st := data(t, r)
	require.Equal(t, json.Number("1"), st["userId"])
	require.Equal(t, "1970-01-01T00:00:00.000000Z", st["from"])
	require.Equal(t, st["generatedAt"], st["to"], "without to, the statement ends at its snapshot")
	require.Equal(t, json.Number("0"), st["openingBalance"])
	require.Equal(t, json.Number("0"), st["openingSeq"])
	require.Equal(t, zeroHash, st["openingHash"])
	balance := data(t, s.get(t, "/api/users/1/balance"))
	require.Equal(t, json.Number("175.25"), balance["balance"])
	require.Equal(t, balance["balance"], st["closingBalance"])
	require.Equal(t, balance["seq"], st["closingSeq"])
	last := s.get(t, "/api/users/1/transactions?limit=1").JSON(t)["data"].([]any)[0].(map[string]any)
	require.Equal(t, last["hash"], st["closingHash"])
	entries := st["entries"].([]any)
	require.Len(t, entries, 4)
	for i, e := range entries {
		require.Equal(t, json.Number(fmt.Sprint(i+1)), e.(map[string]any)["seq"], "entries in seq order")
	}
	require.Equal(t, signer.KeyID(), st["keyId"])
	require.NotEmpty(t, st["signature"])
	statement, err := ledger.ParseStatement(r.Body)
	require.NoError(t, err)
	require.NoError(t, ledger.CheckStatement(statement, ring))
	// The signature covers what the content checks do not (generatedAt).
	forged := bytes.Replace(r.Body, []byte(`"generatedAt":"`+st["generatedAt"].(string)), []byte(`"generatedAt":"2000-01-01T00:00:00.000000Z`), 1)
	require.NotEqual(t, r.Body, forged)
	forgedStatement, err := ledger.ParseStatement(forged)
	require.NoError(t, err)
	require.ErrorContains(t, ledger.CheckStatement(forgedStatement, ring), "signature")
	require.ErrorContains(t, ledger.CheckStatement(statement, signing.KeyRing{}), "no public key")

	// A range: [createdAt of seq 2, createdAt of seq 4) holds seq 2 and 3,
	// and opens at seq 1.
	at := func(i int) string { return entries[i].(map[string]any)["createdAt"].(string) }
	r = s.get(t, "/api/users/1/statement?from="+url.QueryEscape(at(1))+"&to="+url.QueryEscape(at(3)))
	ranged := data(t, r)
	require.Equal(t, at(1), ranged["from"])
	require.Equal(t, at(3), ranged["to"])
	require.Equal(t, json.Number("1"), ranged["openingSeq"])
	require.Equal(t, json.Number("100"), ranged["openingBalance"])
	require.Equal(t, entries[0].(map[string]any)["hash"], ranged["openingHash"])
	require.Equal(t, json.Number("3"), ranged["closingSeq"])
	require.Equal(t, json.Number("180.50"), ranged["closingBalance"])
	require.Equal(t, entries[2].(map[string]any)["hash"], ranged["closingHash"])
	require.Len(t, ranged["entries"], 2)
	rangedStatement, err := ledger.ParseStatement(r.Body)
	require.NoError(t, err)
	require.NoError(t, ledger.CheckStatement(rangedStatement, ring))

	// The key, current or by id.
	for _, path := range []string{"/api/signing-key", "/api/signing-key?keyId=" + signer.KeyID()} {
		k := data(t, s.get(t, path))
		require.Equal(t, signer.KeyID(), k["keyId"])
		require.Equal(t, signer.PublicKey().PEM(), k["publicKeyPem"])
		pub, err := signing.ParsePublicKey([]byte(k["publicKeyPem"].(string)))
		require.NoError(t, err)
		require.Equal(t, signer.KeyID(), pub.KeyID())
	}

	// Two checkpoints, user 2 changing between them; user 1 does not.
	c1 := s.checkpoint(t)
	s.write(t, http.StatusOK, http.MethodPut, "/api/users/2/balance", `{"amount": 1}`)
	c2 := s.checkpoint(t)
	require.Greater(t, c2.ID, c1.ID)

	page := s.get(t, "/api/checkpoints?limit=1").JSON(t)
	require.Len(t, page["data"], 1)
	require.Equal(t, json.Number(fmt.Sprint(c1.ID)), page["data"].([]any)[0].(map[string]any)["id"])
	pagination := page["pagination"].(map[string]any)
	require.Equal(t, true, pagination["hasMore"])
	require.Equal(t, fmt.Sprint(c1.ID), pagination["nextCursor"])
	page = s.get(t, "/api/checkpoints?limit=1&after="+pagination["nextCursor"].(string)).JSON(t)
	require.Len(t, page["data"], 1)
	require.Equal(t, json.Number(fmt.Sprint(c2.ID)), page["data"].([]any)[0].(map[string]any)["id"])
	require.Equal(t, map[string]any{"hasMore": false, "nextCursor": nil}, page["pagination"])
	page = s.get(t, "/api/checkpoints").JSON(t)
	require.Len(t, page["data"], 2)
	require.Equal(t, map[string]any{"hasMore": false, "nextCursor": nil}, page["pagination"])
	page = s.get(t, fmt.Sprintf("/api/checkpoints?after=%d", c2.ID)).JSON(t)
	require.Empty(t, page["data"])

	checkpoints := map[int64]ledger.Checkpoint{}
	for i, c := range []ledger.Checkpoint{c1, c2} {
		r := s.get(t, fmt.Sprintf("/api/checkpoints/%d", c.ID))
		got, err := ledger.ParseCheckpoint(r.Body)
		require.NoError(t, err)
		require.Equal(t, c.ID, got.ID)
		require.Equal(t, int64(3), got.Users)
		require.Equal(t, c.Root, got.Root)
		require.Equal(t, signer.KeyID(), got.KeyID)
		require.NoError(t, ledger.CheckCheckpoint(got, ring))
		listed := s.get(t, "/api/checkpoints").JSON(t)["data"].([]any)[i]
		require.Equal(t, data(t, r), listed, "the list shows the checkpoint as GET /checkpoints/{id} does")
		checkpoints[c.ID] = got
	}
	require.NotEqual(t, c1.Root, c2.Root, "user 2's head moved")

	// The proofs: the latest checkpoint by default, or the one asked for.
	for _, q := range []struct {
		query string
		id    int64
	}{{"", c2.ID}, {fmt.Sprintf("?checkpoint=%d", c1.ID), c1.ID}, {fmt.Sprintf("?checkpoint=%d", c2.ID), c2.ID}} {
		r := s.get(t, "/api/users/1/checkpoint-proof"+q.query)
		p, err := ledger.ParseCheckpointProof(r.Body)
		require.NoError(t, err)
		require.Equal(t, q.id, p.CheckpointID)
		require.Equal(t, uint64(0), p.LeafIndex, "user 1 is the first leaf")
		require.Equal(t, uint64(3), p.TreeSize)
		require.Equal(t, statement.ClosingSeq, p.Seq)
		require.NoError(t, ledger.CheckInclusion(statement, checkpoints[q.id], p), "query %q", q.query)
		require.Error(t, ledger.CheckInclusion(statement, checkpoints[c1.ID+c2.ID-q.id], p), "a proof is its checkpoint's only")
	}

	// User 2's head moved after c1: today's statement is in c2, not c1.
	r = s.get(t, "/api/users/2/statement")
	statement2, err := ledger.ParseStatement(r.Body)
	require.NoError(t, err)
	require.NoError(t, ledger.CheckStatement(statement2, ring))
	for id, ok := range map[int64]bool{c1.ID: false, c2.ID: true} {
		p, err := ledger.ParseCheckpointProof(s.get(t, fmt.Sprintf("/api/users/2/checkpoint-proof?checkpoint=%d", id)).Body)
		require.NoError(t, err)
		require.Equal(t, uint64(1), p.LeafIndex)
		if err := ledger.CheckInclusion(statement2, checkpoints[id], p); ok {
			require.NoError(t, err)
		} else {
			require.ErrorContains(t, err, "closing head")
		}
	}

	// User 3 has no entry: an empty statement, head (0, zeros) in the tree.
	r = s.get(t, "/api/users/3/statement")
	st3 := data(t, r)
	require.Empty(t, st3["entries"])
	require.Equal(t, json.Number("0"), st3["closingSeq"])
	require.Equal(t, zeroHash, st3["closingHash"])
	require.Equal(t, json.Number("0"), st3["closingBalance"])
	statement3, err := ledger.ParseStatement(r.Body)
	require.NoError(t, err)
	require.NoError(t, ledger.CheckStatement(statement3, ring))
	p3 := data(t, s.get(t, "/api/users/3/checkpoint-proof"))
	require.Equal(t, json.Number("0"), p3["seq"])
	require.Equal(t, zeroHash, p3["hash"])
	proof3, err := ledger.ParseCheckpointProof(s.get(t, "/api/users/3/checkpoint-proof").Body)
	require.NoError(t, err)
	require.NoError(t, ledger.CheckInclusion(statement3, checkpoints[c2.ID], proof3))
}

// TestStatementAndCheckpointsUnsigned: without a signing key, statements
// and checkpoints carry null keyId and signature, prove nothing by
// themselves, and there is no key to serve; inclusion proofs still work.
func TestStatementAndCheckpointsUnsigned(t *testing.T) {
	t.Parallel()
	s := newProofServer(t, ledger.Options{}, api.Deps{})
	s.write(t, http.StatusCreated, http.MethodPost, "/api/users", `{"id": 1, "balance": 10}`)
	s.write(t, http.StatusOK, http.MethodPut, "/api/users/1/balance", `{"amount": 2.50}`)

	r := s.get(t, "/api/users/1/statement")
	st := data(t, r)
	require.Contains(t, st, "keyId")
	require.Nil(t, st["keyId"])
	require.Contains(t, st, "signature")
	require.Nil(t, st["signature"])
	require.Len(t, st["entries"], 2)
	statement, err := ledger.ParseStatement(r.Body)
	require.NoError(t, err)
	_, ring := newSigner(t)
	require.ErrorContains(t, ledger.CheckStatement(statement, ring), "unsigned")

	for _, path := range []string{"/api/signing-key", "/api/signing-key?keyId=" + zeroHash} {
		r := s.do(t, http.MethodGet, path, nil)
		require.Equal(t, http.StatusNotFound, r.Status, "%s: %s", path, r.Body)
		require.Equal(t, "not_found", r.ErrorType(t))
	}

	c := s.checkpoint(t)
	require.Empty(t, c.KeyID)
	for _, cp := range []map[string]any{
		data(t, s.get(t, fmt.Sprintf("/api/checkpoints/%d", c.ID))),
		s.get(t, "/api/checkpoints").JSON(t)["data"].([]any)[0].(map[string]any),
	} {
		require.Equal(t, json.Number(fmt.Sprint(c.ID)), cp["id"])
		require.Equal(t, json.Number("1"), cp["users"])
		require.Contains(t, cp, "keyId")
		require.Nil(t, cp["keyId"])
		require.Contains(t, cp, "signature")
		require.Nil(t, cp["signature"])
	}
	got, err := ledger.ParseCheckpoint(s.get(t, fmt.Sprintf("/api/checkpoints/%d", c.ID)).Body)
	require.NoError(t, err)
	require.ErrorContains(t, ledger.CheckCheckpoint(got, ring), "unsigned")
	p, err := ledger.ParseCheckpointProof(s.get(t, "/api/users/1/checkpoint-proof").Body)
	require.NoError(t, err)
	require.NoError(t, ledger.CheckInclusion(statement, got, p))
}

// TestProofRoutesBadInput: every refusal of the proof routes has its
// status, type and param, and changes nothing (no checkpoint, no key, no
// entry).
func TestProofRoutesBadInput(t *testing.T) {
	t.Parallel()
	signer, _ := newSigner(t)
	s := newProofServer(t, ledger.Options{Signer: signer}, api.Deps{})
	s.write(t, http.StatusCreated, http.MethodPost, "/api/users", `{"id": 1, "balance": 10}`)
	s.write(t, http.StatusCreated, http.MethodPost, "/api/users", `{"id": 2, "balance": 20}`)
	c := s.checkpoint(t)
	s.write(t, http.StatusCreated, http.MethodPost, "/api/users", `{"id": 3, "balance": 30}`) // after the checkpoint
	otherKey, _ := newSigner(t)
	before := proofSnapshot(t, s)

	cases := []struct {
		path   string
		status int
		typ    string
		param  string // "" when no one field is at fault
	}{
		{"/api/users/1/statement?from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z", 400, "validation_error", "from"},
		{"/api/users/1/statement?from=2025-01-01T00:00:00Z&to=2025-01-01T00:00:00Z", 400, "validation_error", "from"},
		{"/api/users/1/statement?from=2025-01-01T00:00:00.0000001Z&to=2025-01-01T00:00:00.0000009Z", 400, "validation_error", "from"}, // equal to the microsecond
		{"/api/users/1/statement?from=2999-01-01T00:00:00Z", 400, "validation_error", "from"},                                         // after the present
		{"/api/users/1/statement?from=2025-13-01T00:00:00Z", 400, "validation_error", "from"},
		{"/api/users/1/statement?from=2025-01-01", 400, "validation_error", "from"},
		{"/api/users/1/statement?from=yesterday", 400, "validation_error", "from"},
		{"/api/users/1/statement?from=", 400, "validation_error", "from"},
		{"/api/users/1/statement?to=2025-01-01T00:00:00+24:00", 400, "validation_error", "to"},
		{"/api/users/1/statement?to=1960-01-01T00:00:00Z", 400, "validation_error", "to"}, // before the default from
		{"/api/users/1/statement?from=2025-01-01T00:00:00Z&from=2025-01-02T00:00:00Z", 400, "validation_error", "from"},
		{"/api/users/1/statement?form=2025-01-01T00:00:00Z", 400, "validation_error", "form"},
		{"/api/users/1/statement?%zz", 400, "validation_error", ""},
		{"/api/users/99/statement", 404, "not_found", ""},
		{"/api/users/0/statement", 400, "validation_error", "id"},
		{"/api/users/abc/statement", 400, "validation_error", "id"},
		{"/api/signing-key?keyId=" + strings.ToUpper(signer.KeyID()), 400, "validation_error", "keyId"},
		{"/api/signing-key?keyId=" + signer.KeyID()[:63], 400, "validation_error", "keyId"},
		{"/api/signing-key?keyId=xyz", 400, "validation_error", "keyId"},
		{"/api/signing-key?keyId=", 400, "validation_error", "keyId"},
		{"/api/signing-key?keyId=" + otherKey.KeyID(), 404, "not_found", ""},
		{"/api/signing-key?key=" + signer.KeyID(), 400, "validation_error", "key"},
		{"/api/checkpoints/0", 400, "validation_error", "checkpointId"},
		{"/api/checkpoints/abc", 400, "validation_error", "checkpointId"},
		{"/api/checkpoints/-1", 400, "validation_error", "checkpointId"},
		{fmt.Sprintf("/api/checkpoints/%d", c.ID+1), 404, "not_found", ""},
		{"/api/checkpoints?limit=0", 400, "validation_error", "limit"},
		{"/api/checkpoints?limit=1001", 400, "validation_error", "limit"},
		{"/api/checkpoints?after=-1", 400, "validation_error", "after"},
		{"/api/checkpoints?after=abc", 400, "validation_error", "after"},
		{"/api/checkpoints?after=%2B5", 400, "validation_error", "after"},
		{"/api/checkpoints?cursor=1", 400, "validation_error", "cursor"},
		{"/api/users/3/checkpoint-proof", 404, "not_found", ""}, // created after the checkpoint
		{fmt.Sprintf("/api/users/3/checkpoint-proof?checkpoint=%d", c.ID), 404, "not_found", ""},
		{"/api/users/99/checkpoint-proof", 404, "not_found", ""},
		{"/api/users/1/checkpoint-proof?checkpoint=abc", 400, "validation_error", "checkpoint"},
		{"/api/users/1/checkpoint-proof?checkpoint=0", 400, "validation_error", "checkpoint"},
		{"/api/users/1/checkpoint-proof?checkpoint=-1", 400, "validation_error", "checkpoint"},
		{"/api/users/1/checkpoint-proof?checkpoint=", 400, "validation_error", "checkpoint"},
		{fmt.Sprintf("/api/users/1/checkpoint-proof?checkpoint=%d", c.ID+1), 404, "not_found", ""},
		{"/api/users/1/checkpoint-proof?at=1", 400, "validation_error", "at"},
		{"/api/users/abc/checkpoint-proof", 400, "validation_error", "id"},
	}
	for _, tc := range cases {
		r := s.do(t, http.MethodGet, tc.path, nil)
		require.Equal(t, tc.status, r.Status, "%s: %s", tc.path, r.Body)
		require.Equal(t, tc.typ, r.ErrorType(t), "%s", tc.path)
		e := r.JSON(t)["error"].(map[string]any)
		if tc.param == "" {
			require.NotContains(t, e, "param", "%s", tc.path)
		} else {
			require.Equal(t, tc.param, e["param"], "%s: %s", tc.path, r.Body)
		}
		require.Equal(t, before, proofSnapshot(t, s), "%s changed something", tc.path)
	}
	// The same routes change nothing when they answer 200 either.
	for _, path := range []string{"/api/users/1/statement", "/api/signing-key", "/api/checkpoints",
		fmt.Sprintf("/api/checkpoints/%d", c.ID), "/api/users/2/checkpoint-proof"} {
		s.get(t, path)
	}
	require.Equal(t, before, proofSnapshot(t, s))

	// Without a checkpoint at all, a proof is 404.
	empty := newProofServer(t, ledger.Options{Signer: signer}, api.Deps{})
	empty.write(t, http.StatusCreated, http.MethodPost, "/api/users", `{"id": 1, "balance": 10}`)
	r := empty.do(t, http.MethodGet, "/api/users/1/checkpoint-proof", nil)
	require.Equal(t, http.StatusNotFound, r.Status, "%s", r.Body)
	require.Equal(t, "not_found", r.ErrorType(t))
	page := empty.get(t, "/api/checkpoints").JSON(t)
	require.Empty(t, page["data"])
	require.Equal(t, map[string]any{"hasMore": false, "nextCursor": nil}, page["pagination"])
}

// TestStatementTooManyEntries: a range holding more entries than
// Options.MaxStatementEntries is refused, and writes nothing; one holding
// exactly that many is served.
func TestStatementTooManyEntries(t *testing.T) {
	t.Parallel()
	s := newProofServer(t, ledger.Options{MaxStatementEntries: 3}, api.Deps{})
	s.write(t, http.StatusCreated, http.MethodPost, "/api/users", `{"id": 1, "balance": 10}`)
	for range 3 {
		s.write(t, http.StatusOK, http.MethodPut, "/api/users/1/balance", `{"amount": 1}`)
	}
	before := proofSnapshot(t, s)
	r := s.do(t, http.MethodGet, "/api/users/1/statement", nil)
	require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
	require.Equal(t, "validation_error", r.ErrorType(t))
	require.Equal(t, "to", r.JSON(t)["error"].(map[string]any)["param"])
	require.Contains(t, r.JSON(t)["error"].(map[string]any)["message"], "narrower range")
	require.Equal(t, before, proofSnapshot(t, s))

	// Seq 2..4: exactly the bound.
	var from string
	require.NoError(t, s.Pool.QueryRow(context.Background(),
		`SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') FROM entries WHERE user_id = 1 AND seq = 2`).Scan(&from))
	st := data(t, s.get(t, "/api/users/1/statement?from="+url.QueryEscape(from)))
	require.Len(t, st["entries"], 3)
	require.Equal(t, json.Number("1"), st["openingSeq"])
	require.Equal(t, json.Number("4"), st["closingSeq"])
}

// TestProofRoutesAuditor: the auditor role may use every proof route.
func TestProofRoutesAuditor(t *testing.T) {
	t.Parallel()
	const writer, auditor = "writer-secret", "auditor-secret"
	tokens, err := api.ParseTokens("writer:" + api.HashToken(writer) + ", auditor:" + api.HashToken(auditor))
	require.NoError(t, err)
	signer, _ := newSigner(t)
	s := newProofServer(t, ledger.Options{Signer: signer}, api.Deps{Tokens: tokens})
	r := s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 10}`, "Authorization", "Bearer "+writer)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	c := s.checkpoint(t)
	for _, path := range []string{"/api/users/1/statement", "/api/signing-key", "/api/checkpoints",
		fmt.Sprintf("/api/checkpoints/%d", c.ID), "/api/users/1/checkpoint-proof"} {
		r := s.do(t, http.MethodGet, path, nil, "Authorization", "Bearer "+auditor)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", path, r.Body)
		r = s.do(t, http.MethodGet, path, nil)
		require.Equal(t, http.StatusUnauthorized, r.Status, "%s: %s", path, r.Body)
		require.Equal(t, "unauthorized", r.ErrorType(t))
	}
}

// TestSignatureRecipe runs the jq and OpenSSL commands that api/openapi.yaml
// gives for checking a signature, as written there, on a statement and a
// checkpoint; and they fail on a changed document.
func TestSignatureRecipe(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"sh", "jq", "openssl", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: make tools installs it", tool)
		}
	}
	recipe := signatureRecipe(t)
	signer, _ := newSigner(t)
	s := newProofServer(t, ledger.Options{Signer: signer}, api.Deps{})
	s.write(t, http.StatusCreated, http.MethodPost, "/api/users", `{"id": 1, "balance": 10.10}`)
	s.write(t, http.StatusCreated, http.MethodPost, "/api/users", `{"id": 2}`)
	s.write(t, http.StatusOK, http.MethodPut, "/api/users/1/balance", `{"amount": "100.50", "description": "Top-up <café> & \"more\"\n\tü€😀", "reference": "a/b\\c"}`)
	s.write(t, http.StatusCreated, http.MethodPost, "/api/transfers", `{"fromUserId": 1, "toUserId": 2, "amount": 0.05}`)
	c := s.checkpoint(t)

	run := func(t *testing.T, document []byte) error {
		t.Helper()
		dir := t.TempDir()
		pub := data(t, s.get(t, "/api/signing-key"))["publicKeyPem"].(string)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "pub.pem"), []byte(pub), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "statement.json"), document, 0o600))
		cmd := exec.Command("sh", "-ec", recipe)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err == nil {
			require.Contains(t, string(out), "Signature Verified Successfully")
		}
		return err
	}
	statement := s.get(t, "/api/users/1/statement").Body
	require.NoError(t, run(t, statement))
	checkpoint := s.get(t, fmt.Sprintf("/api/checkpoints/%d", c.ID)).Body
	require.NoError(t, run(t, checkpoint), "a checkpoint is checked the same way")
	changed := bytes.Replace(statement, []byte(`"amount":100.50`), []byte(`"amount":100.51`), 1)
	require.NotEqual(t, statement, changed)
	require.Error(t, run(t, changed))
}

// signatureRecipe returns the commands of the fenced sh block in the
// description of the Signature schema of api/openapi.yaml that work on
// local files: all but the curl lines.
func signatureRecipe(t testing.TB) string {
	t.Helper()
	spec := string(api.OpenAPISpec())
	start := strings.Index(spec, "    Signature:\n")
	require.GreaterOrEqual(t, start, 0, "api/openapi.yaml has a Signature schema")
	block := spec[start:]
	open := strings.Index(block, "```sh\n")
	require.GreaterOrEqual(t, open, 0, "the Signature schema shows the commands")
	block = block[open+len("```sh\n"):]
	block = block[:strings.Index(block, "```")]
	var lines []string
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "curl ") {
			lines = append(lines, line)
		}
	}
	require.Len(t, lines, 3, "jq for the signed bytes, jq for the signature, openssl")
	return strings.Join(lines, "\n")
}
