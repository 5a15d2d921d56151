package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestURLsOption checks -url repeated and comma-separated: the URLs in
// order, the first one for the set-up and checks, the default replaced by
// the first -url given, and a bad URL anywhere in the list refused.
func TestURLsOption(t *testing.T) {
	t.Parallel()
	o, err := parseOptions([]string{"loadtest"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, []string{"http://localhost:3000"}, o.URLs)
	require.Equal(t, "http://localhost:3000", o.URL)

	o, err = parseOptions([]string{"loadtest", "-url", "http://a:1,http://b:2", "-url", "http://c:3/"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, []string{"http://a:1", "http://b:2", "http://c:3/"}, o.URLs)
	require.Equal(t, "http://a:1", o.URL)
	c := newClient(o)
	require.Equal(t, []string{"http://a:1", "http://b:2", "http://c:3", "http://a:1"},
		[]string{c.target(0), c.target(1), c.target(2), c.target(3)}, "round-robin by worker, trailing slash trimmed")

	for _, bad := range []string{"http://a:1,", "http://a:1,localhost:3000", "http://a:1,,http://b:2"} {
		_, err = parseOptions([]string{"loadtest", "-url", bad}, io.Discard)
		require.ErrorIs(t, err, errUsage, bad)
	}
}

// TestURLsSpread runs the hot scenario against one ledger (one trivial
// handler) reached through three servers, as replicas on one database: the
// measured withdrawals are spread over all three, the set-up and the
// checks go to the first only, and the run's checks hold.
func TestURLsSpread(t *testing.T) {
	t.Parallel()
	h := newTrivialHandler()
	var (
		mu     sync.Mutex
		load   = map[int]int{} // measured requests (PUT) per server
		others = map[int]int{} // every other request per server
	)
	var urls []string
	for i := range 3 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if r.Method == http.MethodPut {
				load[i]++
			} else {
				others[i]++
			}
			mu.Unlock()
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}

	rep, err := runJSON(t, urls[0]+","+urls[1], "-url", urls[2], "-n", "3000", "-c", "30")
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep)
	require.Equal(t, urls[0]+","+urls[1]+","+urls[2], rep.Settings["url"])
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 3000, load[0]+load[1]+load[2])
	for i := range 3 {
		require.Greater(t, load[i], 0, "server %d got none of the load", i)
	}
	require.Positive(t, others[0], "set-up and checks through the first URL")
	require.Zero(t, others[1]+others[2], "set-up and checks through the first URL only")
}
