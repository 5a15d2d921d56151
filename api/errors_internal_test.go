package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/stretchr/testify/require"
)

func TestPointerParam(t *testing.T) {
	t.Parallel()
	for ptr, want := range map[jsontext.Pointer]string{
		"":                       "",
		"/amount":                "amount",
		"/changes":               "changes",
		"/changes/2":             "changes[2]",
		"/changes/2/description": "changes[2]",
		"/metadata/key":          "metadata",
		"/a~1b":                  "a/b",
	} {
		require.Equal(t, want, pointerParam(ptr), "%q", ptr)
	}
}

// TestUnencodableAnswer: an answer that cannot be encoded is the generic
// 500 envelope, with the request id of the response.
func TestUnencodableAnswer(t *testing.T) {
	t.Parallel()
	a := renderData(http.StatusOK, func() {}, "")
	require.Equal(t, http.StatusInternalServerError, a.Code)
	require.Empty(t, a.Body)

	w := httptest.NewRecorder()
	w.Header().Set("X-Request-Id", "rid-1")
	writeResponse(w, a)
	require.Equal(t, http.StatusInternalServerError, w.Code)
	var env struct {
		Success bool
		Error   errorBody
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &env))
	require.Equal(t, errorBody{Message: "Internal server error", Code: 500, Type: typeInternal, RequestID: "rid-1"}, env.Error)
}
