package money_test

import (
	"testing"

	"github.com/ledgerd/ledgerd/money"
)

func BenchmarkParse(b *testing.B) {
	for _, s := range []string{"-2", "10100.50", "1e2", "999999999999.99"} {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := money.Parse(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFormat(b *testing.B) {
	buf := make([]byte, 0, 32)
	b.ReportAllocs()
	for b.Loop() {
		buf = money.AppendFormat(buf[:0], 1_010_050)
	}
}
