package client_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/signing"
)

// TestProofs reads a signed statement, the signing key, checkpoints and an
// inclusion proof, and checks the statement offline from what the client
// kept.
func TestProofs(t *testing.T) {
	t.Parallel()
	l := startLedgerd(t, config{sign: true})
	c := newClient(t, l.URL, nil)
	ctx := t.Context()
	from := time.Now().Add(-time.Second)
	for id := range int64(3) {
		_, err := c.CreateUser(ctx, client.NewUser{ID: id + 1, Balance: 10_00})
		require.NoError(t, err)
	}
	_, err := c.UpdateBalance(ctx, 1, client.BalanceChange{Amount: -2_50})
	require.NoError(t, err)

	st, err := c.GetStatement(ctx, 1, client.StatementRange{From: from})
	require.NoError(t, err)
	require.Equal(t, int64(1), st.UserID)
	require.Zero(t, st.OpeningBalance)
	require.Equal(t, money.Cents(7_50), st.ClosingBalance)
	require.Equal(t, int64(2), st.ClosingSeq)
	require.Len(t, st.Entries, 2)
	require.Equal(t, st.Entries[1].Hash, st.ClosingHash)
	require.Equal(t, l.Signer.KeyID(), st.KeyID)
	require.Len(t, st.Signature, 64)

	key, err := c.GetSigningKey(ctx, "")
	require.NoError(t, err)
	require.Equal(t, l.Signer.KeyID(), key.KeyID)
	again, err := c.GetSigningKey(ctx, st.KeyID)
	require.NoError(t, err)
	require.Equal(t, key, again)
	pub, err := signing.ParsePublicKey([]byte(key.PublicKeyPEM))
	require.NoError(t, err)
	parsed, err := ledger.ParseStatement(st.Raw)
	require.NoError(t, err)
	ring := signing.KeyRing{}
	ring.Add(pub)
	require.NoError(t, ledger.CheckStatement(parsed, ring), "Raw is the statement as signed")

	_, err = c.GetStatement(ctx, 1, client.StatementRange{From: from, To: from.Add(-time.Hour)})
	require.ErrorIs(t, err, client.ErrValidation)

	// Checkpoints: none yet, then two.
	p, err := c.ListCheckpoints(ctx, client.CheckpointFilter{})
	require.NoError(t, err)
	require.Empty(t, p.Data)
	_, err = c.GetCheckpointProof(ctx, 1, 0)
	require.ErrorIs(t, err, client.ErrNotFound)
	first, err := l.Ledger.MakeCheckpoint(ctx)
	require.NoError(t, err)
	_, err = l.Ledger.MakeCheckpoint(ctx)
	require.NoError(t, err)

	var cps []client.Checkpoint
	for p, err := range c.CheckpointPages(ctx, client.CheckpointFilter{Limit: 1}) {
		require.NoError(t, err)
		cps = append(cps, p.Data...)
	}
	require.Len(t, cps, 2)
	require.Equal(t, first.ID, cps[0].ID)
	require.Equal(t, int64(3), cps[0].Users)
	require.Equal(t, l.Signer.KeyID(), cps[0].KeyID)
	require.Len(t, cps[0].Signature, 64)
	require.NotEmpty(t, cps[0].Raw)
	cp, err := c.GetCheckpoint(ctx, first.ID)
	require.NoError(t, err)
	require.Equal(t, cps[0], cp)

	proof, err := c.GetCheckpointProof(ctx, 1, first.ID)
	require.NoError(t, err)
	require.Equal(t, client.CheckpointProof{CheckpointID: first.ID, UserID: 1, Seq: 2, Hash: st.ClosingHash,
		LeafIndex: 0, TreeSize: 3, LeafHash: proof.LeafHash, Proof: proof.Proof, Root: cp.Root}, proof)
	require.Len(t, proof.Proof, 2)
	latest, err := c.GetCheckpointProof(ctx, 3, 0)
	require.NoError(t, err)
	require.Equal(t, cps[1].ID, latest.CheckpointID)
	require.Equal(t, uint64(2), latest.LeafIndex)
}
