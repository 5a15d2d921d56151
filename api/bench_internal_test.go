package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/projection"
)

// BenchmarkRenderBalanceUpdated is the envelope encoding of the hot
// route's answer.
func BenchmarkRenderBalanceUpdated(b *testing.B) {
	p := ledger.Posted{
		User:  projection.User{ID: 1, Balance: 1_010_050, Seq: 2, UpdatedAt: time.Now()},
		Entry: ledger.Entry{Seq: 2},
	}
	b.ReportAllocs()
	for b.Loop() {
		if r := renderBalanceUpdated(p); r.Code != http.StatusOK {
			b.Fatal(r.Code)
		}
	}
}

// BenchmarkRenderError is the envelope encoding of a refusal.
func BenchmarkRenderError(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		renderError(ledger.ErrInsufficientFunds, "3f9c1a7be2d04c5598a1b7e0")
	}
}
