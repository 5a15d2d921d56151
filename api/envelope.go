package api

import (
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

// errorBody is the error of a failure envelope.
type errorBody struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
	Type    string `json:"type"`
	Param   string `json:"param,omitempty"`
	// RequestID is the X-Request-Id of the request that decided the
	// answer: this request's, or, in an answer replayed for an
	// Idempotency-Key, the original request's (stored with the answer).
	RequestID string `json:"requestId"`
}

type pagination struct {
	NextCursor *string `json:"nextCursor"`
	HasMore    bool    `json:"hasMore"`
}

// writeJSON writes v as the JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	writeResponse(w, renderJSON(status, v))
}

// writeData writes a success envelope.
func writeData(w http.ResponseWriter, status int, data any, message string) {
	writeResponse(w, renderData(status, data, message))
}
