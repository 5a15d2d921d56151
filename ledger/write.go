package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/outbox"
	"github.com/ledgerd/ledgerd/projection"
)

// The one write path. Every request that changes the ledger (a deposit or
// withdrawal, a transfer, a batch, a reversal, a user's creation, a hold's
// placement, capture or void) is an op: a set of legs, one
// balance change of one user each, that is written in full or not at all.
// One transaction carries a batch of ops (group commit, see
// groupcommit.go), in two round trips and a commit:
//
//  1. claim the ops' idempotency keys, lock the users' rows in id order and
//     read their chain heads; then, in the process, decide each op in
//     arrival order against the running state of its users, exactly as if
//     the ops were applied one by one (a refused op changes nothing of that
//     state);
//  2. write what was accepted, all at once: new users, entries, outbox
//     rows, the users' new state, and the decided answers of the keys.
//
// Nothing is written before every op of the batch is decided, so a refusal
// can never leave half of an op behind, and the decided refusals are
// stored with their keys in the same transaction as the accepted ops.

// draft is an entry before the write path has given it its place in the
// user's chain.
type draft struct {
	Type           EntryType
	Amount         money.Cents
	TransferID     uuid.NullUUID
	Description    string
	Reference      string
	IdempotencyKey string
	HoldID         uuid.NullUUID
	ReversalOf     uuid.NullUUID
}

// leg is one user's balance change within an op.
type leg struct {
	userID int64
	draft  draft
}

// op is one client request on the write path.
type op struct {
	// create, when not 0, is the id of a user this op creates, before its
	// legs apply; assigned says the id was picked by AssignID, not by the
	// client (a taken id is then errIDTaken, and the caller picks another).
	create   int64
	assigned bool
	legs     []leg
	hold     *holdAction     // a hold's placement, capture or void, or nil
	reversal *reversalAction // the entries a reversal undoes, or nil
	claim    *claim          // the op's Idempotency-Key, or nil
	// perChange makes the op a batch's: its legs are distinct users'
	// changes, decided in order, and a refusal names the first leg refused
	// (a *ChangeError).
	perChange bool
	// txID is the request's transaction id, on each of its entries; submit
	// makes one when the method gave none.
	txID uuid.UUID

	ctx   context.Context
	done  chan opResult // buffered: the committer never blocks on it
	users []int64       // userIDs(), kept by submit
}

// userIDs lists the users the op touches, each once.
func (o *op) userIDs() []int64 {
	ids := make([]int64, 0, len(o.legs)+1)
	if o.create != 0 {
		ids = append(ids, o.create)
	}
	for _, g := range o.legs {
		if !slices.Contains(ids, g.userID) {
			ids = append(ids, g.userID)
		}
	}
	if o.hold != nil && o.hold.userID != 0 && !slices.Contains(ids, o.hold.userID) {
		ids = append(ids, o.hold.userID)
	}
	return ids
}

// opResult is the outcome of an op.
type opResult struct {
	// entries holds one entry per leg, in leg order.
	entries []Entry
	// users holds, per leg, the leg's user right after the op; for an op
	// that only creates a user, that user.
	users []projection.User
	// hold is the hold after a hold op.
	hold *Hold
	err  error
}

// errIDTaken means an assigned id was taken by a client meanwhile; the op
// wrote nothing and its key is released.
var errIDTaken = errors.New("assigned user id taken meanwhile")

// errKeyTaken means another transaction committed the op's key first; the
// stored answer is looked up after this transaction ends.
var errKeyTaken = errors.New("idempotency key taken")

// writeTx runs the batch's ops inside tx and returns each op's outcome. An
// error means the transaction must be rolled back and no outcome holds.
func writeTx(ctx context.Context, tx pgx.Tx, ops []*op) ([]opResult, error) {
	out := make([]opResult, len(ops))
	keys, dupOf := dedupeKeys(ops)

	// Round trip 1: the keys first (a claim may wait for a concurrent
	// holder, and holds no row lock then), the rows, the chain heads. The
	// heads are read by a statement that starts after the lock is held, so
	// under READ COMMITTED it sees the last committed entry.
	var (
		ids     = lockSet(ops)
		claimed = map[keyRef]bool{}
		locked  projection.Locked
		heads   = map[int64]chainHead{}
		// reversed holds the entries the batch's reversals name that were
		// reversed before.
		reversed = map[uuid.UUID]bool{}
	)
	holds := map[uuid.UUID]*holdState{}
	b := &pgx.Batch{}
	queueClaim(b, keys, claimed)
	projection.QueueLock(b, ids, &locked)
	queueChainHeads(b, ids, heads)
	queueReversed(b, ops, reversed)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	// The holds, only when the batch names one or a locked user holds
	// some (held > 0: only then can one have expired): changes of users
	// without holds pay nothing for them.
	named, holders := holdsNamed(ops), usersHolding(locked)
	if len(named) > 0 || len(holders) > 0 {
		b = &pgx.Batch{}
		queueHoldsLock(b, named, holders, holds)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return nil, err
		}
	}

	active := make([]bool, len(ops))
	for i, o := range ops {
		switch {
		case dupOf[i] >= 0:
		case o.claim != nil && !claimed[o.claim.ref()]:
			out[i].err = errKeyTaken
		default:
			active[i] = true
		}
	}
	st := &batchState{users: newStates(ids, locked, heads), holds: holds, reversed: reversed, now: locked.Now}
	w, err := evaluate(st, ops, active, out)
	if err != nil {
		return nil, err
	}

	// Round trip 2: every write at once.
	b = &pgx.Batch{}
	if err := w.queue(b); err != nil {
		return nil, err
	}
	decisions, released := keyOutcomes(ops, active, out)
	queueDecide(b, decisions)
	queueRelease(b, released)
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return nil, err
		}
	}
	answerRepeats(ops, dupOf, out)
	return out, nil
}

// holdsNamed lists the holds the ops capture or void.
func holdsNamed(ops []*op) []uuid.UUID {
	var ids []uuid.UUID
	for _, o := range ops {
		if o.hold != nil && (o.hold.kind == holdCapture || o.hold.kind == holdVoid) {
			ids = append(ids, o.hold.holdID)
		}
	}
	return ids
}

// usersHolding lists the locked users with holds (held > 0).
func usersHolding(locked projection.Locked) []int64 {
	var ids []int64
	for id, u := range locked.Users {
		if u.Held > 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

// lockSet lists every user of the ops, each once, in id order.
func lockSet(ops []*op) []int64 {
	var ids []int64
	for _, o := range ops {
		ids = append(ids, o.userIDs()...)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// userState is one user's running state while a batch is evaluated.
type userState struct {
	user    projection.User
	head    Hash
	prevSeq int64     // the seq read under the lock
	at      time.Time // the time of this transaction's entries of the user
	exists  bool
	created bool // created by this transaction
	changed bool
	broken  error // the projection disagrees with the ledger
}

func newStates(ids []int64, locked projection.Locked, heads map[int64]chainHead) map[int64]*userState {
	states := make(map[int64]*userState, len(ids))
	for _, id := range ids {
		u, ok := locked.Users[id]
		if !ok {
			states[id] = &userState{user: projection.User{ID: id}}
			continue
		}
		h := heads[id]
		s := &userState{user: u, head: h.Hash, prevSeq: u.Seq, at: locked.ChangeTime(u), exists: true}
		if h.Seq != u.Seq {
			s.broken = fmt.Errorf("user %d: projection is at seq %d but the ledger at %d", id, u.Seq, h.Seq)
		}
		states[id] = s
	}
	return states
}

// batchState is the running state of a batch's users and holds, the
// entries reversed (before the batch or by its ops), and the transaction's
// time.
type batchState struct {
	users    map[int64]*userState
	holds    map[uuid.UUID]*holdState
	reversed map[uuid.UUID]bool
	now      time.Time
}

// writes is what a batch's accepted ops write.
type writes struct {
	created     []projection.User
	entries     []Entry
	sets        []projection.Set
	holdChanges []holdChange
	newHolds    []Hold
}

// evaluate first releases the locked users' holds that have expired (so
// that the batch decides against exact balances, and held never exceeds
// balance), then decides each active op in order against the running state
// of its users and holds and records its outcome in out. An op is accepted
// only when all of it is: a refused op leaves the state as it found it.
func evaluate(st *batchState, ops []*op, active []bool, out []opResult) (writes, error) {
	var w writes
	for _, id := range sortedKeys(st.holds) {
		hs := st.holds[id]
		if hs.hold.Status != HoldPending || hs.hold.ExpiresAt.After(st.now) {
			continue
		}
		u := st.users[hs.hold.UserID]
		if u == nil { // only holds of locked users are read
			continue
		}
		u.user.Held -= hs.hold.Amount
		u.changed = true
		hs.hold.Status, hs.hold.UpdatedAt, hs.change = HoldExpired, st.now, string(HoldExpired)
		c, err := newHoldChange(hs)
		if err != nil {
			return writes{}, err
		}
		w.holdChanges = append(w.holdChanges, c)
	}
	for i, o := range ops {
		if !active[i] {
			continue
		}
		touched, touchedHolds, res := evaluateOp(st, o)
		out[i] = res
		if res.err != nil {
			continue
		}
		for id, s := range touched {
			*st.users[id] = *s
		}
		if o.reversal != nil {
			for _, id := range o.reversal.entries {
				st.reversed[id] = true
			}
		}
		for _, id := range sortedKeys(touchedHolds) {
			hs := touchedHolds[id]
			st.holds[id] = hs
			c, err := newHoldChange(hs)
			if err != nil {
				return writes{}, err
			}
			w.holdChanges = append(w.holdChanges, c)
			if hs.new {
				w.newHolds = append(w.newHolds, hs.hold)
			}
		}
		w.entries = append(w.entries, res.entries...)
	}
	ids := make([]int64, 0, len(st.users))
	for id := range st.users {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		switch s := st.users[id]; {
		case s.created:
			w.created = append(w.created, s.user)
		case s.changed:
			w.sets = append(w.sets, projection.Set{User: s.user, PrevSeq: s.prevSeq})
		}
	}
	return w, nil
}

// newHoldChange records hs's change, with an id of its own.
func newHoldChange(hs *holdState) (holdChange, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return holdChange{}, fmt.Errorf("new hold change id: %w", err)
	}
	return holdChange{id: id, change: hs.change, hold: hs.hold}, nil
}

func sortedKeys[V any](m map[uuid.UUID]V) []uuid.UUID {
	keys := make([]uuid.UUID, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	return keys
}

// evaluateOp decides one op on copies of its users' and holds' states. It
// returns the copies to keep when the op is accepted, and the op's outcome.
func evaluateOp(st *batchState, o *op) (map[int64]*userState, map[uuid.UUID]*holdState, opResult) {
	now := st.now
	touched := make(map[int64]*userState, len(o.legs)+1)
	get := func(id int64) *userState {
		if s, ok := touched[id]; ok {
			return s
		}
		c := *st.users[id]
		touched[id] = &c
		return &c
	}
	touchedHolds := map[uuid.UUID]*holdState{}
	var res opResult
	if o.create != 0 {
		s := get(o.create)
		switch {
		case s.exists && o.assigned:
			return nil, nil, opResult{err: errIDTaken}
		case s.exists:
			return nil, nil, opResult{err: ErrUserExists}
		}
		s.exists, s.created, s.at = true, true, now
		s.user = projection.User{ID: o.create, CreatedAt: now, UpdatedAt: now}
		if len(o.legs) == 0 {
			res.users = []projection.User{s.user}
		}
	}
	legs := o.legs
	var captured *holdState
	if h := o.hold; h != nil {
		var hs *holdState
		if h.kind == holdCapture || h.kind == holdVoid {
			found, ok := st.holds[h.holdID]
			if !ok || h.userID == 0 {
				return nil, nil, opResult{err: ErrHoldNotFound}
			}
			if found.hold.Status != HoldPending {
				return nil, nil, opResult{err: &HoldStateError{Status: found.hold.Status}}
			}
			c := *found
			hs = &c
		}
		s := get(h.userID)
		switch {
		case s.broken != nil:
			return nil, nil, opResult{err: s.broken}
		case !s.exists:
			return nil, nil, opResult{err: ErrNotFound}
		}
		switch h.kind {
		case holdPlace:
			if s.user.Balance-s.user.Held < h.amount {
				return nil, nil, opResult{err: ErrInsufficientFunds}
			}
			s.user.Held += h.amount
			hs = &holdState{new: true, change: "placed", hold: Hold{
				ID: h.holdID, UserID: h.userID, Amount: h.amount, Status: HoldPending, ExpiresAt: h.expiresAt,
				CreatedAt: now, UpdatedAt: now, Description: h.desc, Reference: h.ref}}
		case holdVoid:
			s.user.Held -= hs.hold.Amount
			hs.hold.Status, hs.change = HoldVoided, string(HoldVoided)
		case holdCapture:
			amount := h.amount
			if amount == 0 {
				amount = hs.hold.Amount
			}
			if amount > hs.hold.Amount {
				return nil, nil, opResult{err: invalid("amount", "amount must be at most the hold's amount, %s", money.Format(hs.hold.Amount))}
			}
			// The hold's reservation is released and the captured amount
			// withdrawn in the same op: the withdrawal leg below needs no
			// room beyond what the hold kept.
			s.user.Held -= hs.hold.Amount
			hs.hold.Status, hs.hold.CapturedAmount, hs.change = HoldCaptured, amount, string(HoldCaptured)
			d := draft{Type: Withdrawal, Amount: -amount, Description: hs.hold.Description,
				Reference: hs.hold.Reference, HoldID: uuid.NullUUID{UUID: hs.hold.ID, Valid: true}}
			if o.claim != nil { // the entry carries the capture's key, as every entry its request's
				d.IdempotencyKey = o.claim.key
			}
			legs = []leg{{h.userID, d}}
			captured = hs
		}
		if hs != nil {
			s.changed = true
			hs.hold.UpdatedAt = now
			touchedHolds[hs.hold.ID] = hs
			res.users = []projection.User{s.user}
		}
	}
	if o.reversal != nil {
		if err := checkReversal(st, o.reversal); err != nil {
			return nil, nil, opResult{err: err}
		}
	}
	// Every user must exist before any amount is looked at: a request that
	// names an unknown user is not found, whatever its amounts. A batch's
	// changes are distinct users' and decided in order instead: its first
	// refused change, whatever the reason, is the one named.
	missing, refusal := len(legs), error(nil)
	for i, g := range legs {
		s := get(g.userID)
		refusal = s.broken
		if refusal == nil && !s.exists {
			refusal = ErrNotFound
		}
		if refusal != nil {
			missing = i
			break
		}
	}
	refuse := func(i int, err error) opResult {
		if o.perChange {
			err = &ChangeError{Index: i, Err: err}
		}
		return opResult{err: err}
	}
	if refusal != nil && !o.perChange {
		return nil, nil, refuse(missing, refusal)
	}
	if len(legs) > 0 {
		res.users = nil
	}
	for i, g := range legs {
		if i == missing {
			return nil, nil, refuse(i, refusal)
		}
		s := get(g.userID)
		next := s.user.Balance + g.draft.Amount // |amount| ≤ MaxAmount: no overflow
		switch {
		case next < s.user.Held: // a debit needs available = balance − held ≥ |amount|
			return nil, nil, refuse(i, ErrInsufficientFunds)
		case next > money.MaxBalance:
			return nil, nil, refuse(i, ErrBalanceLimit)
		}
		id, err := uuid.NewV7()
		if err != nil {
			return nil, nil, opResult{err: fmt.Errorf("new entry id: %w", err)}
		}
		e := Entry{
			ID: id, UserID: g.userID, Seq: s.user.Seq + 1, Type: g.draft.Type, Amount: g.draft.Amount,
			BalanceAfter: next, TransferID: g.draft.TransferID, HoldID: g.draft.HoldID, ReversalOf: g.draft.ReversalOf,
			Description: g.draft.Description, Reference: g.draft.Reference,
			IdempotencyKey: g.draft.IdempotencyKey, CreatedAt: s.at, PrevHash: s.head,
			TransactionID: uuid.NullUUID{UUID: o.txID, Valid: true}, Version: CurrentVersion,
		}
		e.Hash = e.ComputeHash()
		s.user.Balance, s.user.Seq, s.user.UpdatedAt, s.head, s.changed = next, e.Seq, s.at, e.Hash, true
		res.entries = append(res.entries, e)
		res.users = append(res.users, s.user)
	}
	if captured != nil {
		captured.hold.CaptureEntry = EntryRef{ID: res.entries[0].ID, Seq: res.entries[0].Seq}
	}
	for _, hs := range touchedHolds {
		h := hs.hold
		res.hold = &h
	}
	return touched, touchedHolds, res
}

// queue queues the writes onto b, in the order the constraints need: users
// before their entries, entries before the rows that count them.
func (w writes) queue(b *pgx.Batch) error {
	projection.QueueInsert(b, w.created)
	msgs := make([]outbox.Message, 0, len(w.entries)+len(w.holdChanges))
	for _, e := range w.entries {
		msgs = append(msgs, newEvent(e))
	}
	for _, c := range w.holdChanges {
		msgs = append(msgs, newHoldEvent(c))
	}
	if len(w.entries) > 0 {
		queueInsertEntries(b, w.entries)
	}
	queueHoldWrites(b, w.holdChanges, w.newHolds)
	if err := outbox.QueueEnqueue(b, msgs); err != nil {
		return err
	}
	projection.QueueSet(b, w.sets)
	return nil
}

const entryChainHeads = `SELECT u.id, e.seq, e.hash FROM unnest($1::bigint[]) AS u(id)
CROSS JOIN LATERAL (
    SELECT seq, hash FROM entries WHERE user_id = u.id ORDER BY seq DESC LIMIT 1) e`

// chainHead is the last entry of a user's chain: seq 0 and the zero hash
// before the first entry.
type chainHead struct {
	Seq  int64
	Hash Hash
}

// queueChainHeads queues the read of the users' chain heads into out; a
// user without entries is left out.
func queueChainHeads(b *pgx.Batch, ids []int64, out map[int64]chainHead) {
	b.Queue(entryChainHeads, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				id int64
				h  chainHead
				hb []byte
			)
			if err := rows.Scan(&id, &h.Seq, &hb); err != nil {
				return fmt.Errorf("read chain heads: %w", err)
			}
			copy(h.Hash[:], hb)
			out[id] = h
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read chain heads: %w", err)
		}
		return nil
	})
}
