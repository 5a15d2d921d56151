package api

import (
	"crypto/sha256"
	"errors"
	"net/http"

	"github.com/ledgerd/ledgerd/ledger"
)

// IdempotencyHeader is the request header that makes a POST or PUT safe to
// retry.
const IdempotencyHeader = "Idempotency-Key"

// idempotency reads the request's Idempotency-Key. It returns nil without
// one, and a 400 for a key that is not 1..255 printable ASCII characters.
// The key is scoped to the caller (its token when auth is on) and tied to
// the request's method, path and body; the answer stored with it is the
// one the handler sends: render's for a success, the error envelope for a
// decided rejection.
func idempotency[T any](r *http.Request, body []byte, render func(T) ledger.Answer) (*ledger.Idempotency[T], error) {
	vals := r.Header.Values(IdempotencyHeader)
	if len(vals) == 0 {
		return nil, nil
	}
	key := vals[0]
	if len(vals) > 1 || !validKey(key) {
		return nil, badRequest("%s must be one header of 1 to 255 printable ASCII characters", IdempotencyHeader)
	}
	h := sha256.New()
	h.Write([]byte(r.Method))
	h.Write([]byte{0})
	h.Write([]byte(r.URL.Path))
	h.Write([]byte{0})
	h.Write(body)
	// A decided rejection is stored with this request's id: its replays
	// name the request that decided it.
	rid := requestID(r.Context())
	idem := &ledger.Idempotency[T]{Scope: principalFrom(r.Context()).Scope, Key: key,
		AnswerFunc: func(result T, err error) ledger.Answer {
			if err != nil {
				return renderError(err, rid)
			}
			return render(result)
		}}
	copy(idem.RequestHash[:], h.Sum(nil))
	return idem, nil
}

func validKey(k string) bool {
	if len(k) < 1 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func asReplay(err error) (*ledger.ReplayError, bool) {
	var replay *ledger.ReplayError
	ok := errors.As(err, &replay)
	return replay, ok
}
