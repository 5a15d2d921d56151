package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// The machine-readable error types of the contract.
const (
	typeValidation        = "validation_error"
	typeInsufficientFunds = "insufficient_funds"
	typeNotFound          = "not_found"
	typeConflict          = "conflict"
	typeIdempotency       = "idempotency_conflict"
	typeUnauthorized      = "unauthorized"
	typeForbidden         = "forbidden"
	typeMethodNotAllowed  = "method_not_allowed"
	typePayloadTooLarge   = "payload_too_large"
	typeUnsupportedMedia  = "unsupported_media_type"
	typeRateLimited       = "rate_limited"
	typeUnavailable       = "unavailable"
	typeInternal          = "internal"
)

// Error is an error with its HTTP answer decided. Handlers and decoders
// return it for request problems found before the ledger is called.
type Error struct {
	Status  int
	Type    string
	Message string
	// Param names the request field at fault, when one is: a body field
	// (amount, changes[2]), a query parameter or a path parameter.
	Param string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Type, e.Message) }

// errInternal is the answer to a failure the client cannot act on; the
// details are logged, never sent.
var errInternal = &Error{Status: http.StatusInternalServerError, Type: typeInternal, Message: "Internal server error"}

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: typeValidation, Message: fmt.Sprintf(format, args...)}
}

// badParam is badRequest naming the field at fault.
func badParam(param, format string, args ...any) *Error {
	e := badRequest(format, args...)
	e.Param = param
	return e
}

// withParam names param as the field at fault of a request error; nil
// stays nil.
func withParam(err error, param string) error {
	if err == nil {
		return nil
	}
	e := *toError(err)
	e.Param = param
	return &e
}

// errorMapping is the one table from domain errors to the contract's
// statuses and types, and to the reason a refused balance change is
// counted under in the metrics ("" when it is not such a refusal). The
// first match wins.
var errorMapping = []struct {
	err     error
	status  int
	typ     string
	message string
	reason  string
}{
	{ledger.ErrInsufficientFunds, http.StatusBadRequest, typeInsufficientFunds, "Insufficient funds", "insufficient_funds"},
	{ledger.ErrBalanceLimit, http.StatusBadRequest, typeValidation, "The balance would exceed the maximum of " + money.Format(money.MaxBalance), "balance_limit"},
	{ledger.ErrNotFound, http.StatusNotFound, typeNotFound, "User not found", "not_found"},
	{ledger.ErrEntryNotFound, http.StatusNotFound, typeNotFound, "Transaction not found", ""},
	{ledger.ErrHoldNotFound, http.StatusNotFound, typeNotFound, "Hold not found", ""},
	{ledger.ErrTransactionNotFound, http.StatusNotFound, typeNotFound, "Transaction not found", "not_found"},
	{ledger.ErrAlreadyReversed, http.StatusConflict, typeConflict, "This transaction was already reversed; a transaction is reversed at most once", "already_reversed"},
	{ledger.ErrNotInCheckpoint, http.StatusNotFound, typeNotFound, "The user has no leaf in this checkpoint: it does not exist, or was created after the checkpoint", ""},
	{ledger.ErrCheckpointNotFound, http.StatusNotFound, typeNotFound, "Checkpoint not found", ""},
	{ledger.ErrNoSigningKey, http.StatusNotFound, typeNotFound, "No signing key: this server signs nothing (LEDGER_SIGNING_KEY is not set), or no key with this keyId ever signed here", ""},
	{ledger.ErrUserExists, http.StatusConflict, typeConflict, "A user with this id already exists", ""},
	{ledger.ErrIdempotencyConflict, http.StatusConflict, typeIdempotency, "This Idempotency-Key was already used with a different request", "idempotency_conflict"},
	{ledger.ErrBusy, http.StatusTooManyRequests, typeRateLimited, "Too many changes are waiting for this user; retry shortly", "busy"},
	{ledger.ErrUnavailable, http.StatusServiceUnavailable, typeUnavailable, "The service is temporarily unavailable; retry later", ""},
}

// toError decides the HTTP answer for err. The refusal of a batch's change
// names the change (changes[i]) as the param.
func toError(err error) *Error {
	e := decideError(err)
	var cerr *ledger.ChangeError
	if errors.As(err, &cerr) && e.Status < 500 {
		c := *e
		c.Param = fmt.Sprintf("changes[%d]", cerr.Index)
		return &c
	}
	return e
}

func decideError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var verr *ledger.ValidationError
	if errors.As(err, &verr) {
		return badParam(verr.Field, "%s", verr.Message)
	}
	var herr *ledger.HoldStateError
	if errors.As(err, &herr) {
		return &Error{Status: http.StatusConflict, Type: typeConflict,
			Message: "The hold is " + string(herr.Status) + "; only a pending hold can be captured or voided"}
	}
	for _, m := range errorMapping {
		if errors.Is(err, m.err) {
			return &Error{Status: m.status, Type: m.typ, Message: m.message}
		}
	}
	return errInternal
}

// writeError answers with the error envelope for err, which carries the
// request id. Server-side failures are logged in full with the request id;
// the client gets a generic message.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	if st := stateFrom(r.Context()); st != nil {
		st.err = err
	}
	resp := renderError(err, requestID(r.Context()))
	if resp.Code >= 500 {
		loggerFrom(r.Context()).ErrorContext(r.Context(), "request failed", "err", err, "status", resp.Code, "request_id", requestID(r.Context()))
	}
	writeResponse(w, resp)
}

// rejectionReason names why a balance change was refused, for metrics, or
// "" when err is not such a refusal: the reason column of errorMapping, or
// "validation" for a request that breaks a rule.
func rejectionReason(err error) string {
	for _, m := range errorMapping {
		if errors.Is(err, m.err) {
			return m.reason
		}
	}
	if e := toError(err); e.Type == typeValidation {
		return "validation"
	}
	return ""
}
