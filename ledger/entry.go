package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ledgerd/ledgerd/money"
)

// EntryType says what kind of change an entry records.
type EntryType string

// The entry types. Deposits, openings and incoming transfers have a positive
// amount; withdrawals and outgoing transfers a negative one; a reversal the
// opposite of the entry it reverses (ReversalOf).
const (
	Opening       EntryType = "opening"
	Deposit       EntryType = "deposit"
	Withdrawal    EntryType = "withdrawal"
	TransferIn    EntryType = "transfer_in"
	TransferOut   EntryType = "transfer_out"
	ReversalEntry EntryType = "reversal"
)

// EntryTypes lists every entry type.
var EntryTypes = []EntryType{Opening, Deposit, Withdrawal, TransferIn, TransferOut, ReversalEntry}

// Valid reports whether t is one of EntryTypes.
func (t EntryType) Valid() bool {
	for _, v := range EntryTypes {
		if t == v {
			return true
		}
	}
	return false
}

// Hash is a SHA-256 digest, written as lowercase hex.
type Hash [sha256.Size]byte

// String returns the lowercase hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText writes the lowercase hex form.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads the lowercase hex form.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// Entry is one ledger entry: a change of one user's balance.
type Entry struct {
	ID             uuid.UUID
	UserID         int64
	Seq            int64
	Type           EntryType
	Amount         money.Cents
	BalanceAfter   money.Cents
	TransferID     uuid.NullUUID
	Description    string // "" when absent
	Reference      string // "" when absent
	IdempotencyKey string // "" when absent
	CreatedAt      time.Time
	PrevHash       Hash
	Hash           Hash
	// TransactionID is the request that wrote the entry, shared by every
	// entry of one request (a transfer's id for its two entries). Version-1
	// entries, written before it was stored, read as their transfer's id or
	// their own id (see TransactionOf); their hash does not cover it.
	TransactionID uuid.NullUUID
	// HoldID is the hold a withdrawal captures; ReversalOf the entry a
	// reversal entry reverses.
	HoldID, ReversalOf uuid.NullUUID
	// Version is the version of the canonical encoding the hash covers:
	// 2 for every entry written now, 1 for entries written before.
	Version int
}

// CurrentVersion is the canonical encoding of the entries written now.
const CurrentVersion = 2

// TimeLayout is how the API writes instants: UTC with microseconds, the
// precision PostgreSQL stores.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// committedAt is when a request's entries were committed: the latest of
// their times (a user's entries are never earlier than its previous one,
// so the entries of one transaction may differ).
func committedAt(es []Entry) time.Time {
	var t time.Time
	for _, e := range es {
		if e.CreatedAt.After(t) {
			t = e.CreatedAt
		}
	}
	return t
}

// FormatTime writes t in TimeLayout, in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Canonical returns the canonical encoding of e that its hash covers, in
// the version e.Version: one "name=value\n" line per field, in this order,
// in UTF-8:
//
//	ledgerd-entry-v1 (or ledgerd-entry-v2)
//	id=<uuid, lowercase, hyphenated>
//	user_id=<decimal>
//	seq=<decimal>
//	type=<type>
//	amount=<signed decimal cents>
//	balance_after=<decimal cents>
//	transfer_id=<uuid, or nothing>
//	description=<byte length>:<bytes>
//	reference=<byte length>:<bytes>
//	idempotency_key=<byte length>:<bytes>
//	created_at=<microseconds since the Unix epoch>
//
// and, in version 2 only:
//
//	transaction_id=<uuid>
//	hold_id=<uuid, or nothing>
//	reversal_of=<uuid, or nothing>
//
// Absent text fields are written as "0:". docs/audit.md shows how to
// recompute it with psql and sha256sum.
func (e Entry) Canonical() []byte {
	b := make([]byte, 0, 384+len(e.Description)+len(e.Reference)+len(e.IdempotencyKey))
	b = append(b, "ledgerd-entry-v"...)
	b = strconv.AppendInt(b, int64(max(e.Version, 1)), 10)
	b = append(b, '\n')
	b = append(b, "id="...)
	b = append(b, e.ID.String()...)
	b = append(b, "\nuser_id="...)
	b = strconv.AppendInt(b, e.UserID, 10)
	b = append(b, "\nseq="...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, "\ntype="...)
	b = append(b, e.Type...)
	b = append(b, "\namount="...)
	b = strconv.AppendInt(b, int64(e.Amount), 10)
	b = append(b, "\nbalance_after="...)
	b = strconv.AppendInt(b, int64(e.BalanceAfter), 10)
	b = append(b, "\ntransfer_id="...)
	if e.TransferID.Valid {
		b = append(b, e.TransferID.UUID.String()...)
	}
	b = appendText(b, "\ndescription=", e.Description)
	b = appendText(b, "\nreference=", e.Reference)
	b = appendText(b, "\nidempotency_key=", e.IdempotencyKey)
	b = append(b, "\ncreated_at="...)
	b = strconv.AppendInt(b, e.CreatedAt.UnixMicro(), 10)
	if e.Version >= 2 {
		b = appendUUID(b, "\ntransaction_id=", e.TransactionID)
		b = appendUUID(b, "\nhold_id=", e.HoldID)
		b = appendUUID(b, "\nreversal_of=", e.ReversalOf)
	}
	b = append(b, '\n')
	return b
}

func appendUUID(b []byte, name string, id uuid.NullUUID) []byte {
	b = append(b, name...)
	if id.Valid {
		b = append(b, id.UUID.String()...)
	}
	return b
}

func appendText(b []byte, name, s string) []byte {
	b = append(b, name...)
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

// ComputeHash returns SHA-256(e.PrevHash || e.Canonical()).
func (e Entry) ComputeHash() Hash {
	h := sha256.New()
	h.Write(e.PrevHash[:])
	h.Write(e.Canonical())
	var out Hash
	copy(out[:], h.Sum(nil))
	return out
}

// entryJSON is the entry as the API and the events show it.
type entryJSON struct {
	ID             uuid.UUID   `json:"id"`
	UserID         int64       `json:"userId"`
	Seq            int64       `json:"seq"`
	Type           EntryType   `json:"type"`
	Amount         money.Cents `json:"amount"`
	BalanceAfter   money.Cents `json:"balanceAfter"`
	TransactionID  *uuid.UUID  `json:"transactionId"`
	TransferID     *uuid.UUID  `json:"transferId"`
	HoldID         *uuid.UUID  `json:"holdId"`
	ReversalOf     *uuid.UUID  `json:"reversalOf"`
	Description    *string     `json:"description"`
	Reference      *string     `json:"reference"`
	IdempotencyKey *string     `json:"idempotencyKey"`
	CreatedAt      string      `json:"createdAt"`
	Hash           Hash        `json:"hash"`
	PrevHash       Hash        `json:"prevHash"`
}

// MarshalJSON writes the entry as the contract shows it: absent optional
// fields are null, amounts are exact JSON numbers, hashes lowercase hex.
func (e Entry) MarshalJSON() ([]byte, error) {
	j := entryJSON{
		ID: e.ID, UserID: e.UserID, Seq: e.Seq, Type: e.Type,
		Amount: e.Amount, BalanceAfter: e.BalanceAfter,
		Description: nullable(e.Description), Reference: nullable(e.Reference),
		IdempotencyKey: nullable(e.IdempotencyKey),
		CreatedAt:      FormatTime(e.CreatedAt), Hash: e.Hash, PrevHash: e.PrevHash,
	}
	j.TransferID, j.TransactionID, j.HoldID, j.ReversalOf = nullUUID(e.TransferID), nullUUID(e.TransactionID), nullUUID(e.HoldID), nullUUID(e.ReversalOf)
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode entry: %w", err)
	}
	return b, nil
}

func nullUUID(id uuid.NullUUID) *uuid.UUID {
	if !id.Valid {
		return nil
	}
	return &id.UUID
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// UnmarshalJSON reads an entry as MarshalJSON writes it, exactly (amounts
// as decimal text, instants to the microsecond). Version is left 0: the
// JSON form does not say which canonical encoding the hash covers (see
// VerifyEntryHash).
func (e *Entry) UnmarshalJSON(b []byte) error {
	var j entryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decode entry: %w", err)
	}
	created, err := time.Parse(time.RFC3339Nano, j.CreatedAt)
	if err != nil {
		return fmt.Errorf("decode entry: createdAt: %w", err)
	}
	*e = Entry{
		ID: j.ID, UserID: j.UserID, Seq: j.Seq, Type: j.Type, Amount: j.Amount, BalanceAfter: j.BalanceAfter,
		Description: deref(j.Description), Reference: deref(j.Reference), IdempotencyKey: deref(j.IdempotencyKey),
		CreatedAt:  created,
		TransferID: toNullUUID(j.TransferID), TransactionID: toNullUUID(j.TransactionID),
		HoldID: toNullUUID(j.HoldID), ReversalOf: toNullUUID(j.ReversalOf),
		Hash: j.Hash, PrevHash: j.PrevHash,
	}
	return nil
}

func toNullUUID(id *uuid.UUID) uuid.NullUUID {
	if id == nil {
		return uuid.NullUUID{}
	}
	return uuid.NullUUID{UUID: *id, Valid: true}
}

// ParseHash reads a hash in its lowercase hex form.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) || strings.ToLower(s) != s {
		return h, fmt.Errorf("%q is not 64 lowercase hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%q is not 64 lowercase hex digits", s)
	}
	return h, nil
}

// VerifyEntryHash reports whether e's hash recomputes from e.PrevHash and
// its canonical encoding, in the version e.Version names or, when it is 0
// (an entry read from JSON), in either: a version-1 entry's hash does not
// cover its transaction id, which must then be the one TransactionOf
// derives.
func VerifyEntryHash(e Entry) bool {
	if e.Version != 0 {
		return e.ComputeHash() == e.Hash
	}
	v2 := e
	v2.Version = 2
	if v2.ComputeHash() == e.Hash {
		return true
	}
	v1 := e
	v1.Version = 1
	v1.TransactionID = uuid.NullUUID{}
	return !e.HoldID.Valid && !e.ReversalOf.Valid && e.TransactionID.Valid &&
		e.TransactionID.UUID == TransactionOf(v1) && v1.ComputeHash() == e.Hash
}
