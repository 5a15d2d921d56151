package api

import (
	"fmt"
	"net/http"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ledgerd/ledgerd/ledger"
)

type batchRequest struct {
	Changes     []batchChange `json:"changes"`
	Description *string       `json:"description"`
	Reference   *string       `json:"reference"`
}

type batchChange struct {
	UserID      jsontext.Value `json:"userId"`
	Amount      jsontext.Value `json:"amount"`
	Description *string        `json:"description"`
}

// batchData is the answer to POST /api/batches.
type batchData struct {
	ID          string         `json:"id"`
	Entries     []ledger.Entry `json:"entries"`
	Description *string        `json:"description"`
	Reference   *string        `json:"reference"`
	CreatedAt   string         `json:"createdAt"`
}

func renderBatch(b ledger.Batch) ledger.Answer {
	return renderData(http.StatusCreated, batchData{
		ID: b.ID.String(), Entries: b.Entries, Description: nullable(b.Description),
		Reference: nullable(b.Reference), CreatedAt: ledger.FormatTime(b.CreatedAt),
	}, "Batch committed successfully")
}

func handleCreateBatch(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req batchRequest
		body, err := decodeBody(w, r, &req, false)
		if err != nil {
			writeError(w, r, err)
			return
		}
		b, err := parseBatch(req)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if b.Idempotency, err = idempotency(r, body, renderBatch); err != nil {
			writeError(w, r, err)
			return
		}
		res, err := l.PostBatch(r.Context(), b)
		writeOutcome(w, r, res, err, renderBatch)
	}
}

// parseBatch reads the changes' syntax; the ledger checks the rules (how
// many, each user once, amounts).
func parseBatch(req batchRequest) (ledger.BatchRequest, error) {
	if req.Changes == nil {
		return ledger.BatchRequest{}, badParam("changes", "changes is required: a list of 1 to %d changes", ledger.MaxBatchChanges)
	}
	if len(req.Changes) > ledger.MaxBatchChanges {
		return ledger.BatchRequest{}, badParam("changes", "a batch needs 1 to %d changes (got %d)", ledger.MaxBatchChanges, len(req.Changes))
	}
	b := ledger.BatchRequest{Description: deref(req.Description), Reference: deref(req.Reference),
		Changes: make([]ledger.BatchChange, len(req.Changes))}
	for i, c := range req.Changes {
		field := fmt.Sprintf("changes[%d]", i)
		if len(c.UserID) == 0 || string(c.UserID) == "null" {
			return b, badParam(field, "%s.userId is required", field)
		}
		id, err := parseID(field, field+".userId", string(c.UserID))
		if err != nil {
			return b, withParam(err, field)
		}
		amount, err := parseAmount(field+".amount", c.Amount)
		if err != nil {
			return b, withParam(err, field)
		}
		b.Changes[i] = ledger.BatchChange{UserID: id, Amount: amount, Description: deref(c.Description)}
	}
	return b, nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
