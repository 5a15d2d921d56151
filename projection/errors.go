package projection

import "errors"

// Errors returned by this package.
var (
	// ErrNotFound means no user has the given id.
	ErrNotFound = errors.New("user not found")
)
