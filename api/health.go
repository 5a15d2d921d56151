package api

import (
	"context"
	"net/http"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
)

func handleHealthz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeData(w, http.StatusOK, map[string]string{"status": "ok"}, "")
	}
}

// readyData is the body of /readyz.
type readyData struct {
	Status   string `json:"status"`
	Database string `json:"database"`
	Relay    any    `json:"relay"`
}

// readyTimeout bounds the database check of /readyz.
const readyTimeout = 2 * time.Second

func handleReadyz(l *ledger.Ledger, relayStatus func(context.Context) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := readyData{Status: "ready", Database: "up", Relay: map[string]any{"enabled": false}}
		if relayStatus != nil {
			d.Relay = relayStatus(r.Context())
		}
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		status := http.StatusOK
		if err := l.Ping(ctx); err != nil {
			d.Status, d.Database, status = "not_ready", "down", http.StatusServiceUnavailable
			writeJSON(w, status, envelope{Success: false, Data: d, Error: &errorBody{
				Message: "The database does not answer", Code: status, Type: typeUnavailable, RequestID: requestID(r.Context())}})
			return
		}
		writeData(w, status, d, "")
	}
}

func handleOpenAPI() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(openAPISpec)
	}
}
