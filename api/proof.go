package api

import (
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ledgerd/ledgerd/ledger"
)

// The query parameters of the proof routes.
var (
	statementParams       = []string{"from", "to"}
	signingKeyParams      = []string{"keyId"}
	checkpointListParams  = []string{"after", "limit"}
	checkpointProofParams = []string{"checkpoint"}
)

func handleGetStatement(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathUserID(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		q, err := queryParams(r, statementParams)
		var from, to *time.Time
		if err == nil {
			from, err = parseInstant(q, "from")
		}
		if err == nil {
			to, err = parseInstant(q, "to")
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		s, err := l.FindStatement(r.Context(), id, from, to)
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeData(w, http.StatusOK, s, "")
	}
}

// keyIDPattern is a key id: the SHA-256 of the public key, lowercase hex.
var keyIDPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

func handleGetSigningKey(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := queryParams(r, signingKeyParams)
		if err != nil {
			writeError(w, r, err)
			return
		}
		var keyID string
		if v, ok := q["keyId"]; ok {
			if keyID = v[0]; !keyIDPattern.MatchString(keyID) {
				writeError(w, r, badParam("keyId", "keyId must be 64 lowercase hex digits"))
				return
			}
		}
		k, err := l.FindSigningKey(r.Context(), keyID)
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeData(w, http.StatusOK, k, "")
	}
}

func handleListCheckpoints(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := queryParams(r, checkpointListParams)
		var (
			after int64
			limit int
		)
		if err == nil {
			limit, err = parseLimit(q, 50, 1000)
		}
		if v, ok := q["after"]; ok && err == nil {
			if after, err = strconv.ParseInt(v[0], 10, 64); err != nil || after < 0 || !isDigits(v[0]) {
				err = badParam("after", "after must be a checkpoint id (a non-negative integer), as nextCursor gives it")
			}
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		cs, more, err := l.ListCheckpoints(r.Context(), after, limit)
		if err != nil {
			writeError(w, r, err)
			return
		}
		var next *string
		if more {
			s := strconv.FormatInt(cs[len(cs)-1].ID, 10)
			next = &s
		}
		if cs == nil {
			cs = []ledger.Checkpoint{}
		}
		writeJSON(w, http.StatusOK, envelope{Success: true, Data: cs, Pagination: &pagination{NextCursor: next, HasMore: more}})
	}
}

func handleGetCheckpoint(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := parseID("checkpointId", "checkpoint id", chi.URLParam(r, "checkpointId"))
		if err != nil {
			writeError(w, r, err)
			return
		}
		c, err := l.FindCheckpoint(r.Context(), id)
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeData(w, http.StatusOK, c, "")
	}
}

func handleGetCheckpointProof(l *ledger.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathUserID(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		q, err := queryParams(r, checkpointProofParams)
		var checkpoint int64 // 0: the latest
		if v, ok := q["checkpoint"]; ok && err == nil {
			checkpoint, err = parseID("checkpoint", "checkpoint (a checkpoint id)", v[0])
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		p, err := l.FindCheckpointProof(r.Context(), id, checkpoint)
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeData(w, http.StatusOK, p, "")
	}
}

// isDigits reports whether s is decimal digits only (no sign).
func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
