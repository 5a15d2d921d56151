package api

import (
	"net/http"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

type transferRequest struct {
	FromUserID  jsontext.Value `json:"fromUserId"`
	ToUserID    jsontext.Value `json:"toUserId"`
	Amount      jsontext.Value `json:"amount"`
	Description *string        `json:"description"`
	Reference   *string        `json:"reference"`
}

// transferData is the answer to POST /api/transfers.
type transferData struct {
	ID         string          `json:"id"`
	FromUserID int64           `json:"fromUserId"`
	ToUserID   int64           `json:"toUserId"`
	Amount     money.Cents     `json:"amount"`
	Entries    [2]ledger.Entry `json:"entries"`
	CreatedAt  string          `json:"createdAt"`
}

func renderTransfer(t ledger.Transfer) ledger.Answer {
	return renderData(http.StatusCreated, transferData{
		ID: t.ID.String(), FromUserID: t.FromUserID, ToUserID: t.ToUserID, Amount: t.Amount,
		Entries: t.Entries, CreatedAt: ledger.FormatTime(t.CreatedAt),
	}, "Transfer completed successfully")
}

func handleCreateTransfer(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req transferRequest
		body, err := decodeBody(w, r, &req, false)
		if err != nil {
			writeError(w, r, err)
			return
		}
		var t ledger.TransferRequest
		for _, f := range []struct {
			name string
			raw  jsontext.Value
			dst  *int64
		}{{"fromUserId", req.FromUserID, &t.FromUserID}, {"toUserId", req.ToUserID, &t.ToUserID}} {
			if len(f.raw) == 0 || string(f.raw) == "null" {
				writeError(w, r, badParam(f.name, "%s is required", f.name))
				return
			}
			if *f.dst, err = parseID(f.name, f.name, string(f.raw)); err != nil {
				writeError(w, r, err)
				return
			}
		}
		if t.Amount, err = parseAmount("amount", req.Amount); err != nil {
			writeError(w, r, err)
			return
		}
		t.Description, t.Reference = deref(req.Description), deref(req.Reference)
		if t.Idempotency, err = idempotency(r, body, renderTransfer); err != nil {
			writeError(w, r, err)
			return
		}
		res, err := l.PostTransfer(r.Context(), t)
		writeOutcome(w, r, res, err, renderTransfer)
	}
}
