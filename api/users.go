package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

// userData is a user as GET /api/users/{id} shows it.
type userData struct {
	ID        int64       `json:"id"`
	Balance   money.Cents `json:"balance"`
	CreatedAt string      `json:"createdAt"`
	UpdatedAt string      `json:"updatedAt"`
}

func newUserData(u projection.User) userData {
	return userData{ID: u.ID, Balance: u.Balance, CreatedAt: ledger.FormatTime(u.CreatedAt), UpdatedAt: ledger.FormatTime(u.UpdatedAt)}
}

func handleGetUser(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := parseID("user id", chi.URLParam(r, "id"))
		if err != nil {
			writeError(w, r, err)
			return
		}
		u, err := l.FindUser(r.Context(), id)
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeData(w, r, http.StatusOK, newUserData(u), "")
	}
}

type createUserRequest struct {
	ID      json.RawMessage `json:"id"`
	Balance json.RawMessage `json:"balance"`
}

func handleCreateUser(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req createUserRequest
		if err := decodeBody(w, r, &req, true); err != nil {
			writeError(w, r, err)
			return
		}
		var n ledger.NewUser
		if len(req.ID) > 0 && string(req.ID) != "null" {
			id, err := parseID("id", string(req.ID))
			if err != nil {
				writeError(w, r, err)
				return
			}
			n.ID = id
		}
		if len(req.Balance) > 0 && string(req.Balance) != "null" {
			b, err := parseAmount("balance", req.Balance)
			if err != nil {
				writeError(w, r, err)
				return
			}
			if b < 0 {
				writeError(w, r, badRequest("balance must not be negative"))
				return
			}
			n.Balance = b
		}
		u, err := l.CreateUser(r.Context(), n)
		if err != nil {
			writeError(w, r, err)
			return
		}
		w.Header().Set("Location", "/api/users/"+strconv.FormatInt(u.ID, 10))
		writeData(w, r, http.StatusCreated, newUserData(u), "User created successfully")
	}
}

type balanceRequest struct {
	Amount      json.RawMessage `json:"amount"`
	Description *string         `json:"description"`
	Reference   *string         `json:"reference"`
}

// balanceData is the answer to PUT /api/users/{id}/balance.
type balanceData struct {
	ID        int64       `json:"id"`
	Balance   money.Cents `json:"balance"`
	UpdatedAt string      `json:"updatedAt"`
	Entry     entryRef    `json:"entry"`
}

type entryRef struct {
	ID  string `json:"id"`
	Seq int64  `json:"seq"`
}

func handleUpdateBalance(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := parseID("user id", chi.URLParam(r, "id"))
		if err != nil {
			writeError(w, r, err)
			return
		}
		var req balanceRequest
		if err := decodeBody(w, r, &req, false); err != nil {
			writeError(w, r, err)
			return
		}
		amount, err := parseAmount("amount", req.Amount)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if amount == 0 {
			writeError(w, r, badRequest("amount must not be zero"))
			return
		}
		p, err := l.PostEntry(r.Context(), ledger.Change{
			UserID: id, Amount: amount, Description: deref(req.Description), Reference: deref(req.Reference),
		})
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeData(w, r, http.StatusOK, balanceData{
			ID: p.User.ID, Balance: p.User.Balance, UpdatedAt: ledger.FormatTime(p.User.UpdatedAt),
			Entry: entryRef{ID: p.Entry.ID.String(), Seq: p.Entry.Seq},
		}, "Balance updated successfully")
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
