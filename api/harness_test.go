package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/api"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations/dbtest"
)

// testServer is ledgerd's HTTP handler on a real listener, on a fresh
// database, with every response checked against api/openapi.yaml.
type testServer struct {
	URL    string
	Pool   *pgxpool.Pool
	Client *http.Client
}

func newTestServer(t testing.TB, maxConns int32) *testServer {
	t.Helper()
	return newTestServerOn(t, newPool(t, maxConns), ledger.Options{})
}

func newPool(t testing.TB, maxConns int32) *pgxpool.Pool {
	t.Helper()
	return dbtest.NewPool(t, maxConns)
}

func newTestServerOn(t testing.TB, pool *pgxpool.Pool, opts ledger.Options) *testServer {
	t.Helper()
	return newTestServerDeps(t, pool, api.Deps{Ledger: ledger.New(pool, opts)})
}

// newTestServerWith is a test server with the given API options (tokens,
// rate limit) and a default ledger.
func newTestServerWith(t testing.TB, pool *pgxpool.Pool, d api.Deps) *testServer {
	t.Helper()
	d.Ledger = ledger.New(pool, ledger.Options{})
	return newTestServerDeps(t, pool, d)
}

func newTestServerDeps(t testing.TB, pool *pgxpool.Pool, d api.Deps) *testServer {
	t.Helper()
	d.Logger = discardLogger()
	srv := httptest.NewServer(api.NewServer(d))
	t.Cleanup(srv.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 2000, 2000
	client := &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	return &testServer{URL: srv.URL, Pool: pool, Client: client}
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a generic JSON value.
func (r response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&m), "body: %s", r.Body)
	return m
}

// ErrorType returns error.type of an error envelope.
func (r response) ErrorType(t testing.TB) string {
	t.Helper()
	m := r.JSON(t)
	require.Equal(t, false, m["success"], "body: %s", r.Body)
	e, ok := m["error"].(map[string]any)
	require.True(t, ok, "body: %s", r.Body)
	require.Equal(t, json.Number(itoa(r.Status)), e["code"], "error.code is the HTTP status")
	return e["type"].(string)
}

// do sends a request and validates the response against the OpenAPI
// document. body may be nil, a string (sent as is) or a value (sent as JSON).
func (s *testServer) do(t testing.TB, method, path string, body any, headers ...string) response {
	t.Helper()
	return s.send(t, true, method, path, body, headers...)
}

// send is do, with the OpenAPI check optional: load tests check a sample
// of their answers, so that the client's work does not starve the server.
func (s *testServer) send(t testing.TB, validate bool, method, path string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, rd)
	require.NoError(t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.Client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	r := response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if validate {
		validateResponse(t, req, r)
	}
	return r
}

var (
	specOnce   sync.Once
	specDoc    *openapi3.T
	specRouter routers.Router
	specErr    error
)

// validateResponse checks r against api/openapi.yaml: the operation must be
// documented, and the status, headers and body must match its schema. An
// error's requestId must be the response's X-Request-Id.
func validateResponse(t testing.TB, req *http.Request, r response) {
	t.Helper()
	specOnce.Do(func() {
		// /openapi.yaml's body is declared as the text it is (type:
		// string); kin-openapi would otherwise parse YAML bodies first.
		openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.FileBodyDecoder)
		loader := openapi3.NewLoader()
		specDoc, specErr = loader.LoadFromData(api.OpenAPISpec())
		if specErr != nil {
			return
		}
		if specErr = specDoc.Validate(context.Background()); specErr != nil {
			return
		}
		specDoc.Servers = nil // match any host
		specRouter, specErr = gorillamux.NewRouter(specDoc)
	})
	require.NoError(t, specErr, "api/openapi.yaml must load and validate")
	requireErrorRequestID(t, r)

	route, params, err := specRouter.FindRoute(req)
	if err != nil {
		// Unknown routes and wrong methods are not operations of the
		// document; their answer must still be the error envelope, and a
		// 405 must say which methods the path takes.
		require.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, r.Status, "%s %s is not in api/openapi.yaml", req.Method, req.URL.Path)
		if req.Method != http.MethodHead {
			var body any
			require.NoError(t, json.Unmarshal(r.Body, &body), "body: %s", r.Body)
			require.NoError(t, specDoc.Components.Schemas["ErrorEnvelope"].Value.VisitJSON(body),
				"%s %s → %d %s is not an ErrorEnvelope of api/openapi.yaml", req.Method, req.URL.Path, r.Status, r.Body)
		}
		if r.Status == http.StatusMethodNotAllowed {
			require.Regexp(t, `^[A-Z]+(, [A-Z]+)*$`, r.Header.Get("Allow"), "a 405 has an Allow header")
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{ExcludeRequestBody: true},
		},
		Status: r.Status,
		Header: r.Header,
		Body:   io.NopCloser(bytes.NewReader(r.Body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	require.NoError(t, openapi3filter.ValidateResponse(context.Background(), in),
		"%s %s → %d %s does not match api/openapi.yaml", req.Method, req.URL.Path, r.Status, r.Body)
}

// requireErrorRequestID checks that an error envelope's error.requestId is
// the response's X-Request-Id, except in an answer replayed for an
// Idempotency-Key, which keeps the id of the request that decided it.
func requireErrorRequestID(t testing.TB, r response) {
	t.Helper()
	if r.Status < http.StatusBadRequest || len(r.Body) == 0 || r.Header.Get("Idempotent-Replayed") == "true" ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return
	}
	var env struct {
		Error *struct {
			RequestID *string `json:"requestId"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &env), "body: %s", r.Body)
	require.NotNil(t, env.Error, "a %d answers with the error envelope: %s", r.Status, r.Body)
	require.NotNil(t, env.Error.RequestID, "error.requestId: %s", r.Body)
	require.NotEmpty(t, r.Header.Get("X-Request-Id"))
	require.Equal(t, r.Header.Get("X-Request-Id"), *env.Error.RequestID, "error.requestId is the X-Request-Id: %s", r.Body)
}

// requestIDMember is error.requestId as the server writes it.
var requestIDMember = regexp.MustCompile(`,"requestId":"[A-Za-z0-9._:-]*"`)

// withoutRequestID is an error body without its requestId, which differs
// from one request to the next: for counting answers that are otherwise
// the same.
func withoutRequestID(body []byte) string {
	return requestIDMember.ReplaceAllString(string(body), "")
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// discardLogger drops the request logs, unless LEDGERD_TEST_LOGS is set.
func discardLogger() *slog.Logger {
	w := io.Discard
	if os.Getenv("LEDGERD_TEST_LOGS") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
