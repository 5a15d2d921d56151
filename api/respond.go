package api

import (
	"encoding/json"
	"net/http"

	"github.com/ledgerd/ledgerd/ledger"
)

// A handler decides its answer as a ledger.Answer (HTTP status and body)
// with one typed render function for its result and renderError for
// errors, used for live answers and for the answers stored with an
// Idempotency-Key alike, so that a replay is byte for byte the original
// answer.

// renderData renders a success envelope.
func renderData(status int, data any, message string) ledger.Answer {
	return renderJSON(status, envelope{Success: true, Data: data, Message: message})
}

// renderError renders the error envelope of err (see toError) for the
// request with the given id.
func renderError(err error, requestID string) ledger.Answer {
	e := toError(err)
	return renderJSON(e.Status, envelope{Success: false, Error: &errorBody{
		Message: e.Message, Code: e.Status, Type: e.Type, Param: e.Param, RequestID: requestID}})
}

// renderJSON renders v with status. A value that cannot be encoded is a
// 500 without a body: writeResponse writes the generic internal error in its
// place, with the request id it alone knows.
func renderJSON(status int, v any) ledger.Answer {
	b, err := json.Marshal(v)
	if err != nil {
		return ledger.Answer{Code: http.StatusInternalServerError}
	}
	return ledger.Answer{Code: status, Body: append(b, '\n')}
}

// writeResponse sends a rendered answer.
func writeResponse(w http.ResponseWriter, resp ledger.Answer) {
	if len(resp.Body) == 0 {
		resp = renderError(errInternal, w.Header().Get("X-Request-Id"))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if resp.Code == http.StatusServiceUnavailable || resp.Code == http.StatusTooManyRequests {
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "1")
		}
	}
	w.WriteHeader(resp.Code)
	_, _ = w.Write(resp.Body)
}

// writeOutcome answers a write: a replayed stored answer as it was stored
// (with Idempotent-Replayed: true), an error as writeError does, a result
// with render.
func writeOutcome[T any](w http.ResponseWriter, r *http.Request, result T, err error, render func(T) ledger.Answer) {
	if replay, ok := asReplay(err); ok {
		w.Header().Set("Idempotent-Replayed", "true")
		writeResponse(w, replay.Answer)
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeResponse(w, render(result))
}
