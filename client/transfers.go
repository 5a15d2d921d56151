package client

import (
	"context"
	"net/http"

	"github.com/ledgerd/ledgerd/money"
)

// NewTransfer is the request of CreateTransfer.
type NewTransfer struct {
	FromUserID int64 `json:"fromUserId"`
	ToUserID   int64 `json:"toUserId"`
	// Amount is what moves, above 0.
	Amount      money.Cents `json:"amount"`
	Description string      `json:"description,omitempty"`
	Reference   string      `json:"reference,omitempty"`
}

// CreateTransfer moves an amount from one user to another in one
// transaction (POST /api/transfers): two entries, or none. A payer without
// the available funds is ErrInsufficientFunds; an unknown user on either
// side ErrNotFound; the same user on both sides or an amount ≤ 0
// ErrValidation.
func (cl *Client) CreateTransfer(ctx context.Context, t NewTransfer, opts ...CallOption) (Transfer, error) {
	var out Transfer
	err := cl.do(ctx, call{method: http.MethodPost, path: "/transfers", body: t, out: &out, opts: opts})
	return out, err
}

// NewBatch is the request of CreateBatch.
type NewBatch struct {
	// Changes are 1 to 100 changes, each of a different user.
	Changes     []BatchChange `json:"changes"`
	Description string        `json:"description,omitempty"`
	Reference   string        `json:"reference,omitempty"`
}

// BatchChange is one change of a batch.
type BatchChange struct {
	UserID int64 `json:"userId"`
	// Amount is signed, never 0.
	Amount      money.Cents `json:"amount"`
	Description string      `json:"description,omitempty"`
}

// CreateBatch applies several changes all or nothing (POST /api/batches).
// When a change is refused nothing is written and the error is the first
// refused change's, with Error.Param "changes[i]": ErrInsufficientFunds,
// ErrNotFound or ErrValidation.
func (cl *Client) CreateBatch(ctx context.Context, b NewBatch, opts ...CallOption) (Batch, error) {
	var out Batch
	err := cl.do(ctx, call{method: http.MethodPost, path: "/batches", body: b, out: &out, opts: opts})
	return out, err
}

// NewReversal is the request of CreateReversal.
type NewReversal struct {
	// TransactionID is the transaction to undo: a Transfer's, a Batch's
	// ID, or an entry's TransactionID.
	TransactionID string `json:"transactionId"`
	Description   string `json:"description,omitempty"`
}

// CreateReversal undoes every entry of a transaction with one reversal
// entry each, in one transaction (POST /api/reversals). A transaction is
// reversed at most once: again is ErrConflict. A reversal that would take
// a balance below 0 (or below what its pending holds keep) is
// ErrInsufficientFunds and writes nothing; an unknown transaction
// ErrNotFound; the reversal of an opening or of a reversal ErrValidation.
func (cl *Client) CreateReversal(ctx context.Context, r NewReversal, opts ...CallOption) (Reversal, error) {
	var out Reversal
	err := cl.do(ctx, call{method: http.MethodPost, path: "/reversals", body: r, out: &out, opts: opts})
	return out, err
}
