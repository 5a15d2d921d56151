package main

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// maxRate is the highest -rate accepted; past it the schedule's intervals
// would be shorter than what the client can time.
const maxRate = 1_000_000

// rateFlag is the value of -rate: requests per second, written N or N/s.
type rateFlag float64

var errRate = errors.New("want requests per second, N or N/s with N > 0, such as 5000/s")

// String is the rate as -rate takes it; empty when unset.
func (r *rateFlag) String() string {
	if r == nil || *r == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(*r), 'f', -1, 64) + "/s"
}

// Set parses N or N/s.
func (r *rateFlag) Set(s string) error {
	v, err := parseRate(s)
	if err != nil {
		return err
	}
	*r = rateFlag(v)
	return nil
}

// parseRate reads a rate written N or N/s (N may have a fraction).
func parseRate(s string) (float64, error) {
	n := strings.TrimSuffix(strings.TrimSpace(s), "/s")
	v, err := strconv.ParseFloat(n, 64)
	if err != nil || math.IsNaN(v) || v <= 0 || v > maxRate {
		return 0, errRate
	}
	return v, nil
}

// schedule is the open loop of -rate: request i is due at start + i/rate,
// whatever became of the requests before it.
type schedule struct {
	start time.Time
	rate  float64   // requests per second
	n     int64     // requests in all; 0 for no limit
	end   time.Time // no request is due at or after it; zero for no limit
}

// newSchedule is the schedule of rate requests per second from start
// within b.
func newSchedule(start time.Time, rate float64, b bound) schedule {
	s := schedule{start: start, rate: rate, n: b.n}
	if b.d > 0 {
		s.end = start.Add(b.d)
	}
	return s
}

// due is when request i is due, and false when the schedule has no
// request i. Each time is computed from start, so errors never add up.
func (s schedule) due(i int64) (time.Time, bool) {
	if s.n > 0 && i >= s.n {
		return time.Time{}, false
	}
	t := s.start.Add(time.Duration(float64(i) * float64(time.Second) / s.rate))
	if !s.end.IsZero() && !t.Before(s.end) {
		return time.Time{}, false
	}
	return t, true
}

// clock is the time a load loop runs on: the wall clock, or a fake one in
// tests.
type clock interface {
	Now() time.Time
	// SleepUntil waits until t; it returns false when ctx ended first.
	SleepUntil(ctx context.Context, t time.Time) bool
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) SleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// feed hands the workers of a load loop their request indexes, in order.
// Closed loop (sched nil): a worker takes the next index as soon as its
// previous request is answered, until n were taken or deadline passed.
// Open loop: a worker takes the next index and waits until it is due; when
// every worker is busy, the next due request starts late, and its latency,
// counted from the due time, includes that wait.
type feed struct {
	next     atomic.Int64
	n        int64     // closed loop: 0 for no limit
	deadline time.Time // closed loop: zero for no limit
	sched    *schedule
}

func newFeed(b bound, start time.Time, rate float64) *feed {
	if rate > 0 {
		s := newSchedule(start, rate, b)
		return &feed{sched: &s}
	}
	f := &feed{n: b.n}
	if b.d > 0 {
		f.deadline = start.Add(b.d)
	}
	return f
}

// take is the next request's index and, in the open loop, its due time,
// once that has come; false when the loop is over or ctx ended.
func (f *feed) take(ctx context.Context, clk clock) (int64, time.Time, bool) {
	if ctx.Err() != nil {
		return 0, time.Time{}, false
	}
	i := f.next.Add(1) - 1
	if f.sched == nil {
		if (f.n > 0 && i >= f.n) || (!f.deadline.IsZero() && clk.Now().After(f.deadline)) {
			return 0, time.Time{}, false
		}
		return i, time.Time{}, true
	}
	due, ok := f.sched.due(i)
	if !ok || !clk.SleepUntil(ctx, due) {
		return 0, time.Time{}, false
	}
	return i, due, true
}
