package ledger_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ledgerd/ledgerd/ledger"
)

func benchEntry() ledger.Entry {
	return ledger.Entry{
		ID: uuid.Must(uuid.NewV7()), UserID: 42, Seq: 1234, Type: ledger.Withdrawal,
		Amount: -250, BalanceAfter: 9_750, Description: "Café crème", Reference: "pos-17",
		IdempotencyKey: "order-4711", CreatedAt: time.Now(),
	}
}

// BenchmarkComputeHash is the hash chain's cost per entry.
func BenchmarkComputeHash(b *testing.B) {
	e := benchEntry()
	b.ReportAllocs()
	for b.Loop() {
		e.PrevHash = e.ComputeHash()
	}
}

// BenchmarkEntryJSON is the entry's encoding, as in the API and the events.
func BenchmarkEntryJSON(b *testing.B) {
	e := benchEntry()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(e); err != nil {
			b.Fatal(err)
		}
	}
}
