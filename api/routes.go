package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// addRoutes is the whole route table.
func addRoutes(d Deps) http.Handler {
	r := chi.NewRouter()
	r.Use(withRequestID, withLogging(d.Logger, d.Observer))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, &Error{Status: http.StatusNotFound, Type: typeNotFound, Message: "no such route: " + r.Method + " " + truncate(r.URL.Path, 100)})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, &Error{Status: http.StatusMethodNotAllowed, Type: typeMethodNotAllowed, Message: "method " + r.Method + " is not allowed on this route"})
	})

	r.Get("/healthz", handleHealthz())
	r.Get("/readyz", handleReadyz(d.Ledger, d.RelayStatusFunc))
	r.Get("/openapi.yaml", handleOpenAPI())
	if d.MetricsHandler != nil {
		r.Method(http.MethodGet, "/metrics", d.MetricsHandler)
	}

	r.Route("/api", func(r chi.Router) {
		r.Use(withAuth(d.Tokens, d.RateLimitRPS), withRateLimit(d.RateLimitRPS))
		r.Post("/users", handleCreateUser(d.Ledger))
		r.Get("/users/{id}", handleGetUser(d.Ledger))
		r.With(countRejections(d.Observer)).Put("/users/{id}/balance", handleUpdateBalance(d.Ledger))
		r.Get("/users/{id}/balance", handleGetBalance(d.Ledger))
		r.Get("/users/{id}/transactions", handleListTransactions(d.Ledger))
		r.Get("/users/{id}/verify", handleVerifyUser(d.Ledger))
		r.Get("/transactions/{entryId}", handleGetTransaction(d.Ledger))
		r.With(countRejections(d.Observer)).Post("/transfers", handleCreateTransfer(d.Ledger))
	})
	return r
}
