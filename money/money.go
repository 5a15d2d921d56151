package money

import (
	"errors"
	"fmt"
	"strconv"
)

// Cents is an amount or a balance in minor units (1/100 of the currency unit).
type Cents int64

const (
	// MaxAmount is the largest absolute amount of one change:
	// 1,000,000,000,000 units.
	MaxAmount Cents = 1_000_000_000_000 * 100
	// MaxBalance is the largest balance a user may hold, in cents. The
	// database enforces it with a CHECK constraint as a second guard.
	MaxBalance Cents = 9_000_000_000_000_000
)

// Errors returned by Parse. They are values of *Error so callers can tell
// the reason apart and still print a clear message.
var (
	ErrSyntax      = errors.New("not a decimal number")
	ErrPrecision   = errors.New("more than 2 fraction digits")
	ErrRange       = errors.New("out of range")
	ErrZero        = errors.New("must not be zero")
	ErrNegative    = errors.New("must not be negative")
	ErrNotPositive = errors.New("must be greater than zero")
)

// maxExponent bounds the decimal exponent that Parse will evaluate, so that
// "1e999999999" is refused without building a huge number. Any exponent
// beyond it is out of range (or, for a zero mantissa, still zero).
const maxExponent = 40

// Parse reads a decimal number written as JSON number text ("100.50", "-2",
// "1e2") and returns its exact value in cents. Any number whose exact value
// has more than 2 fraction digits is ErrPrecision; values with an absolute
// value above MaxAmount or text that is not a JSON number are ErrRange and
// ErrSyntax. Zero is returned as 0 without error: callers decide whether
// zero is allowed (see Amount).
func Parse(s string) (Cents, error) {
	i := 0
	neg := false
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	// Integer part: "0" or [1-9][0-9]*.
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[intStart:i]
	if intPart == "" || (len(intPart) > 1 && intPart[0] == '0') {
		return 0, ErrSyntax
	}
	// Fraction part.
	fracPart := ""
	if i < len(s) && s[i] == '.' {
		i++
		fracStart := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		fracPart = s[fracStart:i]
		if fracPart == "" {
			return 0, ErrSyntax
		}
	}
	// Exponent.
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		expNeg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg = s[i] == '-'
			i++
		}
		expStart := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		digits := s[expStart:i]
		if digits == "" {
			return 0, ErrSyntax
		}
		// Trim leading zeros, then bound the length before converting.
		for len(digits) > 1 && digits[0] == '0' {
			digits = digits[1:]
		}
		if len(digits) > 6 {
			exp = 1_000_000
		} else {
			exp, _ = strconv.Atoi(digits)
		}
		if expNeg {
			exp = -exp
		}
	}
	if i != len(s) {
		return 0, ErrSyntax
	}

	// The value is mantissa × 10^(exp - len(fracPart)); in cents the
	// power of ten is shift = exp - len(fracPart) + 2.
	mantissa := trimLeftZeros(intPart + fracPart)
	if mantissa == "" {
		return 0, nil
	}
	shift := exp - len(fracPart) + 2
	// Drop trailing zeros of the mantissa into the shift, so that
	// "1.000" or "100e-2" evaluate exactly.
	for len(mantissa) > 1 && mantissa[len(mantissa)-1] == '0' {
		mantissa = mantissa[:len(mantissa)-1]
		shift++
	}
	if shift < 0 {
		return 0, ErrPrecision
	}
	if shift > maxExponent || len(mantissa)+shift > 18 {
		// 10^18 cents is already far above MaxAmount.
		return 0, ErrRange
	}
	var v int64
	for k := 0; k < len(mantissa); k++ {
		v = v*10 + int64(mantissa[k]-'0')
	}
	for range shift {
		v *= 10
	}
	if Cents(v) > MaxAmount {
		return 0, ErrRange
	}
	if neg {
		v = -v
	}
	return Cents(v), nil
}

// Format writes c as a JSON number: the integer part, plus ".DD" when the
// cents are not zero ("10000", "10100.50", "-2", "0.05").
func Format(c Cents) string {
	return string(AppendFormat(nil, c))
}

// AppendFormat appends the text of Format(c) to b.
func AppendFormat(b []byte, c Cents) []byte {
	u := uint64(c)
	if c < 0 {
		b = append(b, '-')
		u = -u
	}
	b = strconv.AppendUint(b, u/100, 10)
	if frac := u % 100; frac != 0 {
		b = append(b, '.', byte('0'+frac/10), byte('0'+frac%10))
	}
	return b
}

// String implements fmt.Stringer with Format.
func (c Cents) String() string { return Format(c) }

// MarshalJSON writes c as a JSON number, exactly.
func (c Cents) MarshalJSON() ([]byte, error) { return AppendFormat(nil, c), nil }

// UnmarshalJSON reads a JSON number or a string holding one, exactly. It
// accepts zero; use Amount or Balance to apply the request rules.
func (c *Cents) UnmarshalJSON(data []byte) error {
	v, err := ParseJSON(data)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// ParseJSON parses a raw JSON value that is either a number or a string
// holding a number, as the contract allows for amounts.
func ParseJSON(data []byte) (Cents, error) {
	if len(data) >= 2 && data[0] == '"' && data[len(data)-1] == '"' {
		s, err := strconv.Unquote(string(data))
		if err != nil {
			return 0, ErrSyntax
		}
		return Parse(s)
	}
	return Parse(string(data))
}

// Amount applies the rules for the amount of one change: not zero, and
// (already checked by Parse) at most MaxAmount in absolute value.
func Amount(c Cents) error {
	if c == 0 {
		return ErrZero
	}
	return nil
}

// PositiveAmount applies the rules for amounts that must be above zero,
// such as a transfer's.
func PositiveAmount(c Cents) error {
	if c <= 0 {
		return ErrNotPositive
	}
	return nil
}

// Describe returns a sentence for a parse or rule error about the named
// field, fit for an API client: "amount has more than 2 fraction digits".
func Describe(field string, err error) string {
	switch {
	case errors.Is(err, ErrSyntax):
		return fmt.Sprintf("%s must be a decimal number with at most 2 fraction digits, as a JSON number or a string", field)
	case errors.Is(err, ErrPrecision):
		return fmt.Sprintf("%s has more than 2 fraction digits", field)
	case errors.Is(err, ErrRange):
		return fmt.Sprintf("%s must be at most %s in absolute value", field, Format(MaxAmount))
	default:
		return fmt.Sprintf("%s %s", field, err.Error())
	}
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func trimLeftZeros(s string) string {
	for len(s) > 0 && s[0] == '0' {
		s = s[1:]
	}
	return s
}
