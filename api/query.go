package api

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// queryParams parses the request's query string strictly: a malformed
// one (a bad percent escape, say) is a 400, not a silently dropped
// parameter, and so is a parameter given twice, which could mean two
// things, or one that is not among names, the route's parameters.
func queryParams(r *http.Request, names []string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("the query string is not valid: percent escapes must be %%XX with two hex digits")
	}
	for name, vs := range q {
		if len(vs) > 1 {
			return nil, badParam(truncate(name, 40), "the query parameter %q is given more than once", truncate(name, 40))
		}
	}
	return q, onlyParams(q, names)
}

// rfc3339 is the grammar of an RFC 3339 date-time: Go's parser alone also
// takes offsets such as +24:00 or +00:60, which RFC 3339 does not.
var rfc3339 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$`)

// parseInstant reads the query parameter name as an RFC 3339 instant; nil
// when it is absent. Every instant is a real one: 0001-01-01T00:00:00Z
// means that instant, not "not given".
func parseInstant(q url.Values, name string) (*time.Time, error) {
	s, ok := q[name]
	if !ok {
		return nil, nil
	}
	t, err := parseInstantValue(name, s[0])
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// parseInstantValue reads s, the value of name, as an RFC 3339 instant.
func parseInstantValue(name, s string) (time.Time, error) {
	if rfc3339.MatchString(s) {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, badParam(name, "%s must be an RFC 3339 instant such as 2025-04-01T12:00:00Z", name)
}

// onlyParams refuses a query parameter that is not one of names.
func onlyParams(q map[string][]string, names []string) error {
	for name := range q {
		if !slices.Contains(names, name) {
			return badParam(truncate(name, 40), "unknown query parameter %q; the parameters are %s", truncate(name, 40), strings.Join(names, ", "))
		}
	}
	return nil
}

// parseLimit reads limit, def when absent.
func parseLimit(q map[string][]string, def, maxLimit int) (int, error) {
	s, ok := q["limit"]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(s[0])
	if err != nil || n < 1 || n > maxLimit {
		return 0, badParam("limit", "limit must be an integer between 1 and %d", maxLimit)
	}
	return n, nil
}
