package api

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzBalanceRequest feeds arbitrary bodies and content types through the
// PUT body decoder and the amount rules: no input panics, every refusal is
// a 4xx in the contract's types, and an accepted amount is within range.
func FuzzBalanceRequest(f *testing.F) {
	for _, seed := range []struct{ body, ct string }{
		{`{"amount": 100.50}`, "application/json"},
		{`{"amount": "-2", "description": "x", "reference": "y"}`, ""},
		{`{"amount": 1e2}`, "application/json; charset=utf-8"},
		{`{"amount": 0.001}`, "application/json"},
		{`{"amount": 1} {}`, "application/json"},
		{`{"amount": null}`, "application/json"},
		{`[1]`, "text/plain"},
		{``, ""},
	} {
		f.Add([]byte(seed.body), seed.ct)
	}
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		r := httptest.NewRequest(http.MethodPut, "/api/users/1/balance", bytes.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		var req balanceRequest
		_, err := decodeBody(httptest.NewRecorder(), r, &req, false)
		if err == nil {
			var amount int64
			c, perr := parseAmount("amount", req.Amount)
			err, amount = perr, int64(c)
			if err == nil && (amount > 100_000_000_000_000 || amount < -100_000_000_000_000) {
				t.Fatalf("accepted %d cents from %q", amount, body)
			}
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status < 400 || e.Status >= 500 {
				t.Fatalf("%q: %v is not a client error", body, err)
			}
			if e.Type != typeValidation && e.Type != typePayloadTooLarge && e.Type != typeUnsupportedMedia {
				t.Fatalf("%q: unexpected type %s", body, e.Type)
			}
		}
	})
}

// FuzzParseID: a path id is accepted only as a positive int64 in decimal.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"1", "0", "-1", "abc", "99999999999999999999", "9223372036854775807", "01", "+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseID("id", s)
		if err == nil && id <= 0 {
			t.Fatalf("accepted %q as %d", s, id)
		}
	})
}
