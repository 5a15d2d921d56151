package api

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"

	"github.com/ledgerd/ledgerd/ledger"
)

//go:embed openapi.yaml
var openAPISpec []byte

// OpenAPISpec returns the OpenAPI document that describes the API.
func OpenAPISpec() []byte { return openAPISpec }

// Deps are what the server needs.
type Deps struct {
	Ledger *ledger.Ledger
	Logger *slog.Logger
	// RelayStatusFunc, when set, reports the event relay's state for
	// /readyz. It must not block.
	RelayStatusFunc func(ctx context.Context) any
	// Tokens, when not empty, turn authentication on for /api.
	Tokens []Token
	// RateLimitRPS, when above 0, limits each client's requests to /api.
	RateLimitRPS float64
}

// NewServer returns the HTTP handler of the whole service.
func NewServer(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return addRoutes(d)
}
