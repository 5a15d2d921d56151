package api

import (
	"net/http"

	"github.com/ledgerd/ledgerd/ledger"
)

type reversalRequest struct {
	TransactionID *string `json:"transactionId"`
	Description   *string `json:"description"`
}

// reversalData is the answer to POST /api/reversals.
type reversalData struct {
	ID            string         `json:"id"`
	TransactionID string         `json:"transactionId"`
	Entries       []ledger.Entry `json:"entries"`
	CreatedAt     string         `json:"createdAt"`
}

func renderReversal(v ledger.Reversal) ledger.Answer {
	return renderData(http.StatusCreated, reversalData{
		ID: v.ID.String(), TransactionID: v.TransactionID.String(), Entries: v.Entries,
		CreatedAt: ledger.FormatTime(v.CreatedAt),
	}, "Transaction reversed successfully")
}

func handleCreateReversal(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req reversalRequest
		body, err := decodeBody(w, r, &req, false)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if req.TransactionID == nil {
			writeError(w, r, badParam("transactionId", "transactionId is required"))
			return
		}
		id, err := parseUUID("transactionId", "transactionId", *req.TransactionID)
		if err != nil {
			writeError(w, r, err)
			return
		}
		v := ledger.ReversalRequest{TransactionID: id, Description: deref(req.Description)}
		if v.Idempotency, err = idempotency(r, body, renderReversal); err != nil {
			writeError(w, r, err)
			return
		}
		res, err := l.PostReversal(r.Context(), v)
		writeOutcome(w, r, res, err, renderReversal)
	}
}
