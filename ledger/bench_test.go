package ledger_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
)

// BenchmarkPostEntry measures one user's changes, one at a time.
func BenchmarkPostEntry(b *testing.B) {
	ctx := context.Background()
	pool := newPool(b, 4)
	l := ledger.New(pool, ledger.Options{})
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1})
	require.NoError(b, err)
	for b.Loop() {
		_, err := l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 1})
		require.NoError(b, err)
	}
}

// BenchmarkPostEntryHot measures one user's changes from 16 goroutines.
func BenchmarkPostEntryHot(b *testing.B) {
	ctx := context.Background()
	pool := newPool(b, 16)
	l := ledger.New(pool, ledger.Options{})
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1})
	require.NoError(b, err)
	b.SetParallelism(8)
	var mu sync.Mutex
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, err := l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 1})
			if err != nil {
				mu.Lock()
				b.Error(err)
				mu.Unlock()
				return
			}
		}
	})
}
