package api

import (
	"encoding/json"
	"net/http"
)

// envelope is the body of every /api response.
type envelope struct {
	Success    bool        `json:"success"`
	Data       any         `json:"data,omitempty"`
	Message    string      `json:"message,omitempty"`
	Pagination *pagination `json:"pagination,omitempty"`
	Error      *errorBody  `json:"error,omitempty"`
}

type errorBody struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
	Type    string `json:"type"`
}

type pagination struct {
	NextCursor *string `json:"nextCursor"`
	HasMore    bool    `json:"hasMore"`
}

// writeJSON writes v as the JSON body with the given status.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		loggerFrom(r.Context()).ErrorContext(r.Context(), "encode response", "err", err, "request_id", requestID(r.Context()))
		status = http.StatusInternalServerError
		b = []byte(`{"success":false,"error":{"message":"Internal server error","code":500,"type":"internal"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeData writes a success envelope.
func writeData(w http.ResponseWriter, r *http.Request, status int, data any, message string) {
	writeJSON(w, r, status, envelope{Success: true, Data: data, Message: message})
}
