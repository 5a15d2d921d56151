package money_test

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/money"
)

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want money.Cents
		err  error
	}{
		{"100.50", 10050, nil},
		{"-2", -200, nil},
		{"1e2", 10000, nil},
		{"1E+2", 10000, nil},
		{"1e-2", 1, nil},
		{"0.05", 5, nil},
		{"0.10", 10, nil},
		{"1.000", 100, nil},
		{"100e-2", 100, nil},
		{"0", 0, nil},
		{"-0", 0, nil},
		{"0.00", 0, nil},
		{"0e5", 0, nil},
		{"0e99999999999", 0, nil},
		{"1000000000000", money.MaxAmount, nil},
		{"-1000000000000", -money.MaxAmount, nil},
		{"1000000000000.00", money.MaxAmount, nil},
		{"1e12", money.MaxAmount, nil},
		{"1000000000000.01", 0, money.ErrRange},
		{"1e13", 0, money.ErrRange},
		{"1e99999999999", 0, money.ErrRange},
		{"99999999999999999999", 0, money.ErrRange},
		{"0.001", 0, money.ErrPrecision},
		{"1.005", 0, money.ErrPrecision},
		{"1e-3", 0, money.ErrPrecision},
		{"1e-99999999999", 0, money.ErrPrecision},
		{"", 0, money.ErrSyntax},
		{"-", 0, money.ErrSyntax},
		{"+1", 0, money.ErrSyntax},
		{"01", 0, money.ErrSyntax},
		{"1.", 0, money.ErrSyntax},
		{".5", 0, money.ErrSyntax},
		{"1e", 0, money.ErrSyntax},
		{"NaN", 0, money.ErrSyntax},
		{"Infinity", 0, money.ErrSyntax},
		{"0x10", 0, money.ErrSyntax},
		{"1/2", 0, money.ErrSyntax},
		{" 1", 0, money.ErrSyntax},
		{"1 ", 0, money.ErrSyntax},
		{"1,5", 0, money.ErrSyntax},
		{"true", 0, money.ErrSyntax},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := money.Parse(tc.in)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseJSON(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]money.Cents{`"100.50"`: 10050, `100.50`: 10050, `"-2"`: -200, `"1e2"`: 10000} {
		got, err := money.ParseJSON([]byte(in))
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{`null`, `"abc"`, `""`, `"NaN"`, `[1]`, `{}`, `"1`, `true`} {
		_, err := money.ParseJSON([]byte(in))
		require.ErrorIs(t, err, money.ErrSyntax, in)
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	cases := map[money.Cents]string{
		0: "0", 5: "0.05", 10: "0.10", 200: "2", -200: "-2", -5: "-0.05",
		1000000: "10000", 1010050: "10100.50", money.MaxBalance: "90000000000000",
		math.MaxInt64: "92233720368547758.07", math.MinInt64: "-92233720368547758.08",
	}
	for in, want := range cases {
		require.Equal(t, want, money.Format(in))
		b, err := json.Marshal(in)
		require.NoError(t, err)
		require.Equal(t, want, string(b))
	}
}

func TestRules(t *testing.T) {
	t.Parallel()
	require.ErrorIs(t, money.Amount(0), money.ErrZero)
	require.NoError(t, money.Amount(-1))
	require.ErrorIs(t, money.PositiveAmount(-1), money.ErrNotPositive)
	require.ErrorIs(t, money.PositiveAmount(0), money.ErrNotPositive)
	require.NoError(t, money.PositiveAmount(1))
	require.Equal(t, "amount has more than 2 fraction digits", money.Describe("amount", money.ErrPrecision))
}

// FuzzRoundTrip checks parse(format(x)) == x for every amount in range and
// that no input makes Parse panic or return a value outside the range.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"0", "1", "-2", "100.50", "1e2", "0.001", "1e-2", "99999999999999999999", "NaN", "1e999999"} {
		f.Add(s, int64(0))
	}
	f.Add("", int64(money.MaxAmount))
	f.Add("", int64(-money.MaxAmount))
	f.Fuzz(func(t *testing.T, s string, n int64) {
		c, err := money.Parse(s)
		if err == nil {
			if c > money.MaxAmount || c < -money.MaxAmount {
				t.Fatalf("Parse(%q) = %d, outside the range", s, c)
			}
			// A parsed value formats to text that parses back to it.
			back, err := money.Parse(money.Format(c))
			if err != nil || back != c {
				t.Fatalf("Parse(Format(Parse(%q))) = %d, %v; want %d", s, back, err, c)
			}
			// A JSON number is also accepted as a string.
			q, err := money.ParseJSON([]byte(strconv.Quote(s)))
			if err != nil || q != c {
				t.Fatalf("ParseJSON(quoted %q) = %d, %v; want %d", s, q, err, c)
			}
		}
		x := money.Cents(n % int64(money.MaxAmount+1))
		back, err := money.Parse(money.Format(x))
		if err != nil || back != x {
			t.Fatalf("Parse(Format(%d)) = %d, %v", x, back, err)
		}
	})
}
