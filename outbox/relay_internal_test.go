package outbox

import (
	"context"
	"errors"
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
