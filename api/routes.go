package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// addRoutes is the whole route table.
func addRoutes(d Deps) http.Handler {
	r := chi.NewRouter()
	// HEAD is answered wherever GET is, without a body.
	r.Use(withRequestID, withLogging(d.Logger, d.Observer), middleware.GetHead)
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, req, &Error{Status: http.StatusNotFound, Type: typeNotFound,
			Message: "no such route: " + truncate(req.Method, 10) + " " + truncate(req.URL.Path, 100)})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if r.Match(chi.NewRouteContext(), m, req.URL.Path) || (m == http.MethodHead && slices.Contains(allowed, http.MethodGet)) {
				allowed = append(allowed, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, req, &Error{Status: http.StatusMethodNotAllowed, Type: typeMethodNotAllowed,
			Message: "method " + truncate(req.Method, 10) + " is not allowed on this route; allowed: " + strings.Join(allowed, ", ")})
	})

	r.Get("/healthz", handleHealthz())
	r.Get("/readyz", handleReadyz(d.Ledger, d.RelayStatusFunc))
	r.Get("/openapi.yaml", handleOpenAPI())
	if d.MetricsHandler != nil {
		r.Method(http.MethodGet, "/metrics", d.MetricsHandler)
	}

	r.Route("/api", func(r chi.Router) {
		r.Use(withAuth(d.Tokens, d.RateLimitRPS), withRateLimit(d.RateLimitRPS), withDataAsOf)
		r.Post("/users", handleCreateUser(d.Ledger))
		r.Get("/users/{id}", handleGetUser(d.Ledger))
		r.With(countRejections(d.Observer)).Put("/users/{id}/balance", handleUpdateBalance(d.Ledger))
		r.Get("/users/{id}/balance", handleGetBalance(d.Ledger))
		r.Get("/users/{id}/transactions", handleListTransactions(d.Ledger))
		r.Get("/users/{id}/events", handleReadUserEvents(d.Ledger))
		r.Get("/events", handleReadFeed(d.Ledger))
		r.Get("/users/{id}/verify", handleVerifyUser(d.Ledger))
		r.Get("/users/{id}/statement", handleGetStatement(d.Ledger))
		r.Get("/users/{id}/checkpoint-proof", handleGetCheckpointProof(d.Ledger))
		r.Get("/checkpoints", handleListCheckpoints(d.Ledger))
		r.Get("/checkpoints/{checkpointId}", handleGetCheckpoint(d.Ledger))
		r.Get("/signing-key", handleGetSigningKey(d.Ledger))
		r.Get("/transactions/{entryId}", handleGetTransaction(d.Ledger))
		r.With(countRejections(d.Observer)).Post("/transfers", handleCreateTransfer(d.Ledger))
		r.With(countRejections(d.Observer)).Post("/batches", handleCreateBatch(d.Ledger))
		r.With(countRejections(d.Observer)).Post("/reversals", handleCreateReversal(d.Ledger))
		r.With(countRejections(d.Observer)).Post("/users/{id}/holds", handlePlaceHold(d.Ledger))
		r.Get("/users/{id}/holds", handleListHolds(d.Ledger))
		r.Get("/holds/{holdId}", handleGetHold(d.Ledger))
		r.Post("/holds/{holdId}/capture", handleCaptureHold(d.Ledger))
		r.Post("/holds/{holdId}/void", handleVoidHold(d.Ledger))
	})
	return r
}
