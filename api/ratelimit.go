package api

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// rateLimiter keeps one token bucket per client: per token when auth is on,
// per remote address otherwise. Buckets unused for a few minutes are
// dropped.
type rateLimiter struct {
	rps   rate.Limit
	burst int

	mu      sync.Mutex
	clients map[string]*client
	swept   time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

func newRateLimiter(rps float64) *rateLimiter {
	return &rateLimiter{rps: rate.Limit(rps), burst: max(1, int(math.Ceil(rps))), clients: map[string]*client{}}
}

func (l *rateLimiter) limiter(key string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, c := range l.clients {
			if now.Sub(c.seen) > 5*time.Minute {
				delete(l.clients, k)
			}
		}
		l.swept = now
	}
	c, ok := l.clients[key]
	if !ok {
		c = &client{lim: rate.NewLimiter(l.rps, l.burst)}
		l.clients[key] = c
	}
	c.seen = now
	return c.lim
}

// withRateLimit answers 429 rate_limited, with Retry-After, to a client past
// rps requests per second (bursts up to rps). rps 0 turns it off.
func withRateLimit(rps float64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if rps <= 0 {
			return next
		}
		l := newRateLimiter(rps)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := principalFrom(r.Context()).Scope
			if key == "" {
				key, _, _ = net.SplitHostPort(r.RemoteAddr)
			}
			now := time.Now()
			res := l.limiter(key, now).ReserveN(now, 1)
			if delay := res.DelayFrom(now); delay > 0 {
				res.CancelAt(now)
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(delay.Seconds()))))
				writeError(w, r, &Error{Status: http.StatusTooManyRequests, Type: typeRateLimited,
					Message: "too many requests; retry after the time in Retry-After"})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
