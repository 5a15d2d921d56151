package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"

	"github.com/ledgerd/ledgerd/money"
)

// MaxBodyBytes is the largest request body accepted.
const MaxBodyBytes = 64 << 10

// decodeBody decodes the JSON request body into dst, strictly, and returns
// the body's bytes: the Content-Type must be application/json (any charset
// parameter must be UTF-8) or absent, the body at most MaxBodyBytes, valid
// UTF-8, one JSON object with no unknown field, no field twice and nothing
// after it. An empty body leaves dst as it is when allowEmpty, and is an
// error otherwise.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any, allowEmpty bool) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, &Error{Status: http.StatusUnsupportedMediaType, Type: typeUnsupportedMedia,
				Message: "Content-Type must be application/json"}
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			return nil, &Error{Status: http.StatusUnsupportedMediaType, Type: typeUnsupportedMedia,
				Message: "the request body must be encoded in UTF-8"}
		}
	}
	if r.ContentLength > MaxBodyBytes {
		return nil, tooLarge()
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, tooLarge()
		}
		return nil, badRequest("the request body could not be read")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if allowEmpty {
			return raw, nil
		}
		return nil, badRequest("a JSON request body is required")
	}
	if trimmed := bytes.TrimLeft(raw, " \t\r\n"); trimmed[0] != '{' {
		return nil, badRequest("the request body must be a JSON object")
	}
	// JSON v2 semantics: field names match exactly (no case folding), a
	// name given twice and invalid UTF-8 (raw or escaped) are errors, so
	// that every reader of the body sees the same request we apply.
	if err := jsonv2.Unmarshal(raw, dst, jsonv2.RejectUnknownMembers(true)); err != nil {
		return nil, decodeError(err)
	}
	return raw, nil
}

func tooLarge() *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Type: typePayloadTooLarge,
		Message: fmt.Sprintf("the request body must be at most %d bytes", MaxBodyBytes)}
}

// decodeError turns a JSON decoding error into a 400 naming the field at
// fault, when there is one.
func decodeError(err error) error {
	var (
		syntaxErr *jsontext.SyntacticError
		semErr    *jsonv2.SemanticError
	)
	switch {
	case errors.As(err, &syntaxErr):
		switch {
		case errors.Is(syntaxErr.Err, jsontext.ErrDuplicateName):
			return badParam(pointerParam(syntaxErr.JSONPointer), "the field %q appears more than once", truncate(syntaxErr.JSONPointer.LastToken(), 40))
		case syntaxErr.Err != nil && strings.Contains(syntaxErr.Err.Error(), "invalid UTF-8"):
			return badRequest("the request body must be valid UTF-8, with no unpaired surrogate escapes")
		}
		return badRequest("the request body must be exactly one valid JSON object")
	case errors.As(err, &semErr):
		field := truncate(semErr.JSONPointer.LastToken(), 40)
		switch {
		case errors.Is(semErr.Err, jsonv2.ErrUnknownName):
			return badParam(pointerParam(semErr.JSONPointer), "unknown field %q (field names are case-sensitive)", field)
		case semErr.GoType != nil && field != "":
			return badParam(pointerParam(semErr.JSONPointer), "%s must be a %s", field, jsonKind(semErr.GoType.Kind().String()))
		}
	}
	return badRequest("the request body could not be read")
}

// pointerParam names the request field a JSON pointer into the body
// points in, as error.param does: the top-level field ("amount"), with the
// element's index when it is a list ("changes[2]", as a batch's refused
// change is named). "" for the whole body.
func pointerParam(p jsontext.Pointer) string {
	var param string
	i := 0
	for tok := range p.Tokens() {
		switch {
		case i == 0:
			param = truncate(tok, 40)
		case i == 1 && isDigits(tok):
			return param + "[" + tok + "]"
		default:
			return param
		}
		i++
	}
	return param
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string", "ptr":
		return "string"
	case "struct", "map":
		return "JSON object"
	}
	return "number"
}

// parseAmount reads a required amount field: a JSON number or a string
// holding one, exact, with the contract's rules.
func parseAmount(field string, raw jsontext.Value) (money.Cents, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, badParam(field, "%s is required", field)
	}
	c, err := money.ParseJSON(raw)
	if err != nil {
		return 0, badParam(field, "%s", money.Describe(field, err))
	}
	return c, nil
}

// decimalID matches a positive decimal integer without sign or leading zeros.
var decimalID = regexp.MustCompile(`^[1-9][0-9]{0,18}$`)

// parseID reads an id, such as a user id: a positive int64 written in
// decimal. param is the request field it comes from (error.param), label
// how the message names it ("user id").
func parseID(param, label, s string) (int64, error) {
	if decimalID.MatchString(s) {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil {
			return id, nil
		}
	}
	return 0, badParam(param, "%s must be a positive integer of at most 19 digits (got %q)", label, truncate(s, 40))
}

// pathUserID reads the user id of a /users/{id} route.
func pathUserID(r *http.Request) (int64, error) {
	return parseID("id", "user id", chi.URLParam(r, "id"))
}

// parseUUID reads a UUID in its canonical form, hyphenated. param is the
// request field it comes from, label how the message names it.
func parseUUID(param, label, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, badParam(param, "%s must be a UUID such as 0192f0c4-5d1e-7c3a-9b7e-1f2a3b4c5d6e", label)
	}
	return id, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
