package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

type placeHoldRequest struct {
	Amount      jsontext.Value `json:"amount"`
	ExpiresAt   *string        `json:"expiresAt"`
	Description *string        `json:"description"`
	Reference   *string        `json:"reference"`
}

type captureRequest struct {
	Amount jsontext.Value `json:"amount"`
}

// renderHold renders a hold with status.
func renderHold(status int, message string) func(ledger.Hold) ledger.Answer {
	return func(h ledger.Hold) ledger.Answer { return renderData(status, h, message) }
}

func handlePlaceHold(l *ledger.Ledger) http.HandlerFunc {
	render := renderHold(http.StatusCreated, "Hold placed successfully")
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathUserID(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		var req placeHoldRequest
		body, err := decodeBody(w, r, &req, false)
		if err != nil {
			writeError(w, r, err)
			return
		}
		n := ledger.NewHold{UserID: id, Description: deref(req.Description), Reference: deref(req.Reference)}
		if n.Amount, err = parseAmount("amount", req.Amount); err != nil {
			writeError(w, r, err)
			return
		}
		if req.ExpiresAt != nil {
			t, err := parseInstantValue("expiresAt", *req.ExpiresAt)
			if err != nil {
				writeError(w, r, err)
				return
			}
			n.ExpiresAt = &t
		}
		if n.Idempotency, err = idempotency(r, body, render); err != nil {
			writeError(w, r, err)
			return
		}
		h, err := l.PlaceHold(r.Context(), n)
		if err == nil {
			w.Header().Set("Location", "/api/holds/"+h.ID.String())
		}
		writeOutcome(w, r, h, err, render)
	}
}

func parseHoldID(r *http.Request) (uuid.UUID, error) {
	return parseUUID("holdId", "hold id", chi.URLParam(r, "holdId"))
}

func handleCaptureHold(l *ledger.Ledger) http.HandlerFunc {
	render := renderHold(http.StatusOK, "Hold captured successfully")
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := parseHoldID(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		var req captureRequest
		body, err := decodeBody(w, r, &req, true)
		if err != nil {
			writeError(w, r, err)
			return
		}
		var amount money.Cents // 0: the whole hold
		if len(req.Amount) > 0 && string(req.Amount) != "null" {
			if amount, err = parseAmount("amount", req.Amount); err != nil {
				writeError(w, r, err)
				return
			}
			if amount <= 0 {
				writeError(w, r, badParam("amount", "amount must be greater than zero"))
				return
			}
		}
		idem, err := idempotency(r, body, render)
		if err != nil {
			writeError(w, r, err)
			return
		}
		h, err := l.CaptureHold(r.Context(), id, amount, idem)
		writeOutcome(w, r, h, err, render)
	}
}

func handleVoidHold(l *ledger.Ledger) http.HandlerFunc {
	render := renderHold(http.StatusOK, "Hold voided successfully")
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := parseHoldID(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		var req struct{}
		body, err := decodeBody(w, r, &req, true)
		if err != nil {
			writeError(w, r, err)
			return
		}
		idem, err := idempotency(r, body, render)
		if err != nil {
			writeError(w, r, err)
			return
		}
		h, err := l.VoidHold(r.Context(), id, idem)
		writeOutcome(w, r, h, err, render)
	}
}

func handleGetHold(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := parseHoldID(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		h, err := l.FindHold(r.Context(), id)
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeData(w, http.StatusOK, h, "")
	}
}

// A holds cursor is the last hold of the previous page: its creation time
// and id, encoded so that clients treat it as opaque.
const holdCursorPrefix = "h1:"

func encodeHoldCursor(h ledger.Hold) string {
	return base64.RawURLEncoding.EncodeToString([]byte(holdCursorPrefix + strconv.FormatInt(h.CreatedAt.UnixMicro(), 10) + ":" + h.ID.String()))
}

func decodeHoldCursor(s string) (*ledger.Hold, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), holdCursorPrefix) {
		return nil, false
	}
	at, id, ok := strings.Cut(strings.TrimPrefix(string(b), holdCursorPrefix), ":")
	if !ok {
		return nil, false
	}
	us, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return nil, false
	}
	hid, err := uuid.Parse(id)
	if err != nil {
		return nil, false
	}
	return &ledger.Hold{ID: hid, CreatedAt: time.UnixMicro(us)}, true
}

// holdListParams are the query parameters of GET /users/{id}/holds.
var holdListParams = []string{"status", "limit", "cursor"}

func handleListHolds(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathUserID(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		q, err := queryParams(r, holdListParams)
		if err != nil {
			writeError(w, r, err)
			return
		}
		f := ledger.HoldFilter{UserID: id, Status: ledger.HoldStatus(q.Get("status")), Limit: DefaultPageSize}
		if f.Limit, err = parseLimit(q, DefaultPageSize, ledger.MaxPageSize); err != nil {
			writeError(w, r, err)
			return
		}
		if _, ok := q["cursor"]; ok {
			before, ok := decodeHoldCursor(q.Get("cursor"))
			if !ok {
				writeError(w, r, badParam("cursor", "cursor is not valid; pass the nextCursor of the previous page"))
				return
			}
			f.Before = before
		}
		holds, more, err := l.FindHolds(r.Context(), f)
		if err != nil {
			writeError(w, r, err)
			return
		}
		p := &pagination{HasMore: more}
		if more {
			c := encodeHoldCursor(holds[len(holds)-1])
			p.NextCursor = &c
		}
		if holds == nil {
			holds = []ledger.Hold{}
		}
		writeJSON(w, http.StatusOK, envelope{Success: true, Data: holds, Pagination: p})
	}
}
