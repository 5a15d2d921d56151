package api

import (
	"encoding/json"
	"net/http"

	"github.com/ledgerd/ledgerd/ledger"
)

// A handler decides its answer as a ledger.Response (status and body) with
// one render function, used for live answers and for the answers stored
// with an Idempotency-Key alike, so that a replay is byte for byte the
// original answer.

// renderData renders a success envelope.
func renderData(status int, data any, message string) ledger.Response {
	return renderJSON(status, envelope{Success: true, Data: data, Message: message})
}

// renderError renders the error envelope of err (see toError).
func renderError(err error) ledger.Response {
	e := toError(err)
	return renderJSON(e.Status, envelope{Success: false, Error: &errorBody{Message: e.Message, Code: e.Status, Type: e.Type}})
}

func renderJSON(status int, v any) ledger.Response {
	b, err := json.Marshal(v)
	if err != nil {
		return ledger.Response{Status: http.StatusInternalServerError,
			Body: []byte(`{"success":false,"error":{"message":"Internal server error","code":500,"type":"internal"}}` + "\n")}
	}
	return ledger.Response{Status: status, Body: append(b, '\n')}
}

// writeResponse sends a rendered answer.
func writeResponse(w http.ResponseWriter, resp ledger.Response) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if resp.Status == http.StatusServiceUnavailable || resp.Status == http.StatusTooManyRequests {
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "1")
		}
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

// writeOutcome answers a write: a replayed stored answer as it was stored
// (with Idempotent-Replayed: true), an error as writeError does, a result
// with render.
func writeOutcome(w http.ResponseWriter, r *http.Request, result any, err error, render func(any, error) ledger.Response) {
	if replay, ok := asReplay(err); ok {
		w.Header().Set("Idempotent-Replayed", "true")
		writeResponse(w, replay.Response)
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeResponse(w, render(result, nil))
}
