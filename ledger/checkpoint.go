package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/headtree"
	"github.com/ledgerd/ledgerd/signing"
)

// Checkpoint is a signed Merkle root (RFC 6962 hashing, package headtree)
// over every user's chain head (user id, seq, hash) in one snapshot taken
// at At, leaves in user id order.
type Checkpoint struct {
	ID    int64
	At    time.Time
	Users int64
	Root  Hash
	// KeyID names the key that signed the checkpoint; "" when unsigned.
	KeyID string
	// Signature is the Ed25519 signature of SignedBytes; nil when unsigned.
	Signature []byte
	// BuildTime is how long the checkpoint took to build (not signed).
	BuildTime time.Duration
}

type checkpointJSON struct {
	ID        int64   `json:"id"`
	At        string  `json:"at"`
	Users     int64   `json:"users"`
	Root      Hash    `json:"root"`
	KeyID     *string `json:"keyId"`
	Signature *string `json:"signature,omitempty"`
}

func (c Checkpoint) toJSON(signed bool) checkpointJSON {
	j := checkpointJSON{ID: c.ID, At: FormatTime(c.At), Users: c.Users, Root: c.Root, KeyID: nullable(c.KeyID)}
	if signed {
		j.Signature = encodeSignature(c.Signature)
	}
	return j
}

// MarshalJSON writes the checkpoint as the API shows it: {id, at, users,
// root, keyId, signature}, signature null when unsigned.
func (c Checkpoint) MarshalJSON() ([]byte, error) {
	j := c.toJSON(true)
	return marshalSigned("checkpoint", j, j.Signature)
}

// SignedBytes is what the checkpoint's signature covers: the RFC 8785
// canonical form of its JSON without the signature member.
func (c Checkpoint) SignedBytes() ([]byte, error) {
	return signing.Canonical(c.toJSON(false))
}

// ParseCheckpoint reads a checkpoint as the API writes it (the data member
// of the answer, or the whole answer).
func ParseCheckpoint(raw []byte) (Checkpoint, error) {
	data, err := unwrapData(raw)
	if err != nil {
		return Checkpoint{}, err
	}
	var j checkpointJSON
	if err := strictJSON(data, &j); err != nil {
		return Checkpoint{}, failed("not a checkpoint: %v", err)
	}
	c := Checkpoint{ID: j.ID, Users: j.Users, Root: j.Root}
	if c.At, err = time.Parse(time.RFC3339Nano, j.At); err != nil {
		return Checkpoint{}, failed("checkpoint: at is not an RFC 3339 instant")
	}
	if c.KeyID, c.Signature, err = parseSignature("checkpoint", j.KeyID, j.Signature); err != nil {
		return Checkpoint{}, err
	}
	return c, nil
}

// CheckCheckpoint checks the checkpoint's signature with the key of keys
// its keyId names; it returns a *StatementError when it fails.
func CheckCheckpoint(c Checkpoint, keys signing.KeyRing) error {
	return checkSignature(fmt.Sprintf("checkpoint %d", c.ID), c.KeyID, c.Signature, c.SignedBytes, keys)
}

// ErrCheckpointNotFound means no checkpoint has the given id.
var ErrCheckpointNotFound = errors.New("checkpoint not found")

// ErrNotInCheckpoint means the user has no leaf in the checkpoint: it was
// created after the checkpoint, or does not exist.
var ErrNotInCheckpoint = errors.New("user not in checkpoint")

// ErrCheckpointBusy means another process is building a checkpoint.
var ErrCheckpointBusy = errors.New("another checkpoint is being built")

// checkpointLockKey makes one checkpoint at a time across every process.
const checkpointLockKey int64 = 0x6c65646765724370 // "ledgerCp"

const (
	// checkpointHeads streams every user's head in id order: the users
	// primary key, and one probe of entries_user_seq_key per user for the
	// head's hash (null for a user without entries). The LIMIT keeps the
	// probe a nested loop: as a plain join the planner merges or hashes
	// every entry of every user, a cost that grows with the history.
	checkpointHeads = `SELECT u.id, u.seq, e.hash FROM users u
LEFT JOIN LATERAL (SELECT hash FROM entries WHERE user_id = u.id AND seq = u.seq LIMIT 1) e ON true
ORDER BY u.id`
	checkpointNextID  = `SELECT nextval(pg_get_serial_sequence('checkpoints', 'id'))`
	checkpointLastAt  = `SELECT max(at) FROM checkpoints`
	signingKeyInsert  = `INSERT INTO signing_keys (key_id, public_key_pem) VALUES ($1, $2) ON CONFLICT (key_id) DO NOTHING`
	checkpointChunkIn = `INSERT INTO checkpoint_chunks (checkpoint_id, chunk, first_user_id, leaves, heads, root)
VALUES ($1, $2, $3, $4, $5, $6)`
	checkpointInsert = `INSERT INTO checkpoints (id, at, users, root, key_id, signature, build_ms)
OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7)`
)

// MakeCheckpoint builds a checkpoint now and records it. It reads every
// user's head in one snapshot, streaming (memory does not grow with the
// users), so writes go on meanwhile, and records the tree's chunks and
// root in one transaction. It returns ErrCheckpointBusy when another
// process is building one, or ErrUnavailable.
func (l *Ledger) MakeCheckpoint(ctx context.Context) (Checkpoint, error) {
	c, _, err := l.makeCheckpoint(ctx, 0)
	return c, err
}

// makeCheckpoint is MakeCheckpoint; with ifOlderThan > 0 it makes none
// (made false) while the last checkpoint is younger than that.
func (l *Ledger) makeCheckpoint(ctx context.Context, ifOlderThan time.Duration) (c Checkpoint, made bool, err error) {
	start := time.Now()
	err = l.withConnFor(ctx, l.opts.CheckpointTimeout, func(ctx context.Context, conn *pgxpool.Conn) error {
		return inTx(ctx, conn, func(ctx context.Context, tx pgx.Tx) error {
			var locked bool
			if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, checkpointLockKey).Scan(&locked); err != nil {
				return fmt.Errorf("checkpoint lock: %w", err)
			}
			if !locked {
				return ErrCheckpointBusy
			}
			if ifOlderThan > 0 {
				var last *time.Time
				if err := tx.QueryRow(ctx, checkpointLastAt).Scan(&last); err != nil {
					return fmt.Errorf("last checkpoint: %w", err)
				}
				if last != nil && time.Since(*last) < ifOlderThan {
					return nil
				}
			}
			if err := tx.QueryRow(ctx, checkpointNextID).Scan(&c.ID); err != nil {
				return fmt.Errorf("checkpoint id: %w", err)
			}
			if err := l.buildCheckpointTx(ctx, tx, &c); err != nil {
				return err
			}
			c.BuildTime = time.Since(start)
			if err := l.signCheckpointTx(ctx, tx, &c); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, checkpointInsert, c.ID, c.At, c.Users, c.Root[:], nullable(c.KeyID), c.Signature,
				c.BuildTime.Milliseconds()); err != nil {
				return fmt.Errorf("record checkpoint: %w", err)
			}
			made = true
			return nil
		})
	})
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("make checkpoint: %w", err)
	}
	return c, made, nil
}

// signCheckpointTx signs c, its key id included, when the ledger has a
// key, and records the key in tx (once) so that it can be fetched by id
// after a rotation.
func (l *Ledger) signCheckpointTx(ctx context.Context, tx pgx.Tx, c *Checkpoint) error {
	s := l.opts.Signer
	if s == nil {
		return nil
	}
	if _, err := tx.Exec(ctx, signingKeyInsert, s.KeyID(), s.PublicKey().PEM()); err != nil {
		return fmt.Errorf("record signing key: %w", err)
	}
	c.KeyID = s.KeyID()
	msg, err := c.SignedBytes()
	if err != nil {
		return err
	}
	c.Signature = s.Sign(msg)
	return nil
}

// buildCheckpointTx streams every user's head from one snapshot into the
// tree, writing each chunk into tx as it fills, and sets c's instant, size
// and root.
func (l *Ledger) buildCheckpointTx(ctx context.Context, tx pgx.Tx, c *Checkpoint) error {
	b := headtree.NewBuilder(headtree.ChunkSize)
	save := func(ch *headtree.Chunk) error {
		if ch == nil {
			return nil
		}
		_, err := tx.Exec(ctx, checkpointChunkIn, c.ID, ch.Index, ch.FirstUserID, ch.Size, ch.Leaves, ch.Root[:])
		if err != nil {
			return fmt.Errorf("record checkpoint chunk: %w", err)
		}
		return nil
	}
	err := l.readSnapshot(ctx, l.opts.CheckpointTimeout, func(ctx context.Context, snap pgx.Tx) error {
		// The first statement takes the snapshot; its clock is the instant.
		if err := snap.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&c.At); err != nil {
			return err
		}
		rows, err := snap.Query(ctx, checkpointHeads)
		if err != nil {
			return err
		}
		var (
			h    headtree.Head
			hash []byte
		)
		_, err = pgx.ForEachRow(rows, []any{&h.UserID, &h.Seq, &hash}, func() error {
			h.Hash = [32]byte{}
			copy(h.Hash[:], hash)
			ch, err := b.Add(h)
			if err != nil {
				return err
			}
			return save(ch)
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("read heads: %w", err)
	}
	last, root, size := b.Finish()
	c.Root, c.Users = root, int64(size) //nolint:gosec // a count of rows
	return save(last)
}

// CheckpointSchedule configures RunCheckpoints.
type CheckpointSchedule struct {
	// Interval is how often a checkpoint is made; ≤ 0 makes none.
	Interval time.Duration
	// Logger receives each checkpoint made and each failure.
	Logger *slog.Logger
	// MadeFunc, when set, is told of each checkpoint this process made.
	MadeFunc func(Checkpoint)
}

// RunCheckpoints makes a checkpoint every s.Interval until ctx ends.
// Every replica runs it: they take turns through an advisory lock, and a
// replica makes none while the last one, whoever made it, is younger than
// the interval.
func (l *Ledger) RunCheckpoints(ctx context.Context, s CheckpointSchedule) {
	if s.Interval <= 0 {
		return
	}
	for {
		c, made, err := l.makeCheckpoint(ctx, s.Interval-s.Interval/20)
		switch {
		case err != nil && ctx.Err() == nil && !errors.Is(err, ErrCheckpointBusy):
			s.Logger.Warn("checkpoint failed", "err", err)
		case made:
			s.Logger.Info("checkpoint made", "checkpoint_id", c.ID, "users", c.Users, "root", c.Root.String(),
				"signed", c.KeyID != "", "build_ms", c.BuildTime.Milliseconds())
			if s.MadeFunc != nil {
				s.MadeFunc(c)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(s.Interval, time.Minute)):
		}
	}
}

// checkpointColumns are read by scanCheckpoint.
const checkpointColumns = `id, at, users, root, coalesce(key_id, ''), signature, build_ms`

const (
	checkpointFind   = `SELECT ` + checkpointColumns + ` FROM checkpoints WHERE id = $1`
	checkpointLatest = `SELECT ` + checkpointColumns + ` FROM checkpoints ORDER BY id DESC LIMIT 1`
	checkpointList   = `SELECT ` + checkpointColumns + ` FROM checkpoints WHERE id > $1 ORDER BY id LIMIT $2`
	// checkpointChunkOf is the chunk that holds a user, if any: the one
	// with the greatest first user id at or below it.
	checkpointChunkOf = `SELECT chunk, heads FROM checkpoint_chunks
WHERE checkpoint_id = $1 AND first_user_id <= $2
ORDER BY first_user_id DESC LIMIT 1`
	checkpointRoots = `SELECT root FROM checkpoint_chunks WHERE checkpoint_id = $1 ORDER BY chunk`
	// headHashes looks up the hashes of a chunk's heads, in order: one
	// probe of entries_user_seq_key each; null for seq 0.
	headHashes = `SELECT e.hash FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS h(user_id, seq, ord)
LEFT JOIN entries e ON e.user_id = h.user_id AND e.seq = h.seq
ORDER BY h.ord`
)

func scanCheckpoint(row pgx.CollectableRow) (Checkpoint, error) {
	var (
		c       Checkpoint
		root    []byte
		buildMS int64
	)
	if err := row.Scan(&c.ID, &c.At, &c.Users, &root, &c.KeyID, &c.Signature, &buildMS); err != nil {
		return Checkpoint{}, err
	}
	copy(c.Root[:], root)
	c.BuildTime = time.Duration(buildMS) * time.Millisecond
	return c, nil
}

// FindCheckpoint returns checkpoint id; id 0 asks for the latest. It
// returns ErrCheckpointNotFound or ErrUnavailable.
func (l *Ledger) FindCheckpoint(ctx context.Context, id int64) (Checkpoint, error) {
	var c Checkpoint
	err := l.withReadConn(ctx, l.opts.TxTimeout, func(ctx context.Context, conn *pgxpool.Conn) error {
		var err error
		c, err = findCheckpoint(ctx, conn, id)
		return err
	})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %d: %w", id, err)
	}
	return c, nil
}

func findCheckpoint(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, id int64) (Checkpoint, error) {
	query, args := checkpointFind, []any{id}
	if id == 0 {
		query, args = checkpointLatest, nil
	}
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return Checkpoint{}, err
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanCheckpoint)
	if errors.Is(err, pgx.ErrNoRows) {
		return Checkpoint{}, ErrCheckpointNotFound
	}
	return c, err
}

// ListCheckpoints returns at most limit checkpoints with an id above
// after, oldest first, and whether more follow. It returns ErrUnavailable.
func (l *Ledger) ListCheckpoints(ctx context.Context, after int64, limit int) ([]Checkpoint, bool, error) {
	var out []Checkpoint
	err := l.withReadConn(ctx, l.opts.TxTimeout, func(ctx context.Context, conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, checkpointList, after, limit+1)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanCheckpoint)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("list checkpoints: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// CheckpointProof shows that a user's head is a leaf of a checkpoint's
// tree: the RFC 6962 audit path of leaf LeafIndex in a tree of TreeSize
// leaves whose root is Root.
type CheckpointProof struct {
	CheckpointID int64
	UserID, Seq  int64
	Hash         Hash
	LeafIndex    uint64
	TreeSize     uint64
	LeafHash     Hash
	Path         []Hash
	Root         Hash
}

type checkpointProofJSON struct {
	CheckpointID int64  `json:"checkpointId"`
	UserID       int64  `json:"userId"`
	Seq          int64  `json:"seq"`
	Hash         Hash   `json:"hash"`
	LeafIndex    uint64 `json:"leafIndex"`
	TreeSize     uint64 `json:"treeSize"`
	LeafHash     Hash   `json:"leafHash"`
	Proof        []Hash `json:"proof"`
	Root         Hash   `json:"root"`
}

// MarshalJSON writes the proof as the API shows it: {checkpointId, userId,
// seq, hash, leafIndex, treeSize, leafHash, proof: [hex…], root}.
func (p CheckpointProof) MarshalJSON() ([]byte, error) {
	j := checkpointProofJSON{CheckpointID: p.CheckpointID, UserID: p.UserID, Seq: p.Seq, Hash: p.Hash,
		LeafIndex: p.LeafIndex, TreeSize: p.TreeSize, LeafHash: p.LeafHash, Proof: p.Path, Root: p.Root}
	if j.Proof == nil {
		j.Proof = []Hash{}
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode proof: %w", err)
	}
	return b, nil
}

// ParseCheckpointProof reads a proof as the API writes it (the data member
// of the answer, or the whole answer).
func ParseCheckpointProof(raw []byte) (CheckpointProof, error) {
	data, err := unwrapData(raw)
	if err != nil {
		return CheckpointProof{}, err
	}
	var j checkpointProofJSON
	if err := strictJSON(data, &j); err != nil {
		return CheckpointProof{}, failed("not a checkpoint proof: %v", err)
	}
	return CheckpointProof{CheckpointID: j.CheckpointID, UserID: j.UserID, Seq: j.Seq, Hash: j.Hash,
		LeafIndex: j.LeafIndex, TreeSize: j.TreeSize, LeafHash: j.LeafHash, Path: j.Proof, Root: j.Root}, nil
}

// CheckInclusion checks offline that the statement's closing head is the
// leaf p proves in checkpoint c: the proof is c's, its head is the
// statement's closing (user, seq, hash), and the audit path leads from the
// head's leaf hash to c's root. It returns a *StatementError.
func CheckInclusion(s Statement, c Checkpoint, p CheckpointProof) error {
	head := headtree.Head{UserID: p.UserID, Seq: p.Seq, Hash: p.Hash}
	path := make([][32]byte, len(p.Path))
	for i, h := range p.Path {
		path[i] = h
	}
	switch {
	case p.CheckpointID != c.ID:
		return failed("proof: for checkpoint %d, not checkpoint %d", p.CheckpointID, c.ID)
	case p.UserID != s.UserID:
		return failed("proof: for user %d, not the statement's user %d", p.UserID, s.UserID)
	case p.Seq != s.ClosingSeq || p.Hash != s.ClosingHash:
		return failed("proof: its head (seq %d, %s) is not the statement's closing head (seq %d, %s)",
			p.Seq, p.Hash, s.ClosingSeq, s.ClosingHash)
	case p.TreeSize != uint64(c.Users): //nolint:gosec // a count
		return failed("proof: tree size %d is not the checkpoint's %d users", p.TreeSize, c.Users)
	}
	if err := headtree.VerifyInclusion(headtree.LeafHash(head), p.LeafIndex, p.TreeSize, path, c.Root); err != nil {
		return failed("proof: the head is not in checkpoint %d: %v", c.ID, err)
	}
	return nil
}

// FindCheckpointProof returns the proof that user userID's head is in
// checkpoint id (0: the latest), read in one snapshot. It returns
// ErrCheckpointNotFound, ErrNotInCheckpoint, or ErrUnavailable.
func (l *Ledger) FindCheckpointProof(ctx context.Context, userID, id int64) (CheckpointProof, error) {
	var p CheckpointProof
	err := l.readSnapshotRouted(ctx, l.opts.TxTimeout, func(ctx context.Context, tx pgx.Tx) error {
		c, err := findCheckpoint(ctx, tx, id)
		if err != nil {
			return err
		}
		p = CheckpointProof{CheckpointID: c.ID, UserID: userID, TreeSize: uint64(c.Users), Root: c.Root} //nolint:gosec // a count
		var (
			chunk int
			blob  []byte
		)
		err = tx.QueryRow(ctx, checkpointChunkOf, c.ID, userID).Scan(&chunk, &blob)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotInCheckpoint
		}
		if err != nil {
			return err
		}
		refs, err := headtree.DecodeLeaves(blob)
		if err != nil {
			return fmt.Errorf("checkpoint %d chunk %d: %w", c.ID, chunk, err)
		}
		index := -1
		users, seqs := make([]int64, len(refs)), make([]int64, len(refs))
		for i, r := range refs {
			users[i], seqs[i] = r.UserID, r.Seq
			if r.UserID == userID {
				index = i
			}
		}
		if index < 0 {
			return ErrNotInCheckpoint
		}
		rows, err := tx.Query(ctx, headHashes, users, seqs)
		if err != nil {
			return err
		}
		hashes, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			return err
		}
		leaves := make([][32]byte, len(refs))
		for i, r := range refs {
			h := headtree.Head{UserID: r.UserID, Seq: r.Seq}
			copy(h.Hash[:], hashes[i])
			leaves[i] = headtree.LeafHash(h)
			if i == index {
				p.Seq, p.Hash, p.LeafHash = h.Seq, h.Hash, leaves[i]
			}
		}
		rows, err = tx.Query(ctx, checkpointRoots, c.ID)
		if err != nil {
			return err
		}
		roots, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([32]byte, error) {
			var b []byte
			var h [32]byte
			err := row.Scan(&b)
			copy(h[:], b)
			return h, err
		})
		if err != nil {
			return err
		}
		path, err := headtree.InclusionProof(headtree.ChunkSize, roots, chunk, leaves, index)
		if err != nil {
			// The stored chunk no longer matches the entries it names.
			return fmt.Errorf("checkpoint %d chunk %d: %w", c.ID, chunk, err)
		}
		p.LeafIndex = uint64(chunk*headtree.ChunkSize + index) //nolint:gosec // non-negative
		p.Path = make([]Hash, len(path))
		for i, h := range path {
			p.Path[i] = h
		}
		return nil
	})
	if err != nil {
		return CheckpointProof{}, fmt.Errorf("proof of user %d in checkpoint %d: %w", userID, id, err)
	}
	return p, nil
}

// SigningKey is a public key that signs, or signed, statements and
// checkpoints.
type SigningKey struct {
	KeyID        string `json:"keyId"`
	PublicKeyPEM string `json:"publicKeyPem"`
}

// ErrNoSigningKey means no signing key is configured (or none recorded
// with the asked id).
var ErrNoSigningKey = errors.New("no signing key")

// RegisterSigningKey records the ledger's public key, once, so that what
// it signs can be checked after a key rotation too. Without a Signer it
// does nothing.
func (l *Ledger) RegisterSigningKey(ctx context.Context) error {
	s := l.opts.Signer
	if s == nil {
		return nil
	}
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		_, err := conn.Exec(ctx, signingKeyInsert, s.KeyID(), s.PublicKey().PEM())
		return err
	})
	if err != nil {
		return fmt.Errorf("record signing key: %w", err)
	}
	return nil
}

const signingKeyFind = `SELECT key_id, public_key_pem FROM signing_keys WHERE key_id = $1`

// FindSigningKey returns the public key with id keyID, or the current one
// when keyID is "". It returns ErrNoSigningKey or ErrUnavailable.
func (l *Ledger) FindSigningKey(ctx context.Context, keyID string) (SigningKey, error) {
	if s := l.opts.Signer; s != nil && (keyID == "" || keyID == s.KeyID()) {
		return SigningKey{KeyID: s.KeyID(), PublicKeyPEM: s.PublicKey().PEM()}, nil
	}
	if keyID == "" {
		return SigningKey{}, ErrNoSigningKey
	}
	var k SigningKey
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		return conn.QueryRow(ctx, signingKeyFind, keyID).Scan(&k.KeyID, &k.PublicKeyPEM)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return SigningKey{}, ErrNoSigningKey
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("signing key %s: %w", keyID, err)
	}
	return k, nil
}

// strictJSON decodes data into v, refusing unknown fields and trailing
// data.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
