package ledger

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
	"github.com/ledgerd/ledgerd/signing"
)

// MaxStatementEntries is the default bound on the entries of one
// statement (Options.MaxStatementEntries); a range with more is refused
// with a ValidationError asking for a narrower one.
const MaxStatementEntries = 100_000

// Statement is a signed slice of one user's ledger: the entries created in
// [From, To), with the head before them (Opening…) and after them
// (Closing…). Chaining Entries from OpeningHash gives ClosingHash, and
// the balances run from OpeningBalance to ClosingBalance.
type Statement struct {
	UserID                         int64
	From, To                       time.Time
	OpeningBalance, ClosingBalance money.Cents
	OpeningSeq, ClosingSeq         int64
	OpeningHash, ClosingHash       Hash
	Entries                        []Entry
	GeneratedAt                    time.Time
	// KeyID names the key that signed the statement; "" when unsigned.
	KeyID string
	// Signature is the Ed25519 signature of SignedBytes; nil when unsigned.
	Signature []byte
}

// statementJSON is the statement as the API writes it; its canonical form
// (RFC 8785) without Signature is what the signature covers.
type statementJSON struct {
	UserID         int64       `json:"userId"`
	From           string      `json:"from"`
	To             string      `json:"to"`
	OpeningBalance money.Cents `json:"openingBalance"`
	ClosingBalance money.Cents `json:"closingBalance"`
	OpeningSeq     int64       `json:"openingSeq"`
	ClosingSeq     int64       `json:"closingSeq"`
	OpeningHash    Hash        `json:"openingHash"`
	ClosingHash    Hash        `json:"closingHash"`
	Entries        []Entry     `json:"entries"`
	GeneratedAt    string      `json:"generatedAt"`
	KeyID          *string     `json:"keyId"`
	Signature      *string     `json:"signature,omitempty"`
}

func (s Statement) toJSON(signed bool) statementJSON {
	j := statementJSON{
		UserID: s.UserID, From: FormatTime(s.From), To: FormatTime(s.To),
		OpeningBalance: s.OpeningBalance, ClosingBalance: s.ClosingBalance,
		OpeningSeq: s.OpeningSeq, ClosingSeq: s.ClosingSeq, OpeningHash: s.OpeningHash, ClosingHash: s.ClosingHash,
		Entries: s.Entries, GeneratedAt: FormatTime(s.GeneratedAt), KeyID: nullable(s.KeyID),
	}
	if j.Entries == nil {
		j.Entries = []Entry{}
	}
	if signed {
		j.Signature = encodeSignature(s.Signature)
	}
	return j
}

// MarshalJSON writes the statement as the API shows it; signature is null
// when the statement is unsigned.
func (s Statement) MarshalJSON() ([]byte, error) {
	j := s.toJSON(true)
	return marshalSigned("statement", j, j.Signature)
}

// SignedBytes is what the statement's signature covers: the RFC 8785
// canonical form of its JSON without the signature member. It is built
// entry by entry (RFC 8785 writes an array as its canonical elements in
// order), so that a statement of 100,000 entries costs one copy of its
// bytes, not a parse tree of them.
func (s Statement) SignedBytes() ([]byte, error) {
	head := s.toJSON(false)
	head.Entries = []Entry{}
	b, err := signing.Canonical(head)
	if err != nil {
		return nil, err
	}
	const slot = `"entries":[`
	i := bytes.Index(b, []byte(slot+"]"))
	if i < 0 {
		return nil, errors.New("canonical statement: no entries member")
	}
	i += len(slot)
	out := make([]byte, 0, len(b)+len(s.Entries)*600)
	out = append(out, b[:i]...)
	for k, e := range s.Entries {
		raw, err := e.MarshalJSON()
		if err != nil {
			return nil, err
		}
		c, err := signing.CanonicalJSON(raw)
		if err != nil {
			return nil, err
		}
		if k > 0 {
			out = append(out, ',')
		}
		out = append(out, c...)
	}
	return append(out, b[i:]...), nil
}

// statementOpening is the last entry before the range: one backward probe
// of entries_user_created_idx (entry times never decrease along seq).
const statementOpening = `SELECT seq, balance_after, hash FROM entries
WHERE user_id = $1 AND created_at < $2
ORDER BY created_at DESC, seq DESC
LIMIT 1`

// statementEntries reads the range, in seq order, one more than allowed
// so that a range too large is seen.
const statementEntries = `SELECT ` + entryColumns + ` FROM entries
WHERE user_id = $1 AND created_at >= $2 AND created_at < $3
ORDER BY created_at, seq
LIMIT $4`

// FindStatement returns user id's statement of the entries created in
// [from, to), signed when the ledger has a Signer. A nil from starts at
// the Unix epoch; a nil to, or one after the present, ends at the present
// (the statement's To says which). Both are taken to the microsecond, the
// precision of entry times.
//
// An entry's time is when its transaction began, so a transaction in
// flight at GeneratedAt may still commit an entry created before To: a
// statement whose To is within the longest transaction (TxTimeout) of
// GeneratedAt may be followed by one of the same range with more entries,
// always after its ClosingSeq (one extends the other; they never disagree
// on an entry). A statement whose To is older than that is final.
//
// It reads in one snapshot, and returns
// ErrNotFound, ErrUnavailable, or a *ValidationError for a range that is
// empty or holds more than MaxStatementEntries entries.
func (l *Ledger) FindStatement(ctx context.Context, id int64, from, to *time.Time) (Statement, error) {
	s := Statement{UserID: id, From: time.Unix(0, 0).UTC()}
	if from != nil {
		s.From = from.Truncate(time.Microsecond)
	}
	err := l.readSnapshotRouted(ctx, l.opts.VerifyTimeout, func(ctx context.Context, tx pgx.Tx) error {
		// The snapshot's own instant: every entry it shows was created before.
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&s.GeneratedAt); err != nil {
			return err
		}
		if asOf, ok := servedAsOf(ctx); ok && asOf.Before(s.GeneratedAt) {
			// On the read replica, entries created up to now may not have
			// arrived yet; every one created up to its as-of has.
			s.GeneratedAt = asOf.Truncate(time.Microsecond)
		}
		s.To = s.GeneratedAt
		if to != nil && to.Before(s.GeneratedAt) {
			s.To = to.Truncate(time.Microsecond)
		}
		if !s.From.Before(s.To) {
			field := "from"
			if from == nil {
				field = "to"
			}
			return invalid(field, "from must be before to (and before the present): got from %s, to %s",
				FormatTime(s.From), FormatTime(s.To))
		}
		if _, err := projection.FindUser(ctx, tx, id); err != nil {
			return err
		}
		var balance int64
		var hash []byte
		err := tx.QueryRow(ctx, statementOpening, id, s.From).Scan(&s.OpeningSeq, &balance, &hash)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		s.OpeningBalance = money.Cents(balance)
		copy(s.OpeningHash[:], hash)
		rows, err := tx.Query(ctx, statementEntries, id, s.From, s.To, l.opts.MaxStatementEntries+1)
		if err != nil {
			return err
		}
		if s.Entries, err = pgx.CollectRows(rows, scanEntry); err != nil {
			return err
		}
		if len(s.Entries) > l.opts.MaxStatementEntries {
			return invalid("to", "the range holds more than %d entries: ask for a narrower range", l.opts.MaxStatementEntries)
		}
		s.ClosingSeq, s.ClosingBalance, s.ClosingHash = s.OpeningSeq, s.OpeningBalance, s.OpeningHash
		if n := len(s.Entries); n > 0 {
			last := s.Entries[n-1]
			s.ClosingSeq, s.ClosingBalance, s.ClosingHash = last.Seq, last.BalanceAfter, last.Hash
		}
		return nil
	})
	if err != nil {
		return Statement{}, fmt.Errorf("statement of user %d: %w", id, err)
	}
	if err := l.sign(&s); err != nil {
		return Statement{}, fmt.Errorf("statement of user %d: %w", id, err)
	}
	return s, nil
}

// sign sets the statement's key id and signature, when the ledger has a
// key.
func (l *Ledger) sign(s *Statement) error {
	if l.opts.Signer == nil {
		return nil
	}
	s.KeyID = l.opts.Signer.KeyID()
	msg, err := s.SignedBytes()
	if err != nil {
		return err
	}
	s.Signature = l.opts.Signer.Sign(msg)
	return nil
}

// StatementError is the first check a statement failed in CheckStatement;
// Reason says which, for a person.
type StatementError struct{ Reason string }

func (e *StatementError) Error() string { return e.Reason }

func failed(format string, args ...any) error {
	return &StatementError{Reason: fmt.Sprintf(format, args...)}
}

// ParseStatement reads a statement as the API writes it: the data member
// of the API's answer, or the whole answer.
func ParseStatement(raw []byte) (Statement, error) {
	data, err := unwrapData(raw)
	if err != nil {
		return Statement{}, err
	}
	var j statementJSON
	if err := strictJSON(data, &j); err != nil {
		return Statement{}, failed("not a statement: %v", err)
	}
	s := Statement{UserID: j.UserID, OpeningBalance: j.OpeningBalance, ClosingBalance: j.ClosingBalance,
		OpeningSeq: j.OpeningSeq, ClosingSeq: j.ClosingSeq, OpeningHash: j.OpeningHash, ClosingHash: j.ClosingHash,
		Entries: j.Entries}
	for name, f := range map[string]struct {
		text string
		dst  *time.Time
	}{"from": {j.From, &s.From}, "to": {j.To, &s.To}, "generatedAt": {j.GeneratedAt, &s.GeneratedAt}} {
		if *f.dst, err = time.Parse(time.RFC3339Nano, f.text); err != nil {
			return Statement{}, failed("statement: %s is not an RFC 3339 instant", name)
		}
	}
	if s.KeyID, s.Signature, err = parseSignature("statement", j.KeyID, j.Signature); err != nil {
		return Statement{}, err
	}
	return s, nil
}

// CheckStatement checks a statement offline, in this order, and returns a
// *StatementError naming the first check that fails (the content first,
// so that a change is named by what it broke, then the signature):
//   - the range: from before to, every entry created in [from, to), the
//     statement's user;
//   - the chain: seq runs on from openingSeq with no gap, each entry's
//     prevHash is the hash before it (openingHash first), each hash
//     recomputes from the entry's canonical encoding, and the last is
//     closingHash at closingSeq;
//   - the balances: each balanceAfter is the one before plus the amount,
//     from openingBalance to closingBalance;
//   - the signature, with the key of keys its keyId names (an unsigned
//     statement fails: it proves nothing).
func CheckStatement(s Statement, keys signing.KeyRing) error {
	if !s.From.Before(s.To) {
		return failed("range: from %s is not before to %s", FormatTime(s.From), FormatTime(s.To))
	}
	seq, hash, balance := s.OpeningSeq, s.OpeningHash, s.OpeningBalance
	if seq == 0 && (hash != Hash{} || balance != 0) {
		return failed("opening: openingSeq 0 needs openingHash of 64 zeros and openingBalance 0")
	}
	for i, e := range s.Entries {
		switch {
		case e.UserID != s.UserID:
			return failed("entry %d: userId %d is not the statement's user %d", i, e.UserID, s.UserID)
		case e.CreatedAt.Before(s.From) || !e.CreatedAt.Before(s.To):
			return failed("entry %d: createdAt %s is outside the range [%s, %s)", i, FormatTime(e.CreatedAt), FormatTime(s.From), FormatTime(s.To))
		case e.Seq != seq+1:
			return failed("entry %d: seq %d does not follow seq %d (a gap or a reordering)", i, e.Seq, seq)
		case e.PrevHash != hash:
			return failed("entry seq %d: prevHash is not the hash of seq %d", e.Seq, seq)
		case !VerifyEntryHash(e):
			return failed("entry seq %d: hash does not recompute from the entry's canonical encoding: the entry was changed", e.Seq)
		case e.BalanceAfter != balance+e.Amount:
			return failed("entry seq %d: balanceAfter %s is not %s plus the amount %s", e.Seq,
				money.Format(e.BalanceAfter), money.Format(balance), money.Format(e.Amount))
		}
		seq, hash, balance = e.Seq, e.Hash, e.BalanceAfter
	}
	switch {
	case seq != s.ClosingSeq:
		return failed("closing: the entries end at seq %d, not closingSeq %d", seq, s.ClosingSeq)
	case hash != s.ClosingHash:
		return failed("closing: the chain ends at hash %s, not closingHash %s", hash, s.ClosingHash)
	case balance != s.ClosingBalance:
		return failed("closing: the balances end at %s, not closingBalance %s", money.Format(balance), money.Format(s.ClosingBalance))
	}
	return checkSignature("statement", s.KeyID, s.Signature, s.SignedBytes, keys)
}

// checkSignature checks an Ed25519 signature of what signed returns with
// the key of keys that keyID names.
func checkSignature(what, keyID string, sig []byte, signed func() ([]byte, error), keys signing.KeyRing) error {
	if sig == nil || keyID == "" {
		return failed("signature of the %s: unsigned, so it proves nothing", what)
	}
	key, ok := keys.Find(keyID)
	if !ok {
		return failed("signature of the %s: no public key given for its keyId %s", what, keyID)
	}
	msg, err := signed()
	if err != nil {
		return failed("signature of the %s: %v", what, err)
	}
	if !key.Verify(msg, sig) {
		return failed("signature of the %s: does not verify with key %s: it was changed after signing", what, keyID)
	}
	return nil
}

// encodeSignature is a signature as documents show it: base64, nil when
// unsigned.
func encodeSignature(sig []byte) *string {
	if sig == nil {
		return nil
	}
	s := base64.StdEncoding.EncodeToString(sig)
	return &s
}

// marshalSigned writes a signed document's JSON form v. Its signature
// member is omitempty, so that the signed form (without it) is the same
// struct; an unsigned document gets it back as null.
func marshalSigned(what string, v any, sig *string) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", what, err)
	}
	if sig == nil {
		b = append(b[:len(b)-1], `,"signature":null}`...)
	}
	return b, nil
}

// parseSignature reads a document's keyId and signature members, either
// null.
func parseSignature(what string, keyID, sig *string) (string, []byte, error) {
	var id string
	if keyID != nil {
		id = *keyID
	}
	if sig == nil {
		return id, nil, nil
	}
	b, err := base64.StdEncoding.Strict().DecodeString(*sig)
	if err != nil {
		return "", nil, failed("%s: signature is not base64", what)
	}
	return id, b, nil
}

// unwrapData returns the data member of an API answer ({"success": true,
// "data": …}), or raw itself when it is not one.
func unwrapData(raw []byte) ([]byte, error) {
	var envelope struct {
		Success *bool           `json:"success"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &envelope); err != nil {
		return nil, failed("not JSON: %v", err)
	}
	if envelope.Success != nil && envelope.Data != nil {
		return envelope.Data, nil
	}
	return raw, nil
}
