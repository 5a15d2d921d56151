package ledger

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

// holdModel is the one-by-one model of balances, holds and the guard
// available = balance − held.
type holdModel struct {
	balance, held map[int64]money.Cents
	holds         map[uuid.UUID]*Hold
}

func (m holdModel) apply(o *op) error {
	if h := o.hold; h != nil {
		switch h.kind {
		case holdPlace:
			if m.balance[h.userID]-m.held[h.userID] < h.amount {
				return ErrInsufficientFunds
			}
			m.held[h.userID] += h.amount
			m.holds[h.holdID] = &Hold{ID: h.holdID, UserID: h.userID, Amount: h.amount, Status: HoldPending}
			return nil
		case holdCapture, holdVoid:
			x, ok := m.holds[h.holdID]
			switch {
			case !ok:
				return ErrHoldNotFound
			case x.Status != HoldPending:
				return &HoldStateError{Status: x.Status}
			}
			if h.kind == holdVoid {
				m.held[x.UserID] -= x.Amount
				x.Status = HoldVoided
				return nil
			}
			a := h.amount
			if a == 0 {
				a = x.Amount
			}
			if a > x.Amount {
				return &ValidationError{Field: "amount"}
			}
			m.held[x.UserID] -= x.Amount
			m.balance[x.UserID] -= a
			x.Status, x.CapturedAmount = HoldCaptured, a
			return nil
		}
	}
	g := o.legs[0]
	next := m.balance[g.userID] + g.draft.Amount
	switch {
	case next < m.held[g.userID]:
		return ErrInsufficientFunds
	case next > money.MaxBalance:
		return ErrBalanceLimit
	}
	m.balance[g.userID] = next
	return nil
}

// sameError reports whether got is the model's want, by kind.
func sameError(got, want error) bool {
	var gv, wv *ValidationError
	var gs, ws *HoldStateError
	switch {
	case want == nil:
		return got == nil
	case errors.As(want, &wv):
		return errors.As(got, &gv) && gv.Field == wv.Field
	case errors.As(want, &ws):
		return errors.As(got, &gs) && gs.Status == ws.Status
	}
	return errors.Is(got, want)
}

// TestEvaluateHoldsMatchOneByOne: batches mixing holds (placed, captured in
// part or in full, voided, unknown, already ended, expired before the batch)
// with deposits and withdrawals near zero are decided exactly as the
// one-by-one model decides them: a debit is refused exactly when it would
// take the balance below held, never when it had room, and a refused op
// leaves no trace.
func TestEvaluateHoldsMatchOneByOne(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(13, 17))
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for round := range 400 {
		m := holdModel{balance: map[int64]money.Cents{}, held: map[int64]money.Cents{}, holds: map[uuid.UUID]*Hold{}}
		locked := projection.Locked{Users: map[int64]projection.User{}, Now: now}
		holds := map[uuid.UUID]*holdState{}
		var known []uuid.UUID
		for id := int64(1); id <= 3; id++ {
			b := money.Cents(rng.IntN(500))
			m.balance[id] = b
			// Holds already there: pending ones within the balance, some
			// of them past their expiry (the batch releases those first).
			var held money.Cents
			for range rng.IntN(3) {
				a := money.Cents(1 + rng.IntN(100))
				if held+a > b {
					break
				}
				held += a
				h := Hold{ID: uuid.New(), UserID: id, Amount: a, Status: HoldPending, ExpiresAt: now.Add(time.Hour)}
				if rng.IntN(3) == 0 {
					h.ExpiresAt = now.Add(-time.Second)
				} else {
					m.held[id] += a
					hh := h
					m.holds[h.ID] = &hh
				}
				holds[h.ID] = &holdState{hold: h}
				known = append(known, h.ID)
			}
			locked.Users[id] = projection.User{ID: id, Balance: b, Held: held, Seq: 1}
		}
		for id, hs := range holds { // expired ones read as expired in the model
			if _, ok := m.holds[id]; !ok {
				x := hs.hold
				x.Status = HoldExpired
				m.holds[id] = &x
			}
		}
		heads := map[int64]chainHead{1: {Seq: 1}, 2: {Seq: 1}, 3: {Seq: 1}}

		ops := make([]*op, 1+rng.IntN(40))
		for i := range ops {
			user := 1 + rng.Int64N(3)
			switch k := rng.IntN(10); {
			case k < 4:
				a := money.Cents(rng.IntN(301) - 200)
				if a == 0 {
					a = 1
				}
				typ := Deposit
				if a < 0 {
					typ = Withdrawal
				}
				ops[i] = &op{legs: []leg{{user, draft{Type: typ, Amount: a}}}}
			case k < 7:
				id := uuid.New()
				known = append(known, id)
				ops[i] = &op{hold: &holdAction{kind: holdPlace, holdID: id, userID: user, amount: money.Cents(1 + rng.IntN(150)), expiresAt: now.Add(time.Hour)}}
			default:
				id := uuid.New() // unknown, sometimes
				if len(known) > 0 && rng.IntN(5) > 0 {
					id = known[rng.IntN(len(known))]
				}
				var owner int64
				if x, ok := m.holds[id]; ok {
					owner = x.UserID
				} else if hs, ok := holds[id]; ok {
					owner = hs.hold.UserID
				}
				for _, o := range ops[:i] { // placed earlier in this batch
					if o.hold != nil && o.hold.holdID == id {
						owner = o.hold.userID
					}
				}
				kind := holdCapture
				if k == 9 {
					kind = holdVoid
				}
				ops[i] = &op{hold: &holdAction{kind: kind, holdID: id, userID: owner, amount: money.Cents(rng.IntN(120))}}
			}
		}
		active := make([]bool, len(ops))
		for i := range active {
			active[i] = true
		}
		out := make([]opResult, len(ops))
		st := &batchState{users: newStates(lockSet(ops), locked, heads), holds: holds, now: now}
		for id := int64(1); id <= 3; id++ { // every user is locked, as its holds are read
			if _, ok := st.users[id]; !ok {
				st.users[id] = &userState{user: locked.Users[id], prevSeq: 1, at: now, exists: true}
			}
		}
		_, err := evaluate(st, ops, active, out)
		require.NoError(t, err)
		for i, o := range ops {
			want := m.apply(o)
			require.True(t, sameError(out[i].err, want), "round %d op %d: got %v, want %v", round, i, out[i].err, want)
		}
		for id := int64(1); id <= 3; id++ {
			u := st.users[id].user
			require.Equal(t, m.balance[id], u.Balance, "round %d user %d balance", round, id)
			require.Equal(t, m.held[id], u.Held, "round %d user %d held", round, id)
			require.LessOrEqual(t, u.Held, u.Balance, "held never exceeds balance")
		}
		for id, x := range m.holds {
			require.Equal(t, x.Status, st.holds[id].hold.Status, "round %d hold status", round)
		}
	}
}
