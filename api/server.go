package api

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"time"

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
	// Observer, when set, is told of every request and every refused
	// balance change (the metrics).
	Observer Observer
	// MetricsHandler, when set, serves GET /metrics.
	MetricsHandler http.Handler
	// Tokens, when not empty, turn authentication on for /api.
	Tokens []Token
	// RateLimitRPS, when above 0, limits each client's requests to /api.
	RateLimitRPS float64
}

// Observer is told what the API does, for metrics. Labels are bounded: the
// route is the chi pattern, the reason one of a fixed set.
type Observer interface {
	ObserveRequest(method, route string, status int, d time.Duration)
	InFlight(delta int)
	ChangeRejected(reason string)
}

type noObserver struct{}

func (noObserver) ObserveRequest(string, string, int, time.Duration) {}
func (noObserver) InFlight(int)                                      {}
func (noObserver) ChangeRejected(string)                             {}

// NewServer returns the HTTP handler of the whole service.
func NewServer(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Observer == nil {
		d.Observer = noObserver{}
	}
	return addRoutes(d)
}
