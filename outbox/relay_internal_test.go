package outbox

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeConfirmation is a confirm decided in advance.
type fakeConfirmation struct {
	ack bool
	err error
}

func (f fakeConfirmation) WaitContext(context.Context) (bool, error) { return f.ack, f.err }

// fakePublisher answers publish i with outcomes[i]; a missing outcome is an
// ack. failAt, when ≥ 0, makes that publish itself fail.
type fakePublisher struct {
	outcomes  map[int]fakeConfirmation
	failAt    int
	published []string
}

func (f *fakePublisher) publish(_ context.Context, row pendingRow) (confirmation, error) {
	i := len(f.published)
	if i == f.failAt {
		return nil, errors.New("channel closed")
	}
	f.published = append(f.published, row.EventID)
	if c, ok := f.outcomes[i]; ok {
		return c, nil
	}
	return fakeConfirmation{ack: true}, nil
}

func rowsN(n int) []pendingRow {
	rows := make([]pendingRow, n)
	for i := range rows {
		rows[i] = pendingRow{ID: int64(i + 1), EventID: string(rune('a' + i))}
	}
	return rows
}

// TestPublishWindow checks the windowed confirm logic: only the confirmed
// prefix may be marked published, whatever fails after it.
func TestPublishWindow(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		pub       *fakePublisher
		confirmed int
		err       error
	}{
		{"all acked", &fakePublisher{failAt: -1}, 5, nil},
		{"nack in the middle", &fakePublisher{failAt: -1, outcomes: map[int]fakeConfirmation{2: {ack: false}}}, 2, errNacked},
		{"nack first", &fakePublisher{failAt: -1, outcomes: map[int]fakeConfirmation{0: {ack: false}}}, 0, errNacked},
		{"acks after a nack do not count", &fakePublisher{failAt: -1, outcomes: map[int]fakeConfirmation{1: {ack: false}, 3: {ack: false}}}, 1, errNacked},
		{"no confirm in time", &fakePublisher{failAt: -1, outcomes: map[int]fakeConfirmation{3: {err: context.DeadlineExceeded}}}, 3, errUnconfirmed},
		{"publish fails", &fakePublisher{failAt: 4}, 4, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, err := publishWindow(context.Background(), tc.pub, rowsN(5))
			require.Equal(t, tc.confirmed, n)
			switch {
			case tc.err != nil:
				require.ErrorIs(t, err, tc.err)
			case tc.pub.failAt >= 0:
				require.ErrorContains(t, err, "channel closed")
			default:
				require.NoError(t, err)
			}
			require.Equal(t, []string{"a", "b", "c", "d", "e"}[:len(tc.pub.published)], tc.pub.published, "published in order")
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := backoff{max: 2e9}
	prev := int64(0)
	for range 40 {
		d := b.next()
		require.Positive(t, d)
		require.LessOrEqual(t, d.Nanoseconds(), int64(2e9))
		prev = max(prev, d.Nanoseconds())
	}
	require.Greater(t, prev, int64(1e9), "grows to the cap")
	b.reset()
	require.LessOrEqual(t, b.next().Nanoseconds(), int64(100e6))
}

func TestDecodeHeaders(t *testing.T) {
	t.Parallel()
	h, err := decodeHeaders(`{"ledger-user-id": 42, "ledger-seq": 9007199254740993, "x": "y", "f": 1.5}`)
	require.NoError(t, err)
	require.Equal(t, int64(42), h["ledger-user-id"])
	require.Equal(t, int64(9007199254740993), h["ledger-seq"], "no float rounding")
	require.Equal(t, "y", h["x"])
	require.InDelta(t, 1.5, h["f"], 0)
}

// TestShare checks how a process decides to take or give up a partition
// from its view of the others.
func TestShare(t *testing.T) {
	t.Parallel()
	view := func(me int64, leads map[int64]int) *membership {
		v := &membership{leads: leads, led: map[int]bool{}}
		for m := range leads {
			v.members = append(v.members, m)
		}
		slices.Sort(v.members)
		return v
	}
	cases := []struct {
		name       string
		partitions int
		led        []int // by this process (instance 2)
		others     map[int64]int
		take       bool // mayTake of a partition not led
		yield      bool // shouldYield of the highest led
	}{
		{"alone, view unknown", 4, nil, nil, true, false},
		{"alone, takes all", 4, []int{0, 1, 2}, map[int64]int{}, true, false},
		{"one partition, the other leads", 1, nil, map[int64]int{1: 1}, true, false},
		{"one partition, led here, the other idle: no churn", 1, []int{0}, map[int64]int{1: 0}, false, false},
		{"4 of 3: at the ceiling", 4, []int{0, 1}, map[int64]int{1: 1, 3: 1}, false, false},
		{"4 of 3: over the ceiling", 4, []int{0, 1, 2}, map[int64]int{1: 1, 3: 0}, false, true},
		{"4 of 3: another starves, this one the most with the higher instance", 4, []int{0, 1}, map[int64]int{1: 2, 3: 0}, false, true},
		{"4 of 3: another starves, the other gives up first", 4, []int{0, 1}, map[int64]int{3: 2, 1: 0}, false, false},
		{"4 of 3: leave the free one to the starving", 4, []int{0}, map[int64]int{1: 2, 3: 0}, false, false},
		{"4 of 3: below the floor takes", 4, nil, map[int64]int{1: 2, 3: 1}, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newShare(c.partitions)
			s.instance = 2
			for _, p := range c.led {
				s.took(p)
			}
			if c.others != nil {
				leads := map[int64]int{2: len(c.led)}
				for m, n := range c.others {
					leads[m] = n
				}
				v := view(2, leads)
				for p := range c.partitions {
					v.led[p] = true // no partition free: the fallback stays off
				}
				s.setView(v)
			}
			free := c.partitions - 1
			require.Equal(t, c.take, s.mayTake(free), "mayTake")
			if len(c.led) > 0 {
				require.Equal(t, c.yield, s.shouldYield(slices.Max(c.led)), "shouldYield")
				if len(c.led) > 1 {
					require.False(t, s.shouldYield(slices.Min(c.led)), "only the highest is given up")
				}
			}
		})
	}

	// A partition no view shows led is taken past freeLimit views,
	// whatever the share says.
	s := newShare(4)
	s.instance = 2
	s.took(0)
	s.took(1)
	v := func() *membership {
		return &membership{members: []int64{1, 2, 3}, leads: map[int64]int{1: 1, 3: 0}, led: map[int]bool{0: true, 1: true, 2: true}}
	}
	for range freeLimit - 1 {
		s.setView(v())
		require.False(t, s.mayTake(3))
	}
	s.setView(v())
	require.True(t, s.mayTake(3), "a partition without a leader for %d views is taken", freeLimit)
}
