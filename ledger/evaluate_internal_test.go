package ledger

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

// model is the one-by-one model of the write path: each op alone, in
// order, all its legs or none, against plain balances.
type model struct {
	balances map[int64]money.Cents // absent: no such user
}

func (m model) apply(o *op) error {
	next := map[int64]money.Cents{}
	if o.create != 0 {
		if _, ok := m.balances[o.create]; ok {
			return ErrUserExists
		}
		next[o.create] = 0
	}
	for _, g := range o.legs {
		if _, ok := m.balances[g.userID]; !ok && g.userID != o.create {
			return ErrNotFound
		}
	}
	for _, g := range o.legs {
		b, ok := next[g.userID]
		if !ok {
			b = m.balances[g.userID]
		}
		switch b += g.draft.Amount; {
		case b < 0:
			return ErrInsufficientFunds
		case b > money.MaxBalance:
			return ErrBalanceLimit
		}
		next[g.userID] = b
	}
	for id, b := range next {
		m.balances[id] = b
	}
	return nil
}

// TestEvaluateMatchesOneByOne checks evaluate, the heart of the write
// path, against the one-by-one model: random batches over a few users
// (repeated within a batch), with single changes, two-leg transfers and
// creations, near both balance bounds and with unknown users. A refused op
// must leave no trace in the state, and the entries must form valid chains.
func TestEvaluateMatchesOneByOne(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	amount := func() money.Cents {
		for {
			if a := money.Cents(rng.IntN(801) - 400); a != 0 {
				return a
			}
		}
	}
	for round := range 500 {
		// Users 1..4 exist, 5 and 6 do not (6 may be created).
		m := model{balances: map[int64]money.Cents{}}
		locked := projection.Locked{Users: map[int64]projection.User{}, Now: now}
		heads := map[int64]chainHead{}
		for id := int64(1); id <= 4; id++ {
			b := money.Cents(rng.IntN(1000))
			if (round+int(id))%2 == 1 {
				b = money.MaxBalance - money.Cents(rng.IntN(1000))
			}
			m.balances[id] = b
			locked.Users[id] = projection.User{ID: id, Balance: b, Seq: 10, UpdatedAt: now.Add(-time.Second)}
			heads[id] = chainHead{Seq: 10, Hash: Hash{byte(id)}}
		}
		ops := make([]*op, 1+rng.IntN(64))
		for i := range ops {
			user := func() int64 { return 1 + rng.Int64N(6) }
			switch k := rng.IntN(10); {
			case k < 6:
				a := amount()
				ops[i] = &op{legs: []leg{{user(), draft{Type: Deposit, Amount: a}}}}
			case k < 9:
				from, to := user(), user()
				a := money.Cents(1 + rng.IntN(400))
				ops[i] = &op{legs: []leg{{from, draft{Type: TransferOut, Amount: -a}}, {to, draft{Type: TransferIn, Amount: a}}}}
			default:
				ops[i] = &op{create: 6}
				if rng.IntN(2) == 0 {
					ops[i].legs = []leg{{6, draft{Type: Opening, Amount: money.Cents(1 + rng.IntN(100))}}}
				}
			}
		}
		active := make([]bool, len(ops))
		for i := range active {
			active[i] = true
		}
		out := make([]opResult, len(ops))
		st := &batchState{users: newStates(lockSet(ops), locked, heads), holds: map[uuid.UUID]*holdState{}, now: now}
		w, err := evaluate(st, ops, active, out)
		require.NoError(t, err)

		chains := map[int64]*chainCheck{}
		for id := int64(1); id <= 4; id++ {
			chains[id] = &chainCheck{chainOK: true, n: 10, balance: m.balances[id], prevHash: heads[id].Hash}
		}
		chains[6] = &chainCheck{chainOK: true}
		var accepted int
		for i, o := range ops {
			want := m.apply(o)
			require.ErrorIs(t, out[i].err, want, "round %d op %d", round, i)
			if want != nil {
				require.Empty(t, out[i].entries, "a refused op has no entries")
				continue
			}
			require.Len(t, out[i].entries, len(o.legs))
			for j, e := range out[i].entries {
				require.Equal(t, o.legs[j].userID, e.UserID)
				require.Equal(t, e.BalanceAfter, out[i].users[j].Balance)
				require.Equal(t, e.Seq, out[i].users[j].Seq)
				require.Equal(t, w.entries[accepted], e, "entries are written in evaluation order")
				accepted++
				chains[e.UserID].add(e)
			}
		}
		require.Len(t, w.entries, accepted)
		for id, c := range chains {
			require.True(t, c.chainOK, "round %d user %d", round, id)
			require.Zero(t, c.firstBad, "round %d user %d", round, id)
		}
		// The rows to write hold the model's final balances.
		for _, s := range w.sets {
			require.Equal(t, m.balances[s.User.ID], s.User.Balance)
			require.Equal(t, chains[s.User.ID].n, s.User.Seq)
			require.Equal(t, int64(10), s.PrevSeq)
		}
		for _, u := range w.created {
			require.Equal(t, int64(6), u.ID)
			require.Equal(t, m.balances[6], u.Balance)
		}
		_, created := m.balances[6]
		require.Equal(t, created, len(w.created) == 1)
		_, ghost := m.balances[5]
		require.False(t, ghost)
	}
}
