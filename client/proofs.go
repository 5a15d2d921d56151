package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ledgerd/ledgerd/money"
)

// Statement is a signed slice of one user's chain: the entries created in
// [From, To), in seq order, with the head before them (Opening…) and after
// them (Closing…). Chaining Entries from OpeningHash gives ClosingHash,
// and the balances run from OpeningBalance to ClosingBalance.
type Statement struct {
	UserID         int64       `json:"userId"`
	From           time.Time   `json:"from"`
	To             time.Time   `json:"to"`
	OpeningBalance money.Cents `json:"openingBalance"`
	ClosingBalance money.Cents `json:"closingBalance"`
	OpeningSeq     int64       `json:"openingSeq"`
	ClosingSeq     int64       `json:"closingSeq"`
	OpeningHash    string      `json:"openingHash"`
	ClosingHash    string      `json:"closingHash"`
	Entries        []Entry     `json:"entries"`
	GeneratedAt    time.Time   `json:"generatedAt"`
	// KeyID names the key that signed the statement; "" when unsigned.
	KeyID string `json:"keyId"`
	// Signature is the Ed25519 signature; nil when unsigned.
	Signature []byte `json:"signature"`
	// Raw is the statement as the server sent it, the bytes the signature
	// is checked over (docs/audit.md): write it to a file for `ledgerd
	// statement verify`.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes a statement and keeps its bytes in Raw.
func (s *Statement) UnmarshalJSON(b []byte) error {
	type plain Statement // without this method
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = Statement(p)
	s.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// StatementRange is the range of a statement.
type StatementRange struct {
	// From (inclusive) and To (exclusive), From before To; the zero From
	// starts at the user's first entry, the zero To ends now.
	From, To time.Time
}

// GetStatement returns a user's signed statement over r (GET
// /api/users/{id}/statement). It returns ErrNotFound for an unknown user
// and ErrValidation for a range with more than 100,000 entries or From not
// before To.
func (cl *Client) GetStatement(ctx context.Context, userID int64, r StatementRange, opts ...CallOption) (Statement, error) {
	q := url.Values{}
	setTime(q, "from", r.From)
	setTime(q, "to", r.To)
	var out Statement
	err := cl.do(ctx, call{method: http.MethodGet, path: userPath(userID, "/statement"), query: q, out: &out, opts: opts})
	return out, err
}

// GetSigningKey returns the public key with the id keyID, or with "" the
// key the server signs with now (GET /api/signing-key). It returns
// ErrNotFound when the server signs nothing, or never signed with keyID.
// Get the key id from the operator too: a key served by the server it
// checks proves little against that server.
func (cl *Client) GetSigningKey(ctx context.Context, keyID string, opts ...CallOption) (SigningKey, error) {
	q := url.Values{}
	setString(q, "keyId", keyID)
	var out SigningKey
	err := cl.do(ctx, call{method: http.MethodGet, path: "/signing-key", query: q, out: &out, opts: opts})
	return out, err
}

// Checkpoint is a signed RFC 6962 Merkle root over every user's chain head
// at one instant.
type Checkpoint struct {
	ID int64     `json:"id"`
	At time.Time `json:"at"`
	// Users is the number of leaves.
	Users int64  `json:"users"`
	Root  string `json:"root"`
	// KeyID names the key that signed the checkpoint; "" when unsigned.
	KeyID string `json:"keyId"`
	// Signature is the Ed25519 signature; nil when unsigned.
	Signature []byte `json:"signature"`
	// Raw is the checkpoint as the server sent it, the bytes the
	// signature is checked over.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes a checkpoint and keeps its bytes in Raw.
func (c *Checkpoint) UnmarshalJSON(b []byte) error {
	type plain Checkpoint // without this method
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*c = Checkpoint(p)
	c.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// CheckpointFilter selects a page of checkpoints, oldest first.
type CheckpointFilter struct {
	// After is the NextCursor of the previous page (a checkpoint id); ""
	// for the first.
	After string
	// Limit is the page size, 1 to 1000; 0: 50.
	Limit int
}

// ListCheckpoints returns one page of the checkpoints (GET
// /api/checkpoints).
func (cl *Client) ListCheckpoints(ctx context.Context, f CheckpointFilter, opts ...CallOption) (Page[Checkpoint], error) {
	q := url.Values{}
	setString(q, "after", f.After)
	setInt(q, "limit", int64(f.Limit))
	var (
		data []Checkpoint
		info pageInfo
	)
	err := cl.do(ctx, call{method: http.MethodGet, path: "/checkpoints", query: q, out: &data, page: &info, opts: opts})
	return page(data, info), err
}

// CheckpointPages iterates over the pages of checkpoints from f.After to
// the last.
func (cl *Client) CheckpointPages(ctx context.Context, f CheckpointFilter, opts ...CallOption) iter.Seq2[Page[Checkpoint], error] {
	return pages(ctx, f.After, func(ctx context.Context, cursor string) (Page[Checkpoint], error) {
		f.After = cursor
		return cl.ListCheckpoints(ctx, f, opts...)
	}, byNextCursor)
}

// GetCheckpoint returns one checkpoint (GET /api/checkpoints/{id}). It
// returns ErrNotFound for an unknown one.
func (cl *Client) GetCheckpoint(ctx context.Context, id int64, opts ...CallOption) (Checkpoint, error) {
	var out Checkpoint
	err := cl.do(ctx, call{method: http.MethodGet, path: "/checkpoints/" + strconv.FormatInt(id, 10), out: &out, opts: opts})
	return out, err
}

// GetCheckpointProof returns a user's chain head in the checkpoint
// checkpointID (0: the latest) and its inclusion proof (GET
// /api/users/{id}/checkpoint-proof). It returns ErrNotFound when there is
// no such checkpoint (or none yet) or the user has no leaf in it.
func (cl *Client) GetCheckpointProof(ctx context.Context, userID, checkpointID int64, opts ...CallOption) (CheckpointProof, error) {
	q := url.Values{}
	setInt(q, "checkpoint", checkpointID)
	var out CheckpointProof
	err := cl.do(ctx, call{method: http.MethodGet, path: userPath(userID, "/checkpoint-proof"), query: q, out: &out, opts: opts})
	return out, err
}
