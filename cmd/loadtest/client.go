package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	apiclient "github.com/ledgerd/ledgerd/client"
)

// maxBody is the most of a response body the client reads; ledgerd's
// largest answers (a page of 1,000 entries) are well below it.
const maxBody = 4 << 20

// client sends requests to ledgerd over keep-alive connections: to the
// first -url, or, for the measured load, to the URL target picks.
type client struct {
	base  string   // the first -url without a trailing slash
	bases []string // every -url without a trailing slash, in order
	http  *http.Client
	token string
	// keyPrefix starts every Idempotency-Key; empty when -idempotency is off.
	keyPrefix string
	keySeq    atomic.Int64
}

// newClient makes the client of a run: one Transport that keeps at least
// as many idle connections as there are requests in flight, no proxy, no
// redirects followed, so that every request goes to one of o.URLs.
func newClient(o options) *client {
	tr := &http.Transport{
		Proxy:               nil, // never through a proxy: the run targets -url only
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        o.C + 16,
		MaxIdleConnsPerHost: o.C + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	c := &client{
		base: strings.TrimRight(o.URL, "/"),
		http: &http.Client{
			Transport:     tr,
			Timeout:       o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		token: o.Token,
	}
	for _, u := range o.URLs {
		c.bases = append(c.bases, strings.TrimRight(u, "/"))
	}
	if len(c.bases) == 0 {
		c.bases = []string{c.base}
	}
	if o.Idempotency {
		c.keyPrefix = "lt-" + randomHex(8) + "-"
	}
	return c
}

// target is the base URL of worker id's requests: the -url list taken
// round-robin by worker, a simple client-side load balancer. A worker keeps
// its URL for the whole run, so its keep-alive connection stays with one
// server, as behind a connection-level (L4) balancer, and the connections
// are spread evenly over the URLs.
func (c *client) target(id int) string { return c.bases[id%len(c.bases)] }

// close drops the idle connections.
func (c *client) close() { c.http.CloseIdleConnections() }

// randomHex is n random bytes in hex, to tell one run's keys from another's.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}

// answer is what one request got.
type answer struct {
	Status int
	// Type is error.type of a failure envelope ("unparsed" when the body
	// is not one); empty for a 2xx.
	Type string
	Body []byte
	// Err is a transport error: no complete HTTP answer was read.
	Err error
}

// outcome is the answer's key in the report's outcomes: "200",
// "400:insufficient_funds", "transport:timeout".
func (a answer) outcome() string {
	if a.Err != nil {
		return "transport:" + transportClass(a.Err)
	}
	s := strconv.Itoa(a.Status)
	if a.Type != "" {
		s += ":" + a.Type
	}
	return s
}

// do sends one request with a JSON body (nil for none) to c.base+path. It
// sets Content-Type on every request, Authorization with -token, and a
// fresh Idempotency-Key on POST and PUT with -idempotency. It reads the
// whole body, so the connection is reused.
func (c *client) do(ctx context.Context, method, path string, body []byte) answer {
	return c.doTo(ctx, c.base, method, path, body)
}

// doTo is do to base instead of the first -url.
func (c *client) doTo(ctx context.Context, base, method, path string, body []byte) answer {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd) //nolint:gosec // G704: every request goes to a -url, the server under test, by design
	if err != nil {
		return answer{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.keyPrefix != "" && (method == http.MethodPost || method == http.MethodPut) {
		req.Header.Set("Idempotency-Key", c.keyPrefix+strconv.FormatInt(c.keySeq.Add(1), 10))
	}
	resp, err := c.http.Do(req) //nolint:gosec // G704: as above
	if err != nil {
		return answer{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return answer{Status: resp.StatusCode, Err: err}
	}
	a := answer{Status: resp.StatusCode, Body: b}
	if resp.StatusCode >= 300 {
		a.Type = errorType(b)
	}
	return a
}

// errorType is error.type of a failure envelope, or "unparsed".
func errorType(body []byte) string {
	var env struct {
		Error *struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil || env.Error == nil || env.Error.Type == "" {
		return "unparsed"
	}
	return env.Error.Type
}

// transportClass names a transport error for the report.
func transportClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection_reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EMFILE):
		return "client_resources"
	default:
		return "other"
	}
}

// newAPIClient is ledgerd's Go client for the set-up and checks of a run,
// over hc (the run's transport: no request goes anywhere but -url) with the
// run's token and the retry policy p.
func newAPIClient(o options, hc *http.Client, p apiclient.RetryPolicy) (*apiclient.Client, error) {
	return apiclient.New(o.URL, apiclient.WithHTTPClient(hc), apiclient.WithToken(o.Token),
		apiclient.WithUserAgent("ledgerd-loadtest"), apiclient.WithRetryPolicy(p))
}

// call sends one request outside the measured load to a route outside
// /api (/readyz), which ledgerd's Go client does not cover, and decodes
// the envelope's data into data (nil to skip). Any status but want is an
// error that quotes the answer.
func (c *client) call(ctx context.Context, method, path string, body []byte, want int, data any) error {
	a := c.do(ctx, method, path, body)
	if a.Err != nil {
		return fmt.Errorf("%s %s: %w", method, path, a.Err)
	}
	if a.Status != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, a.Status, want, truncate(a.Body, 300))
	}
	if data == nil {
		return nil
	}
	env := struct {
		Data any `json:"data"`
	}{Data: data}
	if err := json.Unmarshal(a.Body, &env); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
