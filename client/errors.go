package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// The error types of the contract. An *Error is each of them (errors.Is)
// whose error.type it carries: errors.Is(err, client.ErrInsufficientFunds).
var (
	// ErrValidation is validation_error (400): the request breaks a rule;
	// Error.Param names the field at fault when one is.
	ErrValidation = errors.New("validation_error")
	// ErrInsufficientFunds is insufficient_funds (400): a debit or a hold
	// needs more than the available balance. Nothing was written.
	ErrInsufficientFunds = errors.New("insufficient_funds")
	// ErrUnauthorized is unauthorized (401): no valid bearer token.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden is forbidden (403): the token's role may not use the
	// route (an auditor token on a write).
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound is not_found (404): no such user, entry, transaction,
	// hold or checkpoint.
	ErrNotFound = errors.New("not_found")
	// ErrMethodNotAllowed is method_not_allowed (405).
	ErrMethodNotAllowed = errors.New("method_not_allowed")
	// ErrConflict is conflict (409): the user id exists, the hold is no
	// longer pending, the transaction was reversed already.
	ErrConflict = errors.New("conflict")
	// ErrIdempotencyConflict is idempotency_conflict (409): the
	// Idempotency-Key was used with a different request.
	ErrIdempotencyConflict = errors.New("idempotency_conflict")
	// ErrPayloadTooLarge is payload_too_large (413).
	ErrPayloadTooLarge = errors.New("payload_too_large")
	// ErrUnsupportedMediaType is unsupported_media_type (415).
	ErrUnsupportedMediaType = errors.New("unsupported_media_type")
	// ErrRateLimited is rate_limited (429): too many requests, or too many
	// changes of one user waiting; Error.RetryAfter says when to come back.
	// The client retries it by itself, within its RetryPolicy.
	ErrRateLimited = errors.New("rate_limited")
	// ErrUnavailable is unavailable (503, and 502 or 504 from a proxy in
	// front): the database is down or overloaded. Nothing was committed.
	// The client retries it by itself, within its RetryPolicy.
	ErrUnavailable = errors.New("unavailable")
	// ErrInternal is internal (500): a failure on the server, logged there
	// under Error.RequestID.
	ErrInternal = errors.New("internal")
)

// sentinels maps error.type to its sentinel.
var sentinels = byText(ErrValidation, ErrInsufficientFunds, ErrUnauthorized, ErrForbidden, ErrNotFound,
	ErrMethodNotAllowed, ErrConflict, ErrIdempotencyConflict, ErrPayloadTooLarge, ErrUnsupportedMediaType,
	ErrRateLimited, ErrUnavailable, ErrInternal)

func byText(errs ...error) map[string]error {
	m := make(map[string]error, len(errs))
	for _, e := range errs {
		m[e.Error()] = e
	}
	return m
}

// statusTypes is the type an answer without the error envelope (from a
// proxy, say) is taken for, by its status.
var statusTypes = map[int]string{
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusRequestEntityTooLarge: "payload_too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusTooManyRequests:       "rate_limited",
	http.StatusInternalServerError:   "internal",
	http.StatusBadGateway:            "unavailable",
	http.StatusServiceUnavailable:    "unavailable",
	http.StatusGatewayTimeout:        "unavailable",
}

// Error is an answer in the API's error envelope (or, from something in
// front of the API, any answer that is not a success). Match it with
// errors.Is against the Err… sentinels, or read its fields with
// errors.As:
//
//	var apiErr *client.Error
//	if errors.As(err, &apiErr) { log.Print(apiErr.Param, apiErr.RequestID) }
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Type is error.type ("insufficient_funds"); "" when the answer was
	// not the API's envelope.
	Type string
	// Message is error.message, for people.
	Message string
	// Param is error.param, the request field at fault ("amount",
	// "changes[1]", "limit"), when the server named one.
	Param string
	// RequestID is error.requestId, or the answer's X-Request-Id when the
	// body has none: the server logs the request under it. In a replayed
	// answer it is the original request's.
	RequestID string
	// RetryAfter is the answer's Retry-After (429, 503); 0 without one.
	RetryAfter time.Duration
	// Replayed reports that the answer was stored for the Idempotency-Key
	// by an earlier request (a refusal stays refused) and nothing ran now.
	Replayed bool
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ledgerd: %d", e.StatusCode)
	if e.Type != "" {
		b.WriteString(" " + e.Type)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	var notes []string
	if e.Param != "" {
		notes = append(notes, "param "+e.Param)
	}
	if e.RequestID != "" {
		notes = append(notes, "request id "+e.RequestID)
	}
	if e.Replayed {
		notes = append(notes, "replayed")
	}
	if len(notes) > 0 {
		b.WriteString(" (" + strings.Join(notes, ", ") + ")")
	}
	return b.String()
}

// Is reports whether target is the sentinel of e's type (of its status,
// when the answer had no type).
func (e *Error) Is(target error) bool {
	typ := e.Type
	if typ == "" {
		typ = statusTypes[e.StatusCode]
	}
	s, ok := sentinels[typ]
	return ok && s == target
}

// newError makes the *Error of a non-2xx answer.
func newError(a attempt) *Error {
	e := &Error{StatusCode: a.status, RequestID: a.header.Get("X-Request-Id"),
		Replayed: a.header.Get("Idempotent-Replayed") == "true"}
	if ra, ok := retryAfter(a.header, time.Now()); ok {
		e.RetryAfter = ra
	}
	var env envelope
	if json.Unmarshal(a.body, &env) == nil && env.Error != nil && env.Error.Type != "" {
		e.Type, e.Message, e.Param = env.Error.Type, env.Error.Message, env.Error.Param
		if env.Error.RequestID != "" {
			e.RequestID = env.Error.RequestID
		}
		return e
	}
	e.Message = http.StatusText(a.status)
	if s := snippet(a.body, 200); s != "" {
		e.Message += ": " + s
	}
	return e
}

// snippet is the start of a body that is not the envelope, printable.
func snippet(b []byte, n int) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, string(b[:min(len(b), n)]))
	return strings.Join(strings.Fields(s), " ")
}
