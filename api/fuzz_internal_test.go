package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"unicode/utf8"
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

// topLevelNames returns the member names of the JSON object body, in
// order, as written (duplicates kept), or ok false when body is not one
// JSON object that encoding/json v1 can tokenize.
func topLevelNames(body []byte) (names []string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		name, _ := tok.(string)
		names = append(names, name)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, false
		}
	}
	return names, true
}

// FuzzStrictNames: a body the decoder accepts names every field exactly
// (no case folding) and at most once, so that no other reader of the body
// (a proxy, a WAF, an auditor's tool) can see another request than the one
// applied; a body that repeats a name or varies its case is refused.
func FuzzStrictNames(f *testing.F) {
	for _, seed := range []string{
		`{"amount":1}`, `{"amount":1,"amount":-5}`, `{"AMOUNT":7}`, `{"amount":1,"Amount":3}`,
		`{"amount":1,"deſcription":"x"}`, `{"amount":1,"description":"a","description":"b"}`,
		`{"amount":"2","reference":"r","Reference":"s"}`, `{"amount":1,"description":"\ud800"}`,
		"{\"amount\":1,\"description\":\"\xff\"}", `{"amount":1,"description":"\u0000"}`,
	} {
		f.Add([]byte(seed))
	}
	known := map[string]bool{"amount": true, "description": true, "reference": true}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPut, "/api/users/1/balance", bytes.NewReader(body))
		var req balanceRequest
		_, err := decodeBody(httptest.NewRecorder(), r, &req, false)
		names, ok := topLevelNames(body)
		if !ok {
			return // not an object v1 can read: nothing to compare
		}
		seen := map[string]bool{}
		exact := true
		for _, n := range names {
			if seen[n] || !known[n] {
				exact = false
			}
			seen[n] = true
		}
		if err == nil && !exact {
			t.Fatalf("accepted %q, whose names are %q", body, names)
		}
		if err == nil && (req.Description != nil && !utf8.ValidString(*req.Description) || req.Reference != nil && !utf8.ValidString(*req.Reference)) {
			t.Fatalf("accepted invalid UTF-8 from %q", body)
		}
	})
}

// FuzzParseID: a path id is accepted only as a positive int64 in decimal.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"1", "0", "-1", "abc", "99999999999999999999", "9223372036854775807", "01", "+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseID("id", "id", s)
		if err == nil && id <= 0 {
			t.Fatalf("accepted %q as %d", s, id)
		}
	})
}
