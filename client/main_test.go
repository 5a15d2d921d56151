package client_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/api"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations"
	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/outbox"
)

// TestMain starts one real ledgerd, on a database of its own, for the
// examples, which read its URL from LEDGERD_URL as a program would; the
// tests start their own. Examples run one after the other, so their
// output is deterministic.
func TestMain(m *testing.M) {
	stop, err := startExampleLedgerd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "client tests: start the examples' ledgerd:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// startExampleLedgerd creates a database, migrates it, serves ledgerd on
// it (with a sequencer, for the event feed) and sets LEDGERD_URL; stop
// undoes it all. dbtest needs a testing.TB, which TestMain has not.
func startExampleLedgerd() (stop func(), err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, dbtest.AdminURL())
	if err != nil {
		return nil, err
	}
	defer admin.Close(ctx)
	name := "ledgerd_client_examples_" + rand.Text()[:12]
	sanitized := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+sanitized); err != nil {
		return nil, err
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, dbtest.AdminURL()); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+sanitized+" WITH (FORCE)")
			_ = conn.Close(ctx)
		}
	}
	u, err := url.Parse(dbtest.AdminURL())
	if err != nil {
		drop()
		return nil, err
	}
	u.Path = "/" + name
	dbURL := u.String()
	if err := migrations.Up(dbURL); err != nil {
		drop()
		return nil, err
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		drop()
		return nil, err
	}
	bgCtx, stopBackground := context.WithCancel(context.Background())
	seq := outbox.NewSequencer(outbox.SequencerConfig{DatabaseURL: dbURL, Logger: testLogger(), PollInterval: 50 * time.Millisecond})
	done := make(chan struct{})
	go func() { _ = seq.Run(bgCtx); close(done) }()
	l := ledger.New(pool, ledger.Options{OnCommit: seq.Poke})
	srv := httptest.NewServer(api.NewServer(api.Deps{Ledger: l, Logger: testLogger()}))
	stop = func() {
		srv.Close()
		stopBackground()
		<-done
		pool.Close()
		drop()
	}
	if err := os.Setenv("LEDGERD_URL", srv.URL); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}
