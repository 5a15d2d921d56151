package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ledgerd/ledgerd/ledger"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	loggerKey
	stateKey
)

// requestState is what a request's middleware learns from its handler:
// the error it answered with, if any.
type requestState struct {
	err error
}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey).(*requestState)
	return st
}

// loggerFrom returns the server's logger stored by withLogging.
func loggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// requestIDPattern is what an incoming X-Request-Id must look like to be
// kept; anything else is replaced, so logs never carry arbitrary client text.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID returns the request id stored by withRequestID.
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// withRequestID takes the request id from X-Request-Id, or makes one, and
// echoes it on the response.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// routePattern returns the chi route pattern that served r, such as
// "/api/users/{id}", or "unmatched".
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

// withLogging writes one log line per request: method, route pattern,
// status, duration, size and request id, at the level requestLogLevel
// decides. It also turns a panic into a 500 in the envelope, logged with
// its stack.
func withLogging(logger *slog.Logger, obs Observer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w}
			ctx := context.WithValue(r.Context(), loggerKey, logger)
			r = r.WithContext(context.WithValue(ctx, stateKey, &requestState{}))
			obs.InFlight(1)
			defer func() { //nolint:contextcheck // uses the request's own context, through r
				if p := recover(); p != nil {
					if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
						panic(p)
					}
					logger.ErrorContext(r.Context(), "panic serving request", "panic", p,
						"stack", string(debug.Stack()), "request_id", requestID(r.Context()))
					if rec.status == 0 {
						writeError(rec, r, errInternal)
					}
				}
				status := rec.status
				if status == 0 {
					status = http.StatusOK
				}
				obs.InFlight(-1)
				obs.ObserveRequest(r.Method, routePattern(r), status, time.Since(start))
				logger.LogAttrs(r.Context(), requestLogLevel(r, status), "request",
					slog.String("method", truncate(r.Method, 16)),
					slog.String("route", routePattern(r)),
					slog.Int("status", status),
					slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
					slog.Int("bytes", rec.bytes),
					slog.String("request_id", requestID(r.Context())),
				)
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// quietPaths are polled by probes and scrapers every few seconds: their
// request lines are logged at debug level, so that they do not drown the
// requests of clients at info.
var quietPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// requestLogLevel is the level of a request's log line: debug for a
// probe's or scraper's request (quietPaths) that did not fail on the
// server's side, info for every other request. A 5xx there (/readyz's 503
// while the database is down) stays at info: it is news.
func requestLogLevel(r *http.Request, status int) slog.Level {
	if quietPaths[r.URL.Path] && status < http.StatusInternalServerError {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// countRejections tells obs why a balance change or transfer was refused:
// validation, insufficient_funds, balance_limit, not_found,
// idempotency_conflict or busy. Auth, size and media-type refusals are
// not balance-change rejections and are not counted here.
func countRejections(obs Observer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			if st := stateFrom(r.Context()); st != nil && st.err != nil {
				if reason := rejectionReason(st.err); reason != "" {
					obs.ChangeRejected(reason)
				}
			}
		})
	}
}

// dataAsOfHeader dates an answer served from the read replica.
const dataAsOfHeader = "X-Data-As-Of"

// asOfLayout is RFC 3339 with microseconds, for X-Data-As-Of and /readyz.
const asOfLayout = "2006-01-02T15:04:05.000000Z07:00"

// withDataAsOf puts a ledger.ReadOrigin in the request's context and,
// when a read of the request was served by the read replica, sets
// X-Data-As-Of to the replica's as-of instant (RFC 3339, microseconds,
// UTC) as the response's header is written. Answers served by the primary
// are current and carry no such header. A middleware rather than a line
// in each handler: the ledger decides per read where it runs, and no
// handler has to know.
func withDataAsOf(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			next.ServeHTTP(w, r) // writes never read from the replica: no wrapper on the write path
			return
		}
		ctx, origin := ledger.WithReadOrigin(r.Context())
		next.ServeHTTP(&asOfWriter{ResponseWriter: w, origin: origin}, r.WithContext(ctx))
	})
}

// asOfWriter sets X-Data-As-Of before the header is written.
type asOfWriter struct {
	http.ResponseWriter
	origin  *ledger.ReadOrigin
	written bool
}

func (a *asOfWriter) WriteHeader(code int) {
	a.setHeader()
	a.ResponseWriter.WriteHeader(code)
}

func (a *asOfWriter) Write(b []byte) (int, error) {
	a.setHeader()
	return a.ResponseWriter.Write(b)
}

func (a *asOfWriter) setHeader() {
	if a.written {
		return
	}
	a.written = true
	if t, ok := a.origin.AsOf(); ok {
		a.Header().Set(dataAsOfHeader, t.UTC().Format(asOfLayout))
	}
}

func (a *asOfWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }
