package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// IdempotencyHeader is the request header that makes a write safe to retry.
const IdempotencyHeader = "Idempotency-Key"

// DefaultTimeout is the timeout of the default http.Client: longer than the
// longest wait of the event feed (30 s) plus a large statement's transfer.
const DefaultTimeout = 60 * time.Second

// maxBody bounds the answer the client reads. The largest legitimate one,
// a statement of 100,000 entries, is about 70 MB.
const maxBody = 256 << 20

// modulePath is this module's path, to find the client's version.
const modulePath = "github.com/ledgerd/ledgerd"

// Client calls one ledgerd's HTTP API. It is safe for concurrent use; make
// one and share it.
//
// Every method takes a context, which bounds the call with all its retries,
// and returns the API's data as typed values, or an error: a *Error for an
// answer in the error envelope (see the Err… sentinels), or a transport or
// context error.
type Client struct {
	base      string // the base URL, without a trailing slash
	http      *http.Client
	token     string
	userAgent string
	retry     RetryPolicy
	// newKeyFunc makes the Idempotency-Key of a write the caller gave none.
	newKeyFunc func() string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends the requests with hc instead of a client with
// DefaultTimeout over http.DefaultTransport. Its Timeout bounds each
// attempt, so keep it above the Wait of the event feed you use.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithToken sends token as "Authorization: Bearer <token>" on every
// request. It is never printed in errors.
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// WithUserAgent puts product (such as "payouts/1.4") in front of the
// client's own User-Agent, so that the server's logs tell callers apart.
func WithUserAgent(product string) Option {
	return func(c *Client) {
		if product != "" {
			c.userAgent = product + " " + c.userAgent
		}
	}
}

// WithRetryPolicy replaces DefaultRetryPolicy; its zero fields keep their
// defaults. RetryPolicy{MaxAttempts: 1} turns retries off.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *Client) { c.retry = p.withDefaults() }
}

// New returns a client of the ledgerd at baseURL, such as
// "http://localhost:3000" (the API's routes are under baseURL + "/api").
// It returns an error when baseURL is not an absolute http or https URL.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ledgerd client: base URL must be an absolute http or https URL such as http://localhost:3000, got %q", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("ledgerd client: base URL must have no query or fragment, got %q", baseURL)
	}
	c := &Client{
		base:       strings.TrimRight(u.String(), "/"),
		http:       &http.Client{Timeout: DefaultTimeout},
		userAgent:  defaultUserAgent(),
		retry:      DefaultRetryPolicy,
		newKeyFunc: rand.Text,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// defaultUserAgent names the client and its version: the version of this
// module in the program's build, when it is a dependency.
func defaultUserAgent() string {
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range append([]*debug.Module{&bi.Main}, bi.Deps...) {
			if m.Path == modulePath && m.Version != "" && m.Version != "(devel)" {
				version = m.Version
			}
		}
	}
	return "ledgerd-go/" + version + " (" + runtime.Version() + ")"
}

// CallOption changes one call.
type CallOption func(*callOptions)

type callOptions struct {
	key  string
	resp *Response
}

// IdempotencyKey sends key as the Idempotency-Key of a write (POST or PUT)
// instead of a fresh random one; every retry of the call sends it too.
// Give your own key when the write must stay once-only across restarts of
// your program (derive it from your own record: "payout-0001"). The server
// wants 1 to 255 printable ASCII characters. Reads ignore it.
func IdempotencyKey(key string) CallOption {
	return func(o *callOptions) { o.key = key }
}

// ResponseInto stores in r what the call's last HTTP answer said beyond
// its data (status, request id, whether it was a replay, attempts), on
// success and on error alike.
func ResponseInto(r *Response) CallOption {
	return func(o *callOptions) { o.resp = r }
}

// Response describes the last HTTP answer of a call.
type Response struct {
	// StatusCode is the HTTP status; 0 when no answer came.
	StatusCode int
	// Header is the answer's header.
	Header http.Header
	// RequestID is the answer's X-Request-Id.
	RequestID string
	// Replayed reports Idempotent-Replayed: true, an answer stored for the
	// Idempotency-Key by an earlier request: nothing was executed again.
	Replayed bool
	// IdempotencyKey is the key the write was sent with; "" for a read.
	IdempotencyKey string
	// Attempts is how many times the request was sent.
	Attempts int
	// Message is the success envelope's message, if any ("Balance updated
	// successfully").
	Message string
}

// call is one API call: the request, and where its answer goes.
type call struct {
	method string
	path   string // under /api, escaped
	query  url.Values
	body   any // marshalled once, sent as JSON; nil for no body
	out    any // decoded from data; nil to ignore it
	page   *pageInfo
	opts   []CallOption
}

// pageInfo receives the pagination of a list.
type pageInfo struct {
	NextCursor *string `json:"nextCursor"`
	HasMore    bool    `json:"hasMore"`
}

// envelope is the body of every /api answer.
type envelope struct {
	Success    bool            `json:"success"`
	Data       json.RawMessage `json:"data"`
	Message    string          `json:"message"`
	Pagination *pageInfo       `json:"pagination"`
	Error      *errorBody      `json:"error"`
}

type errorBody struct {
	Message   string `json:"message"`
	Code      int    `json:"code"`
	Type      string `json:"type"`
	Param     string `json:"param"`
	RequestID string `json:"requestId"`
}

// attempt is what one sending of the request got.
type attempt struct {
	status int
	header http.Header
	body   []byte
	err    error // a transport error: no complete answer was read
}

// do runs c: it sends the request, retrying as the retry policy allows,
// and decodes the answer into c.out and c.page.
func (cl *Client) do(ctx context.Context, c call) error {
	var o callOptions
	for _, opt := range c.opts {
		opt(&o)
	}
	var payload []byte
	if c.body != nil {
		var err error
		if payload, err = json.Marshal(c.body); err != nil {
			return fmt.Errorf("ledgerd client: encode the request: %w", err)
		}
	}
	key := ""
	if c.method == http.MethodPost || c.method == http.MethodPut {
		key = o.key
		if key == "" {
			key = cl.newKeyFunc()
		}
	}
	target := cl.base + "/api" + c.path
	if len(c.query) > 0 {
		target += "?" + c.query.Encode()
	}

	var (
		a      attempt
		err    error
		n      int
		gaveUp bool
		start  = time.Now()
	)
	for n = 1; ; n++ {
		a = cl.send(ctx, c.method, target, payload, key)
		// A write is retried only with its key (every write has one): the
		// server answers a repeat from the stored outcome.
		idempotent := c.method == http.MethodGet || key != ""
		if err = decode(c, a); err == nil || !idempotent || !retriable(ctx, a) {
			break
		}
		wait, ok := cl.retry.wait(ctx, n, time.Since(start), a)
		if !ok {
			gaveUp = true
			break
		}
		if werr := sleep(ctx, wait); werr != nil {
			record(o.resp, a, key, n)
			return fmt.Errorf("%s /api%s: %w while waiting to retry; last attempt: %w", c.method, c.path, werr, err)
		}
	}
	record(o.resp, a, key, n)
	if gaveUp && n > 1 {
		return fmt.Errorf("%s /api%s: gave up after %d attempts in %s: %w", c.method, c.path, n, time.Since(start).Round(time.Millisecond), err)
	}
	return err
}

// send sends the request once and reads the whole answer.
func (cl *Client) send(ctx context.Context, method, target string, payload []byte, key string) attempt {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return attempt{err: err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", cl.userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.token != "" {
		req.Header.Set("Authorization", "Bearer "+cl.token)
	}
	if key != "" {
		req.Header.Set(IdempotencyHeader, key)
	}
	resp, err := cl.http.Do(req) //nolint:gosec // G704: requests go to the base URL the caller chose
	if err != nil {
		return attempt{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	switch {
	case err != nil:
		return attempt{status: resp.StatusCode, header: resp.Header, err: fmt.Errorf("read the answer of %s %s: %w", method, req.URL.Redacted(), err)}
	case len(b) > maxBody:
		return attempt{status: resp.StatusCode, header: resp.Header, body: b[:maxBody],
			err: fmt.Errorf("%w: the answer of %s %s is larger than %d bytes", errTooLarge, method, req.URL.Redacted(), maxBody)}
	}
	return attempt{status: resp.StatusCode, header: resp.Header, body: b}
}

// decode reads an attempt's answer into c.out and c.page: nil for a
// success, a *Error for an error answer, the transport error otherwise.
func decode(c call, a attempt) error {
	if a.err != nil {
		return fmt.Errorf("ledgerd: %w", a.err)
	}
	if a.status < 200 || a.status > 299 {
		return newError(a)
	}
	var env envelope
	if err := json.Unmarshal(a.body, &env); err != nil {
		return fmt.Errorf("ledgerd client: %s /api%s answered %d with a body that is not the JSON envelope: %w", c.method, c.path, a.status, err)
	}
	if c.out != nil {
		if err := json.Unmarshal(env.Data, c.out); err != nil {
			return fmt.Errorf("ledgerd client: decode the data of %s /api%s: %w", c.method, c.path, err)
		}
	}
	if c.page != nil && env.Pagination != nil {
		*c.page = *env.Pagination
	}
	return nil
}

// record fills r, when the caller asked for it, from the last attempt.
func record(r *Response, a attempt, key string, attempts int) {
	if r == nil {
		return
	}
	*r = Response{StatusCode: a.status, Header: a.header, IdempotencyKey: key, Attempts: attempts}
	if a.header != nil {
		r.RequestID = a.header.Get("X-Request-Id")
		r.Replayed = a.header.Get("Idempotent-Replayed") == "true"
	}
	var env envelope
	if a.err == nil && json.Unmarshal(a.body, &env) == nil {
		r.Message = env.Message
	}
}

// sleep waits d, or until ctx ends (its error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// userPath is /users/{id} followed by suffix.
func userPath(id int64, suffix string) string {
	return "/users/" + strconv.FormatInt(id, 10) + suffix
}

// segment escapes an id for a path segment, so that no id can name
// another route.
func segment(id string) string { return url.PathEscape(id) }

// errEmptyID is returned, before any request, for an empty id where the
// route needs one.
var errEmptyID = errors.New("ledgerd client: the id is empty")
