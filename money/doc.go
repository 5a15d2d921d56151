// Package money parses and formats exact decimal amounts as int64 minor units
// (cents).
//
// Invariants: no float ever touches an amount. Parsing works on the decimal
// text itself (a JSON number or a string holding one) and is exact: "1e2" is
// 10000 cents, "0.10" is 10 cents, "0.001" is refused because it has a third
// fraction digit after exact evaluation. Formatting writes the integer part
// and ".DD" only when the cents are not zero, so Parse(Format(x)) == x.
package money
