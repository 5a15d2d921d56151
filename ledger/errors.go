package ledger

import (
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/projection"
)

// Errors returned by Ledger methods. ErrNotFound is the projection's own
// value, so errors.Is works whichever package reported it.
var (
	// ErrNotFound means the user does not exist.
	ErrNotFound = projection.ErrNotFound
	// ErrEntryNotFound means no entry has the given id.
	ErrEntryNotFound = errors.New("entry not found")
	// ErrInsufficientFunds means the change would take a balance below 0.
	ErrInsufficientFunds = errors.New("insufficient funds")
	// ErrBalanceLimit means the change would take a balance above
	// money.MaxBalance.
	ErrBalanceLimit = errors.New("balance limit exceeded")
	// ErrUserExists means a user with the requested id already exists.
	ErrUserExists = errors.New("user already exists")
	// ErrBusy means too many changes of the same user are already waiting
	// in this process; nothing was written, and a retry after a moment may
	// succeed.
	ErrBusy = errors.New("too many changes waiting for this user")
	// ErrUnavailable means the database could not be reached, or did not
	// answer in time, or no connection came free before the pool's wait
	// limit. Nothing was committed, and a retry may succeed.
	ErrUnavailable = errors.New("database unavailable")
)

// ValidationError reports a request that breaks a rule of the contract,
// before anything is written. Message is fit for an API client.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Message }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}
