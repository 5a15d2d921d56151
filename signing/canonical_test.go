package signing_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/signing"
)

func TestCanonicalJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"keys sorted, nested too", `{"b":1,"a":{"z":true,"y":null},"c":[3,1]}`, `{"a":{"y":null,"z":true},"b":1,"c":[3,1]}`},
		// U+FF61 sorts before U+1F600 in UTF-8 bytes but after it in UTF-16
		// code units (0xFF61 > 0xD83D), which is the order RFC 8785 wants.
		{"keys sorted by UTF-16 code units", `{"\uff61":1,"\ud83d\ude00":2}`, `{"😀":2,"｡":1}`},
		{"whitespace dropped", " {\n\t\"a\" : [ 1 , 2 ] } \r\n", `{"a":[1,2]}`},
		{"bare number with whitespace", " 1 ", `1`},
		{"trailing decimal zero", `10100.50`, `10100.5`},
		{"exponent", `1e2`, `100`},
		{"negative zero", `-0`, `0`},
		{"large exponent form", `1e21`, `1e+21`},
		{"small exponent form", `0.0000001`, `1e-7`},
		{"smallest plain decimal", `0.000001`, `0.000001`},
		{"integer past 2^53 loses its last digit", `9007199254740993`, `9007199254740992`},
		{"17 significant digits lose the last ones", `12345678901234567.89`, `12345678901234568`},
		{"amount within 15 digits kept", `-1234567890123.45`, `-1234567890123.45`},
		{"control characters escaped", `"a\u000fb\u001fc"`, `"a\u000fb\u001fc"`},
		{"short escapes kept", `"\b\f\n\r\t\"\\"`, `"\b\f\n\r\t\"\\"`},
		{"needless escapes removed", `"\/\u0041\u003c\u00e9"`, `"/A<é"`},
		{"unicode left as UTF-8", `"\u20ac é 😀 \u2028"`, "\"€ é 😀 \u2028\""},
		{"DEL is not escaped", `"\u007f"`, "\"\x7f\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := signing.CanonicalJSON([]byte(tc.in))
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
		})
	}
}

func TestCanonicalJSONRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
	}{
		{"duplicate key", `{"a":1,"a":2}`},
		{"duplicate key after unescaping", `{"a":1,"\u0061":2}`},
		// jcs.Transform alone returns {"a":1} for this.
		{"truncated key", `{"a":1,"b`},
		{"trailing garbage", `{"a":1} x`},
		{"not JSON", `{a:1}`},
		{"empty", ``},
		{"invalid UTF-8", "\"\xff\""},
		{"number out of double range", `1e400`},
		{"hex float, which strconv accepts", `0x1p4`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := signing.CanonicalJSON([]byte(tc.in))
			require.Error(t, err)
		})
	}
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	type leg struct {
		Amount float64 `json:"amount"`
		Note   string  `json:"note,omitempty"`
	}
	v := struct {
		Zeta  string         `json:"zeta"`
		Alpha []leg          `json:"alpha"`
		Meta  map[string]int `json:"meta"`
	}{
		Zeta:  "<a & b>",
		Alpha: []leg{{Amount: 10100.50, Note: "tab\there"}, {Amount: 100}},
		Meta:  map[string]int{"y": 2, "x": 1},
	}
	got, err := signing.Canonical(v)
	require.NoError(t, err)
	// encoding/json writes <, > and & as \u003c…; RFC 8785 writes them as is.
	require.Equal(t, `{"alpha":[{"amount":10100.5,"note":"tab\there"},{"amount":100}],"meta":{"x":1,"y":2},"zeta":"<a & b>"}`, string(got))

	again, err := signing.CanonicalJSON(got)
	require.NoError(t, err)
	require.Equal(t, got, again, "canonical bytes are a fixed point")

	_, err = signing.Canonical(func() {})
	require.Error(t, err)
}
