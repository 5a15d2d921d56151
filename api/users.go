package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

// userData is a user as GET /api/users/{id} shows it.
type userData struct {
	ID        int64       `json:"id"`
	Balance   money.Cents `json:"balance"`
	Available money.Cents `json:"available"`
	Held      money.Cents `json:"held"`
	CreatedAt string      `json:"createdAt"`
	UpdatedAt string      `json:"updatedAt"`
}

func newUserData(u projection.User) userData {
	return userData{ID: u.ID, Balance: u.Balance, Available: u.Balance - u.Held, Held: u.Held,
		CreatedAt: ledger.FormatTime(u.CreatedAt), UpdatedAt: ledger.FormatTime(u.UpdatedAt)}
}

func handleGetUser(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathUserID(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		u, err := l.FindUser(r.Context(), id)
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeData(w, http.StatusOK, newUserData(u), "")
	}
}

type createUserRequest struct {
	ID      jsontext.Value `json:"id"`
	Balance jsontext.Value `json:"balance"`
}

// renderUserCreated renders POST /api/users's answer.
func renderUserCreated(u projection.User) ledger.Answer {
	return renderData(http.StatusCreated, newUserData(u), "User created successfully")
}

func handleCreateUser(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req createUserRequest
		body, err := decodeBody(w, r, &req, true)
		if err != nil {
			writeError(w, r, err)
			return
		}
		var n ledger.NewUser
		if len(req.ID) > 0 && string(req.ID) != "null" {
			if n.ID, err = parseID("id", "id", string(req.ID)); err != nil {
				writeError(w, r, err)
				return
			}
		}
		if len(req.Balance) > 0 && string(req.Balance) != "null" {
			if n.Balance, err = parseAmount("balance", req.Balance); err != nil {
				writeError(w, r, err)
				return
			}
			if n.Balance < 0 {
				writeError(w, r, badParam("balance", "balance must not be negative"))
				return
			}
		}
		if n.Idempotency, err = idempotency(r, body, renderUserCreated); err != nil {
			writeError(w, r, err)
			return
		}
		u, err := l.CreateUser(r.Context(), n)
		if err == nil {
			w.Header().Set("Location", "/api/users/"+strconv.FormatInt(u.ID, 10))
		} else if replay, ok := asReplay(err); ok && replay.Answer.Code == http.StatusCreated {
			// A replayed creation points at the user it created.
			var stored struct {
				Data struct{ ID int64 } `json:"data"`
			}
			if json.Unmarshal(replay.Answer.Body, &stored) == nil && stored.Data.ID > 0 {
				w.Header().Set("Location", "/api/users/"+strconv.FormatInt(stored.Data.ID, 10))
			}
		}
		writeOutcome(w, r, u, err, renderUserCreated)
	}
}

type balanceRequest struct {
	Amount      jsontext.Value `json:"amount"`
	Description *string        `json:"description"`
	Reference   *string        `json:"reference"`
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

// renderBalanceUpdated renders PUT /api/users/{id}/balance's answer.
func renderBalanceUpdated(p ledger.Posted) ledger.Answer {
	return renderData(http.StatusOK, balanceData{
		ID: p.User.ID, Balance: p.User.Balance, UpdatedAt: ledger.FormatTime(p.User.UpdatedAt),
		Entry: entryRef{ID: p.Entry.ID.String(), Seq: p.Entry.Seq},
	}, "Balance updated successfully")
}

func handleUpdateBalance(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathUserID(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		var req balanceRequest
		body, err := decodeBody(w, r, &req, false)
		if err != nil {
			writeError(w, r, err)
			return
		}
		amount, err := parseAmount("amount", req.Amount)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if amount == 0 {
			writeError(w, r, badParam("amount", "amount must not be zero"))
			return
		}
		c := ledger.Change{UserID: id, Amount: amount, Description: deref(req.Description), Reference: deref(req.Reference)}
		if c.Idempotency, err = idempotency(r, body, renderBalanceUpdated); err != nil {
			writeError(w, r, err)
			return
		}
		p, err := l.PostEntry(r.Context(), c)
		writeOutcome(w, r, p, err, renderBalanceUpdated)
	}
}

// balanceAtData is the answer to GET /api/users/{id}/balance.
type balanceAtData struct {
	ID      int64       `json:"id"`
	Balance money.Cents `json:"balance"`
	At      string      `json:"at"`
	Seq     int64       `json:"seq"`
}

func handleGetBalance(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathUserID(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		q, err := queryParams(r, []string{"at"})
		if err != nil {
			writeError(w, r, err)
			return
		}
		at, err := parseInstant(q, "at") // nil: now, the latest entry
		if err != nil {
			writeError(w, r, err)
			return
		}
		b, err := l.FindBalanceAt(r.Context(), id, at)
		if err != nil {
			writeError(w, r, err)
			return
		}
		shown := time.Now()
		if at != nil {
			shown = *at
		}
		writeData(w, http.StatusOK, balanceAtData{ID: id, Balance: b.Balance, At: ledger.FormatTime(shown), Seq: b.Seq}, "")
	}
}

// verifyData is the answer to GET /api/users/{id}/verify.
type verifyData struct {
	ID               int64       `json:"id"`
	OK               bool        `json:"ok"`
	Entries          int64       `json:"entries"`
	LedgerBalance    money.Cents `json:"ledgerBalance"`
	ProjectedBalance money.Cents `json:"projectedBalance"`
	ChainValid       bool        `json:"chainValid"`
	FirstBadSeq      *int64      `json:"firstBadSeq,omitempty"`
}

func handleVerifyUser(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathUserID(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		v, err := l.VerifyUser(r.Context(), id)
		if err != nil {
			writeError(w, r, err)
			return
		}
		d := verifyData{ID: v.UserID, OK: v.OK, Entries: v.Entries, LedgerBalance: v.LedgerBalance,
			ProjectedBalance: v.ProjectedBalance, ChainValid: v.ChainValid}
		if v.FirstBadSeq != 0 {
			d.FirstBadSeq = &v.FirstBadSeq
		}
		writeData(w, http.StatusOK, d, "")
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
