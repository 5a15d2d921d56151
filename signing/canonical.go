package signing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// Canonical returns the RFC 8785 canonical JSON of v: v is encoded with
// encoding/json (so its struct tags and MarshalJSON methods apply), then
// canonicalized. It returns the encoding error, or an error when the JSON
// has a duplicate key or a number that is not a finite double. See the
// package documentation for what canonical numbers lose.
func Canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return CanonicalJSON(raw)
}

// CanonicalJSON returns the RFC 8785 canonical form of the JSON text raw.
// It returns an error when raw is not valid UTF-8 JSON, has a duplicate
// object key, or has a number outside the range of a double.
func CanonicalJSON(raw []byte) ([]byte, error) {
	// jcs.Transform does not validate its input fully: it truncates an object
	// whose key string is cut off ({"a":1,"b → {"a":1}) and copies invalid
	// UTF-8 through. Check the input first so that only real JSON is signed.
	if !utf8.Valid(raw) {
		return nil, errors.New("canonical json: input is not valid UTF-8")
	}
	if !json.Valid(raw) {
		return nil, errors.New("canonical json: input is not valid JSON")
	}
	// jcs.Transform parses a bare top-level number or literal without
	// skipping whitespace around it.
	out, err := jcs.Transform(bytes.Trim(raw, " \t\r\n"))
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return out, nil
}
