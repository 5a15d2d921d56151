package client_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/api"
	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/outbox"
	"github.com/ledgerd/ledgerd/signing"
)

// ledgerd is a real ledgerd for one test: api.NewServer over a ledger on a
// fresh database, on an httptest listener.
type ledgerd struct {
	URL    string
	Ledger *ledger.Ledger
	Pool   *pgxpool.Pool
	Signer *signing.Signer // nil unless config.sign
}

// config is what a test's ledgerd runs with beyond the defaults.
type config struct {
	// deps sets Tokens and RateLimitRPS; the ledger and logger are set.
	deps api.Deps
	// feed runs a sequencer and a listener, so that the event feed moves.
	feed bool
	// sign gives the ledger a fresh signing key.
	sign bool
}

// startLedgerd starts a ledgerd on a fresh database.
func startLedgerd(tb testing.TB, cfg config) *ledgerd {
	tb.Helper()
	url := dbtest.NewURL(tb)
	pc, err := pgxpool.ParseConfig(url)
	require.NoError(tb, err)
	pc.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	require.NoError(tb, err)
	tb.Cleanup(pool.Close)

	l := &ledgerd{Pool: pool}
	opts := ledger.Options{}
	if cfg.sign {
		priv, _, err := signing.GenerateKey()
		require.NoError(tb, err)
		l.Signer, err = signing.ParseSigner(priv)
		require.NoError(tb, err)
		opts.Signer = l.Signer
	}
	if cfg.feed {
		seq := outbox.NewSequencer(outbox.SequencerConfig{DatabaseURL: url, Logger: testLogger(), PollInterval: 50 * time.Millisecond})
		listener := outbox.NewListener(url, testLogger())
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { _ = seq.Run(ctx) })
		wg.Go(func() { listener.Run(ctx) })
		tb.Cleanup(func() { cancel(); wg.Wait() })
		opts.OnCommit, opts.FeedChangedFunc = seq.Poke, listener.Changed
	}
	l.Ledger = ledger.New(pool, opts)
	require.NoError(tb, l.Ledger.RegisterSigningKey(context.Background()))
	d := cfg.deps
	d.Ledger, d.Logger = l.Ledger, testLogger()
	srv := httptest.NewServer(api.NewServer(d))
	tb.Cleanup(srv.Close)
	l.URL = srv.URL
	return l
}

// newClient is a client of url over a transport of its own (wrapped by
// wrap when not nil), with short backoffs so that retries cost the tests
// little.
func newClient(tb testing.TB, url string, wrap func(http.RoundTripper) http.RoundTripper, opts ...client.Option) *client.Client {
	tb.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(tr.CloseIdleConnections)
	var rt http.RoundTripper = tr
	if wrap != nil {
		rt = wrap(tr)
	}
	opts = append([]client.Option{
		client.WithHTTPClient(&http.Client{Transport: rt, Timeout: time.Minute}),
		client.WithRetryPolicy(client.RetryPolicy{MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}),
	}, opts...)
	c, err := client.New(url, opts...)
	require.NoError(tb, err)
	return c
}

// start is a ledgerd with the defaults and a client of it.
func start(tb testing.TB) (*ledgerd, *client.Client) {
	tb.Helper()
	l := startLedgerd(tb, config{})
	return l, newClient(tb, l.URL, nil)
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// canned is an answer made up by a test, as ledgerd or a proxy would send it.
func canned(r *http.Request, status int, header http.Header, body string) *http.Response {
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: header, Request: r,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
}

// testLogger drops the server's logs, unless LEDGERD_TEST_LOGS is set.
func testLogger() *slog.Logger {
	if os.Getenv("LEDGERD_TEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
