package client

import (
	"time"

	"github.com/ledgerd/ledgerd/money"
)

// The API's resources, as the client decodes them. Amounts are
// money.Cents, read from the JSON number text exactly (never through a
// float). Ids of entries, transactions, holds and keys are strings (UUIDs,
// lowercase hex); a null in the API is "" (or 0, or nil) here. Unknown
// fields a newer server adds are ignored.

// User is a user's current state (GET /api/users/{id}).
type User struct {
	ID      int64       `json:"id"`
	Balance money.Cents `json:"balance"`
	// Available is Balance − Held: what a debit or a new hold may use.
	Available money.Cents `json:"available"`
	// Held is the sum of the user's pending holds.
	Held      money.Cents `json:"held"`
	CreatedAt time.Time   `json:"createdAt"`
	UpdatedAt time.Time   `json:"updatedAt"`
}

// BalanceUpdate is the answer to a balance change: the user's balance right
// after it, and the entry that records it.
type BalanceUpdate struct {
	ID        int64       `json:"id"`
	Balance   money.Cents `json:"balance"`
	UpdatedAt time.Time   `json:"updatedAt"`
	Entry     EntryRef    `json:"entry"`
}

// EntryRef names an entry: its id and its seq in its user's ledger.
type EntryRef struct {
	ID  string `json:"id"`
	Seq int64  `json:"seq"`
}

// BalanceAt is a user's balance as of an instant, from the ledger.
type BalanceAt struct {
	ID      int64       `json:"id"`
	Balance money.Cents `json:"balance"`
	// At is the instant asked for (the time of the request when none was).
	At time.Time `json:"at"`
	// Seq is the user's last entry at or before At; 0 when there is none.
	Seq int64 `json:"seq"`
}

// Verification is the result of recomputing a user's ledger.
type Verification struct {
	ID int64 `json:"id"`
	// OK is true when every check passed.
	OK      bool  `json:"ok"`
	Entries int64 `json:"entries"`
	// LedgerBalance is the sum of the entries; ProjectedBalance the
	// user's current balance.
	LedgerBalance    money.Cents `json:"ledgerBalance"`
	ProjectedBalance money.Cents `json:"projectedBalance"`
	// ChainValid is true when the hash chain recomputes.
	ChainValid bool `json:"chainValid"`
	// FirstBadSeq is the seq of the first entry a check failed at; 0 when
	// none did.
	FirstBadSeq int64 `json:"firstBadSeq"`
}

// EntryType is the kind of a ledger entry.
type EntryType string

// The entry types.
const (
	EntryOpening     EntryType = "opening"
	EntryDeposit     EntryType = "deposit"
	EntryWithdrawal  EntryType = "withdrawal"
	EntryTransferIn  EntryType = "transfer_in"
	EntryTransferOut EntryType = "transfer_out"
	EntryReversal    EntryType = "reversal"
)

// Entry is one ledger entry: one change of one user's balance, never
// updated. Per user, Seq runs 1, 2, 3… and BalanceAfter is the running sum
// of Amount; Hash chains the entry to the previous one (PrevHash).
type Entry struct {
	ID           string      `json:"id"`
	UserID       int64       `json:"userId"`
	Seq          int64       `json:"seq"`
	Type         EntryType   `json:"type"`
	Amount       money.Cents `json:"amount"`
	BalanceAfter money.Cents `json:"balanceAfter"`
	// TransactionID is the id of the request that wrote the entry, shared
	// by all the entries it wrote (a transfer's, a batch's, a reversal's).
	TransactionID string `json:"transactionId"`
	// TransferID is set on a transfer's entries.
	TransferID string `json:"transferId"`
	// HoldID is set on the withdrawal that captured a hold.
	HoldID string `json:"holdId"`
	// ReversalOf is the entry a reversal entry reverses.
	ReversalOf     string    `json:"reversalOf"`
	Description    string    `json:"description"`
	Reference      string    `json:"reference"`
	IdempotencyKey string    `json:"idempotencyKey"`
	CreatedAt      time.Time `json:"createdAt"`
	// Hash and PrevHash are lowercase hex SHA-256.
	Hash     string `json:"hash"`
	PrevHash string `json:"prevHash"`
}

// Transfer is a committed transfer: its two entries, the payer's
// transfer_out then the payee's transfer_in.
type Transfer struct {
	ID         string      `json:"id"`
	FromUserID int64       `json:"fromUserId"`
	ToUserID   int64       `json:"toUserId"`
	Amount     money.Cents `json:"amount"`
	Entries    [2]Entry    `json:"entries"`
	CreatedAt  time.Time   `json:"createdAt"`
}

// Batch is a committed batch: one entry per change, in the order of the
// changes, all with TransactionID = ID.
type Batch struct {
	ID          string    `json:"id"`
	Entries     []Entry   `json:"entries"`
	Description string    `json:"description"`
	Reference   string    `json:"reference"`
	CreatedAt   time.Time `json:"createdAt"`
}

// Reversal is a committed reversal: one reversal entry per entry of the
// transaction TransactionID, all with TransactionID = ID.
type Reversal struct {
	ID            string    `json:"id"`
	TransactionID string    `json:"transactionId"`
	Entries       []Entry   `json:"entries"`
	CreatedAt     time.Time `json:"createdAt"`
}

// HoldStatus is the state of a hold.
type HoldStatus string

// The states of a hold: pending until captured, voided or expired.
const (
	HoldPending  HoldStatus = "pending"
	HoldCaptured HoldStatus = "captured"
	HoldVoided   HoldStatus = "voided"
	HoldExpired  HoldStatus = "expired"
)

// Hold is money of a user's balance reserved for a later withdrawal.
type Hold struct {
	ID     string      `json:"id"`
	UserID int64       `json:"userId"`
	Amount money.Cents `json:"amount"`
	// CapturedAmount is what the capture withdrew; nil unless captured.
	CapturedAmount *money.Cents `json:"capturedAmount"`
	Status         HoldStatus   `json:"status"`
	ExpiresAt      time.Time    `json:"expiresAt"`
	CreatedAt      time.Time    `json:"createdAt"`
	UpdatedAt      time.Time    `json:"updatedAt"`
	Description    string       `json:"description"`
	Reference      string       `json:"reference"`
	// CaptureEntry is the capture's withdrawal entry; nil unless captured.
	CaptureEntry *EntryRef `json:"captureEntry"`
}

// SigningKey is a public key that signs statements and checkpoints.
type SigningKey struct {
	// KeyID is the lowercase hex SHA-256 of the key's DER
	// SubjectPublicKeyInfo.
	KeyID string `json:"keyId"`
	// PublicKeyPEM is the Ed25519 public key as a PEM "PUBLIC KEY" block.
	PublicKeyPEM string `json:"publicKeyPem"`
}

// CheckpointProof is a user's chain head in a checkpoint and the RFC 6962
// inclusion proof of its leaf.
type CheckpointProof struct {
	CheckpointID int64 `json:"checkpointId"`
	UserID       int64 `json:"userId"`
	// Seq and Hash are the user's last entry at the checkpoint's instant
	// (0 and 64 zeros when there was none).
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
	LeafIndex uint64 `json:"leafIndex"`
	TreeSize  uint64 `json:"treeSize"`
	LeafHash  string `json:"leafHash"`
	// Proof is the audit path from the leaf to Root, bottom-up.
	Proof []string `json:"proof"`
	Root  string   `json:"root"`
}
