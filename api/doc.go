// Package api is the HTTP edge of ledgerd: the chi routes, request decoding,
// the JSON envelope of the contract, the one place where domain errors become
// HTTP statuses and error types, the middleware (request ids, request logs,
// panics, body limits) and the OpenAPI document.
//
// Invariants: every response under /api is the contract's envelope; a
// rejected request changes nothing; no internal error text reaches a client
// (5xx bodies are generic and the full error is logged with the request id).
//
// The package imports ledger (and its projection types); nothing imports api.
package api
