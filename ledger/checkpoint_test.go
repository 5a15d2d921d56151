package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/headtree"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/signing"
)

// roundTrip passes v through its JSON form, as an auditor receives it.
func roundTrip[T any](t *testing.T, v any, parse func([]byte) (T, error)) T {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	out, err := parse(raw)
	require.NoError(t, err)
	return out
}

// TestCheckpointUnderLoad builds a checkpoint while 16 writers move money
// between users with transfers, and shows it is one consistent snapshot:
// every user is a leaf, every leaf is an entry that exists, the root
// recomputes from them, and no transfer is half in it (both legs commit
// in one transaction, so a snapshot holds both or neither).
func TestCheckpointUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 24)
	l := ledger.New(pool, ledger.Options{})
	const users = 300
	for id := int64(1); id <= users; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id * 3, Balance: money.Cents(1_000_000 * (id % 2))})
		require.NoError(t, err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var posted atomic.Int64
	var unexpected atomic.Value
	for w := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1)) //nolint:gosec // test data
			for {
				select {
				case <-stop:
					return
				default:
				}
				from, to := 3*(1+r.Int64N(users)), 3*(1+r.Int64N(users))
				if from == to {
					continue
				}
				_, err := l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: from, ToUserID: to, Amount: 1})
				switch {
				case err == nil:
					posted.Add(1)
				case !errors.Is(err, ledger.ErrInsufficientFunds):
					unexpected.Store(err)
				}
			}
		})
	}
	var cps []ledger.Checkpoint
	for range 3 {
		c, err := l.MakeCheckpoint(ctx)
		require.NoError(t, err)
		cps = append(cps, c)
	}
	close(stop)
	wg.Wait()
	require.Nil(t, unexpected.Load(), "writers fail only with insufficient funds")
	require.Positive(t, posted.Load())

	for _, c := range cps {
		require.Equal(t, int64(users), c.Users, "every user is a leaf")
		heads := checkpointHeads(t, pool, c.ID)
		require.Len(t, heads, users)
		b := headtree.NewBuilder(headtree.ChunkSize)
		for _, h := range heads {
			_, err := b.Add(h)
			require.NoError(t, err)
		}
		_, root, _ := b.Finish()
		require.Equal(t, c.Root, ledger.Hash(root), "the root is the tree of the heads")

		seqOf := map[int64]int64{}
		for _, h := range heads {
			seqOf[h.UserID] = h.Seq
		}
		// No transfer is half in the snapshot.
		rows, err := pool.Query(ctx, `SELECT o.user_id, o.seq, i.user_id, i.seq FROM entries o
JOIN entries i ON i.transfer_id = o.transfer_id AND i.type = 'transfer_in' WHERE o.type = 'transfer_out'`)
		require.NoError(t, err)
		var fromUser, fromSeq, toUser, toSeq int64
		var transfers int
		_, err = pgx.ForEachRow(rows, []any{&fromUser, &fromSeq, &toUser, &toSeq}, func() error {
			transfers++
			require.Equal(t, fromSeq <= seqOf[fromUser], toSeq <= seqOf[toUser],
				"transfer legs (%d,%d) and (%d,%d) are both in checkpoint %d or both out", fromUser, fromSeq, toUser, toSeq, c.ID)
			return nil
		})
		require.NoError(t, err)
		require.Positive(t, transfers)
	}
	requireAllVerify(t, l)
}

// checkpointHeads reads a checkpoint's leaves back from its chunks and
// the entries, as a third party with the database would.
func checkpointHeads(t *testing.T, pool *pgxpool.Pool, id int64) []headtree.Head {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT heads FROM checkpoint_chunks WHERE checkpoint_id = $1 ORDER BY chunk`, id)
	require.NoError(t, err)
	blobs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	require.NoError(t, err)
	var heads []headtree.Head
	for _, blob := range blobs {
		refs, err := headtree.DecodeLeaves(blob)
		require.NoError(t, err)
		for _, r := range refs {
			h := headtree.Head{UserID: r.UserID, Seq: r.Seq}
			if r.Seq > 0 {
				var hash []byte
				require.NoError(t, pool.QueryRow(ctx, `SELECT hash FROM entries WHERE user_id = $1 AND seq = $2`,
					r.UserID, r.Seq).Scan(&hash), "the head (%d, %d) is an entry that exists", r.UserID, r.Seq)
				copy(h.Hash[:], hash)
			}
			heads = append(heads, h)
		}
	}
	return heads
}

func TestCheckpointProofs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool, ring := newSignedLedger(t, ledger.Options{})
	for id := int64(1); id <= 5; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: money.Cents(100 * (id - 1))})
		require.NoError(t, err)
	}
	c1, err := l.MakeCheckpoint(ctx)
	require.NoError(t, err)
	_, err = l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 500})
	require.NoError(t, err)
	_, err = l.CreateUser(ctx, ledger.NewUser{ID: 6})
	require.NoError(t, err)
	c2, err := l.MakeCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(5), c1.Users)
	require.Equal(t, int64(6), c2.Users)
	require.NotEqual(t, c1.Root, c2.Root)
	latest, err := l.FindCheckpoint(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, c2.ID, latest.ID)

	cp := func(c ledger.Checkpoint) ledger.Checkpoint { return roundTrip(t, c, ledger.ParseCheckpoint) }
	proof := func(user, id int64) ledger.CheckpointProof {
		p, err := l.FindCheckpointProof(ctx, user, id)
		require.NoError(t, err)
		return roundTrip(t, p, ledger.ParseCheckpointProof)
	}
	statement := func(user int64) ledger.Statement {
		s, err := l.FindStatement(ctx, user, nil, nil)
		require.NoError(t, err)
		return roundTrip(t, s, ledger.ParseStatement)
	}
	for _, c := range []ledger.Checkpoint{c1, c2} {
		require.NoError(t, ledger.CheckCheckpoint(cp(c), ring))
	}
	// Every user's current statement ends at its head in c2.
	for id := int64(1); id <= 6; id++ {
		s := statement(id)
		require.NoError(t, ledger.CheckStatement(s, ring))
		require.NoError(t, ledger.CheckInclusion(s, cp(c2), proof(id, c2.ID)), "user %d", id)
		require.NoError(t, ledger.CheckInclusion(s, cp(c2), proof(id, 0)), "the latest is c2")
	}
	s1 := statement(1)
	require.ErrorContains(t, ledger.CheckInclusion(s1, cp(c2), proof(2, c2.ID)), "for user 2, not the statement's user 1")
	require.ErrorContains(t, ledger.CheckInclusion(s1, cp(c1), proof(1, c2.ID)), "for checkpoint 2, not checkpoint 1")
	require.ErrorContains(t, ledger.CheckInclusion(s1, cp(c1), proof(1, c1.ID)), "is not the statement's closing head",
		"user 1 moved on after c1")
	// A proof edited to claim another leaf, or checked against another
	// root, fails in the tree.
	p := proof(3, c2.ID)
	p.LeafIndex = 1
	require.ErrorContains(t, ledger.CheckInclusion(statement(3), cp(c2), p), "is not in checkpoint 2")
	forged := cp(c2)
	forged.Root = c1.Root
	require.ErrorContains(t, ledger.CheckInclusion(statement(3), forged, proof(3, c2.ID)), "is not in checkpoint 2")
	require.ErrorContains(t, ledger.CheckCheckpoint(forged, ring), "does not verify")

	_, err = l.FindCheckpointProof(ctx, 6, c1.ID)
	require.ErrorIs(t, err, ledger.ErrNotInCheckpoint, "user 6 came after c1")
	_, err = l.FindCheckpointProof(ctx, 1, 99)
	require.ErrorIs(t, err, ledger.ErrCheckpointNotFound)
	_, err = l.FindCheckpoint(ctx, 99)
	require.ErrorIs(t, err, ledger.ErrCheckpointNotFound)
	list, more, err := l.ListCheckpoints(ctx, 0, 1)
	require.NoError(t, err)
	require.True(t, more)
	require.Equal(t, c1.ID, list[0].ID)
	list, more, err = l.ListCheckpoints(ctx, c1.ID, 10)
	require.NoError(t, err)
	require.False(t, more)
	require.Equal(t, []int64{c2.ID}, []int64{list[0].ID})

	// Checkpoints and their chunks are append-only.
	for _, sql := range []string{
		`UPDATE checkpoints SET users = 0`, `DELETE FROM checkpoints`, `TRUNCATE checkpoints CASCADE`,
		`UPDATE checkpoint_chunks SET leaves = 1`, `DELETE FROM checkpoint_chunks`, `DELETE FROM signing_keys`,
	} {
		_, err := pool.Exec(ctx, sql)
		require.ErrorContains(t, err, "append-only", sql)
	}
}

// TestCheckpointKeyRotation: after a rotation, what the old key signed
// still verifies against the old public key, which the server keeps
// serving by its id.
func TestCheckpointKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	oldKey, _ := newSigner(t)
	newKey, _ := newSigner(t)
	pool := newPool(t, 8)
	before := ledger.New(pool, ledger.Options{Signer: oldKey})
	require.NoError(t, before.RegisterSigningKey(ctx))
	_, err := before.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 100})
	require.NoError(t, err)
	oldStatement, err := before.FindStatement(ctx, 1, nil, nil)
	require.NoError(t, err)
	oldCheckpoint, err := before.MakeCheckpoint(ctx)
	require.NoError(t, err)

	after := ledger.New(pool, ledger.Options{Signer: newKey})
	require.NoError(t, after.RegisterSigningKey(ctx))
	newStatement, err := after.FindStatement(ctx, 1, nil, nil)
	require.NoError(t, err)
	newCheckpoint, err := after.MakeCheckpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, newKey.KeyID(), newStatement.KeyID)
	require.Equal(t, oldKey.KeyID(), oldStatement.KeyID)

	// The auditor fetches each key by the id the documents name.
	ring := signing.KeyRing{}
	for _, id := range []string{oldStatement.KeyID, newCheckpoint.KeyID} {
		k, err := after.FindSigningKey(ctx, id)
		require.NoError(t, err)
		pub, err := signing.ParsePublicKey([]byte(k.PublicKeyPEM))
		require.NoError(t, err)
		require.Equal(t, id, pub.KeyID())
		ring.Add(pub)
	}
	current, err := after.FindSigningKey(ctx, "")
	require.NoError(t, err)
	require.Equal(t, newKey.KeyID(), current.KeyID)

	for _, s := range []ledger.Statement{oldStatement, newStatement} {
		require.NoError(t, ledger.CheckStatement(roundTrip(t, s, ledger.ParseStatement), ring))
	}
	for _, c := range []ledger.Checkpoint{oldCheckpoint, newCheckpoint} {
		require.NoError(t, ledger.CheckCheckpoint(roundTrip(t, c, ledger.ParseCheckpoint), ring))
	}
	onlyNew := signing.KeyRing{}
	onlyNew.Add(newKey.PublicKey())
	require.ErrorContains(t, ledger.CheckStatement(roundTrip(t, oldStatement, ledger.ParseStatement), onlyNew),
		"no public key given for its keyId "+oldKey.KeyID())
	_, err = after.FindSigningKey(ctx, "ab"+oldKey.KeyID()[2:])
	require.ErrorIs(t, err, ledger.ErrNoSigningKey)
}
