// Package metrics owns ledgerd's Prometheus metrics: their names (all
// under the ledger_ namespace), their labels (bounded: route patterns,
// entry types, reasons, never a raw path or a user id), the registry with
// the Go and process collectors, and the /metrics handler.
//
// The other packages do not import it: they expose small observer hooks
// (api.Observer, ledger.Observer, outbox.RelayConfig funcs), and the
// command wires this package's Metrics to them.
package metrics
