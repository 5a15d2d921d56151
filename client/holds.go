package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"time"

	"github.com/ledgerd/ledgerd/money"
)

// NewHold is the request of PlaceHold.
type NewHold struct {
	// Amount is what the hold reserves, above 0.
	Amount money.Cents `json:"amount"`
	// ExpiresAt is when the hold stops counting, in the future and at most
	// 30 days ahead; the zero time: 7 days ahead.
	ExpiresAt   time.Time `json:"expiresAt,omitzero"`
	Description string    `json:"description,omitempty"`
	Reference   string    `json:"reference,omitempty"`
}

// PlaceHold reserves part of a user's available balance for a later
// capture (POST /api/users/{id}/holds). It returns ErrInsufficientFunds
// when the available balance is short, ErrNotFound for an unknown user,
// ErrValidation for a bad amount or expiry.
func (cl *Client) PlaceHold(ctx context.Context, userID int64, h NewHold, opts ...CallOption) (Hold, error) {
	var out Hold
	err := cl.do(ctx, call{method: http.MethodPost, path: userPath(userID, "/holds"), body: h, out: &out, opts: opts})
	return out, err
}

// GetHold returns a hold (GET /api/holds/{holdId}); a pending hold past
// its expiry reads HoldExpired. It returns ErrNotFound for an unknown hold.
func (cl *Client) GetHold(ctx context.Context, holdID string, opts ...CallOption) (Hold, error) {
	if holdID == "" {
		return Hold{}, errEmptyID
	}
	var out Hold
	err := cl.do(ctx, call{method: http.MethodGet, path: "/holds/" + segment(holdID), out: &out, opts: opts})
	return out, err
}

// HoldFilter selects a user's holds, newest first.
type HoldFilter struct {
	// Status keeps the holds in one state; "" keeps all.
	Status HoldStatus
	// Limit is the page size, 1 to 1000; 0: 50.
	Limit int
	// Cursor is the NextCursor of the previous page; "" for the first.
	Cursor string
}

func (f HoldFilter) query() url.Values {
	q := url.Values{}
	setString(q, "status", string(f.Status))
	setInt(q, "limit", int64(f.Limit))
	setString(q, "cursor", f.Cursor)
	return q
}

// ListHolds returns one page of a user's holds, newest first (GET
// /api/users/{id}/holds).
func (cl *Client) ListHolds(ctx context.Context, userID int64, f HoldFilter, opts ...CallOption) (Page[Hold], error) {
	var (
		data []Hold
		info pageInfo
	)
	err := cl.do(ctx, call{method: http.MethodGet, path: userPath(userID, "/holds"), query: f.query(),
		out: &data, page: &info, opts: opts})
	return page(data, info), err
}

// HoldPages iterates over the pages of a user's holds that match f, from
// f.Cursor to the last page.
func (cl *Client) HoldPages(ctx context.Context, userID int64, f HoldFilter, opts ...CallOption) iter.Seq2[Page[Hold], error] {
	return pages(ctx, f.Cursor, func(ctx context.Context, cursor string) (Page[Hold], error) {
		f.Cursor = cursor
		return cl.ListHolds(ctx, userID, f, opts...)
	}, byNextCursor)
}

type captureRequest struct {
	Amount money.Cents `json:"amount,omitempty"`
}

// CaptureHold withdraws amount of a pending hold and releases the rest
// (POST /api/holds/{holdId}/capture): one withdrawal entry, in one
// transaction. An amount of 0 captures the whole hold. A hold that is not
// pending (captured, voided, expired) is ErrConflict; an unknown hold
// ErrNotFound; an amount above the hold's ErrValidation.
func (cl *Client) CaptureHold(ctx context.Context, holdID string, amount money.Cents, opts ...CallOption) (Hold, error) {
	if holdID == "" {
		return Hold{}, errEmptyID
	}
	var out Hold
	err := cl.do(ctx, call{method: http.MethodPost, path: "/holds/" + segment(holdID) + "/capture",
		body: captureRequest{Amount: amount}, out: &out, opts: opts})
	return out, err
}

// VoidHold releases a pending hold whole (POST /api/holds/{holdId}/void).
// A hold that is not pending is ErrConflict; an unknown hold ErrNotFound.
func (cl *Client) VoidHold(ctx context.Context, holdID string, opts ...CallOption) (Hold, error) {
	if holdID == "" {
		return Hold{}, errEmptyID
	}
	var out Hold
	err := cl.do(ctx, call{method: http.MethodPost, path: "/holds/" + segment(holdID) + "/void", out: &out, opts: opts})
	return out, err
}
