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
	// Replica is the read replica's state, absent without one.
	Replica *replicaData `json:"replica,omitempty"`
}

// replicaData is the read replica's state in /readyz. A replica that is
// down or lagging does not make the server unready: reads go to the
// primary meanwhile.
type replicaData struct {
	// InUse is whether reads go to the replica now.
	InUse bool `json:"inUse"`
	// Reason says why not: starting, down, primary unreachable, lagging
	// or no replayed transaction.
	Reason string `json:"reason,omitempty"`
	// LagSeconds is how far the replica is behind the primary, when known.
	LagSeconds *float64 `json:"lagSeconds"`
	// AsOf is the instant up to which the replica holds every change.
	AsOf *string `json:"asOf"`
}

func replicaStatus(ctx context.Context, l *ledger.Ledger) *replicaData {
	st := l.ReplicaStatus(ctx)
	if !st.Configured {
		return nil
	}
	d := &replicaData{InUse: st.InUse, Reason: st.Reason}
	if !st.AsOf.IsZero() {
		lag := st.Lag.Seconds()
		asOf := st.AsOf.UTC().Format(asOfLayout)
		d.LagSeconds, d.AsOf = &lag, &asOf
	}
	return d
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
		d.Replica = replicaStatus(ctx, l)
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
