package projection

import "errors"

// Errors returned by this package.
var (
	// ErrNotFound means no user has the given id.
	ErrNotFound = errors.New("user not found")
	// ErrInsufficientFunds means the change would take the balance below 0.
	ErrInsufficientFunds = errors.New("insufficient funds")
	// ErrBalanceLimit means the change would take the balance above
	// money.MaxBalance.
	ErrBalanceLimit = errors.New("balance limit exceeded")
	// ErrExists means a user with the given id already exists.
	ErrExists = errors.New("user already exists")
)
