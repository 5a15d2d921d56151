package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// relayPoll is how often the relay scenario reads /readyz while it waits.
const relayPoll = 50 * time.Millisecond

// relayLeaderWait is how long the relay scenario waits for the relay to
// lead and reach the broker before it gives up.
const relayLeaderWait = 15 * time.Second

// relayState is data.relay of GET /readyz: outbox.Status of the relay in
// the server, or {"enabled": false, "note": …} when it runs elsewhere.
type relayState struct {
	Enabled         bool   `json:"enabled"`
	Role            string `json:"role"`
	BrokerConnected bool   `json:"brokerConnected"`
	Published       int64  `json:"published"`
	// Pending and OldestPendingAgeSeconds are the outbox backlog as the
	// relay last read it, at BacklogAt (the zero time until its first
	// read). The pointers are nil when a server does not show them.
	Pending                 int64      `json:"pending"`
	OldestPendingAgeSeconds *float64   `json:"oldestPendingAgeSeconds"`
	BacklogAt               *time.Time `json:"backlogAt"`
	Note                    string     `json:"note"`
}

func (e *env) readRelay(ctx context.Context) (relayState, error) {
	var d struct {
		Relay relayState `json:"relay"`
	}
	err := e.client.call(ctx, http.MethodGet, "/readyz", nil, http.StatusOK, &d)
	return d.Relay, err
}

// errRelayDisabled is the answer of the relay scenario to a ledgerd whose
// relay does not run in the process under test.
var errRelayDisabled = errors.New("the relay is disabled in this ledgerd (RELAY_ENABLED=false): its /readyz cannot show the events being published")

// waitLeader waits until the relay of the server under test publishes.
func (e *env) waitLeader(ctx context.Context) (relayState, error) {
	ctx, cancel := context.WithTimeout(ctx, relayLeaderWait)
	defer cancel()
	for {
		r, err := e.readRelay(ctx)
		switch {
		case err != nil:
			return r, err
		case !r.Enabled:
			if r.Note != "" {
				return r, fmt.Errorf("%w; it says: %s", errRelayDisabled, r.Note)
			}
			return r, errRelayDisabled
		case r.Role == "leader" && r.BrokerConnected:
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("the relay is %q with brokerConnected=%t after %s: another process publishes, or the broker is unreachable", r.Role, r.BrokerConnected, relayLeaderWait)
		case <-time.After(relayPoll):
		}
	}
}

// runRelay sends a burst of -n writes spread over -users users, then
// polls /readyz until the relay has published every event of the burst
// (its published counter grew by the number of entries written) and the
// outbox is empty. It reports the drain time after the burst and the
// relay's rate. Run it against an otherwise idle server.
func runRelay(ctx context.Context, e *env) (*result, error) {
	r0, err := e.waitLeader(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := e.createUsers(ctx, e.opts.Users, startBalance)
	if err != nil {
		return nil, err
	}
	r1, err := e.readRelay(ctx)
	if err != nil {
		return nil, err
	}
	paths, bk := newUserPaths(ids), newBook(len(ids))
	b := e.opts.countBound()
	burstStart := time.Now()
	p := e.drive(ctx, b, func(ctx context.Context, w *worker, _ int64) {
		paths.write(ctx, w, bk)
	})
	burstEnd := time.Now()
	r2, err := e.readRelay(ctx)
	if err != nil {
		return nil, err
	}
	expected := int64(len(ids)) // the opening entries
	for i := range bk.entries {
		expected += bk.entries[i].Load()
	}

	last, drained := r2, false
	deadline := burstEnd.Add(e.opts.DrainTimeout)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if last.Published-r0.Published >= expected && last.Pending == 0 {
			drained = true
			break
		}
		e.drawProgress(fmt.Sprintf("draining: pending %d, published %d of %d", last.Pending, last.Published-r0.Published, expected))
		time.Sleep(relayPoll)
		if last, err = e.readRelay(ctx); err != nil {
			return nil, err
		}
	}
	drainedAt := time.Now()
	e.clearProgress()
	drain := drainedAt.Sub(burstEnd)

	_, checks, err := e.checkBook(ctx, ids, bk)
	if err != nil {
		return nil, err
	}
	published := last.Published - r0.Published
	checks = append([]invariant{
		check("drained", drained, "outbox pending %d, %.3f s after the burst (limit %s)", last.Pending, drain.Seconds(), e.opts.DrainTimeout),
		check("events_published", published >= expected, "relay published %d events, want ≥ %d (%d openings + accepted writes)", published, expected, len(ids)),
	}, checks...)
	return &result{Bound: b, Phase: p, Invariants: checks, Details: []detail{
		{"events_expected", expected},
		{"events_published", published},
		{"pending_at_burst_end", r2.Pending},
		{"published_during_burst", r2.Published - r1.Published},
		{"drain_seconds", drain.Seconds()},
		{"events_per_second", float64(last.Published-r1.Published) / drainedAt.Sub(burstStart).Seconds()},
		{"drain_events_per_second", float64(last.Published-r2.Published) / max(drain.Seconds(), 1e-9)},
	}}, nil
}
