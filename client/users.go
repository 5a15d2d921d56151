package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/ledgerd/ledgerd/money"
)

// NewUser is the request of CreateUser.
type NewUser struct {
	// ID is the new user's id; 0 lets the server assign one.
	ID int64 `json:"id,omitempty"`
	// Balance is the opening balance (≥ 0), recorded as an opening entry
	// when above 0.
	Balance money.Cents `json:"balance,omitempty"`
}

// CreateUser creates a user (POST /api/users). It returns ErrConflict
// when the id exists, ErrValidation for a negative balance or a bad id.
func (cl *Client) CreateUser(ctx context.Context, u NewUser, opts ...CallOption) (User, error) {
	var out User
	err := cl.do(ctx, call{method: http.MethodPost, path: "/users", body: u, out: &out, opts: opts})
	return out, err
}

// GetUser returns a user's current balance, held and available amounts
// (GET /api/users/{id}). It returns ErrNotFound for an unknown user.
func (cl *Client) GetUser(ctx context.Context, id int64, opts ...CallOption) (User, error) {
	var out User
	err := cl.do(ctx, call{method: http.MethodGet, path: userPath(id, ""), out: &out, opts: opts})
	return out, err
}

// BalanceChange is the request of UpdateBalance.
type BalanceChange struct {
	// Amount is signed: above 0 a deposit, below 0 a withdrawal; never 0.
	Amount money.Cents `json:"amount"`
	// Description (≤ 500 characters) and Reference (≤ 200) are optional.
	Description string `json:"description,omitempty"`
	Reference   string `json:"reference,omitempty"`
}

// UpdateBalance applies one ledger entry to a user's balance (PUT
// /api/users/{id}/balance) and returns the balance right after it. A
// withdrawal past the available balance is ErrInsufficientFunds and writes
// nothing; an unknown user is ErrNotFound; an amount of 0, one above
// money.MaxAmount in absolute value, or one that would take the balance
// past money.MaxBalance is ErrValidation.
func (cl *Client) UpdateBalance(ctx context.Context, id int64, c BalanceChange, opts ...CallOption) (BalanceUpdate, error) {
	var out BalanceUpdate
	err := cl.do(ctx, call{method: http.MethodPut, path: userPath(id, "/balance"), body: c, out: &out, opts: opts})
	return out, err
}

// GetBalanceAt returns a user's balance as of the instant at, from the
// ledger (GET /api/users/{id}/balance?at=); the zero time means now. It
// returns ErrNotFound for an unknown user.
func (cl *Client) GetBalanceAt(ctx context.Context, id int64, at time.Time, opts ...CallOption) (BalanceAt, error) {
	q := url.Values{}
	setTime(q, "at", at)
	var out BalanceAt
	err := cl.do(ctx, call{method: http.MethodGet, path: userPath(id, "/balance"), query: q, out: &out, opts: opts})
	return out, err
}

// VerifyUser recomputes a user's ledger on the server (GET
// /api/users/{id}/verify): the sum of the entries against the balance, seq
// without gaps, the running balances and the hash chain. A ledger that
// fails a check is a Verification with OK false, not an error. It returns
// ErrNotFound for an unknown user.
func (cl *Client) VerifyUser(ctx context.Context, id int64, opts ...CallOption) (Verification, error) {
	var out Verification
	err := cl.do(ctx, call{method: http.MethodGet, path: userPath(id, "/verify"), out: &out, opts: opts})
	return out, err
}

// setTime sets q[name] to t in RFC 3339 (UTC, nanoseconds as needed),
// unless t is zero.
func setTime(q url.Values, name string, t time.Time) {
	if !t.IsZero() {
		q.Set(name, t.UTC().Format(time.RFC3339Nano))
	}
}
