package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Role is what a token may do.
type Role string

// The roles of LEDGER_API_TOKENS.
const (
	// RoleWriter may use every route.
	RoleWriter Role = "writer"
	// RoleAuditor may use the GET routes only.
	RoleAuditor Role = "auditor"
)

// Token is one configured credential: a role and the SHA-256 of the secret
// token. The secret itself is never configured, stored or logged.
type Token struct {
	Role Role
	Hash [sha256.Size]byte
}

// ParseTokens reads LEDGER_API_TOKENS: comma-separated "role:sha256hex"
// pairs. An empty string is no tokens (auth off).
func ParseTokens(s string) ([]Token, error) {
	var out []Token
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		role, hexHash, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("LEDGER_API_TOKENS entry %d: want role:sha256hex", i+1)
		}
		t := Token{Role: Role(strings.TrimSpace(role))}
		if t.Role != RoleWriter && t.Role != RoleAuditor {
			return nil, fmt.Errorf("LEDGER_API_TOKENS entry %d: role must be writer or auditor", i+1)
		}
		h, err := hex.DecodeString(strings.TrimSpace(hexHash))
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("LEDGER_API_TOKENS entry %d: want the token's SHA-256 as 64 hex digits", i+1)
		}
		copy(t.Hash[:], h)
		out = append(out, t)
	}
	return out, nil
}

// HashToken returns the hex SHA-256 of a secret token, as LEDGER_API_TOKENS
// lists it.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Principal is who made a request.
type Principal struct {
	Role Role
	// Scope keeps one client's idempotency keys apart from another's: a
	// short form of the token's hash, "" when auth is off.
	Scope string
}

type principalKey struct{}

func principalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// withAuth requires a bearer token of a configured role on every request,
// when tokens are configured: 401 without a valid one, 403 for an auditor
// on a route that writes. The token's hash is compared with every
// configured hash in constant time, with no early exit. When a rate limit
// is set, failed attempts count against the client's address too, so
// tokens cannot be guessed at full speed (429 past the limit).
func withAuth(tokens []Token, rps float64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if len(tokens) == 0 {
			return next
		}
		var failures *rateLimiter
		if rps > 0 {
			failures = newRateLimiter(rps)
		}
		unauthorized := func(w http.ResponseWriter, r *http.Request, msg string) {
			if failures != nil {
				addr, _, _ := net.SplitHostPort(r.RemoteAddr)
				now := time.Now()
				if !failures.limiter("failed:"+addr, now).AllowN(now, 1) {
					w.Header().Set("Retry-After", "1")
					writeError(w, r, &Error{Status: http.StatusTooManyRequests, Type: typeRateLimited,
						Message: "too many failed authentication attempts; retry after the time in Retry-After"})
					return
				}
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="ledgerd"`)
			writeError(w, r, &Error{Status: http.StatusUnauthorized, Type: typeUnauthorized, Message: msg})
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
				unauthorized(w, r, "a bearer token is required: Authorization: Bearer <token>")
				return
			}
			sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
			match := -1
			for i, t := range tokens {
				if subtle.ConstantTimeCompare(sum[:], t.Hash[:]) == 1 {
					match = i
				}
			}
			if match < 0 {
				unauthorized(w, r, "the bearer token is not valid")
				return
			}
			t := tokens[match]
			if t.Role == RoleAuditor && r.Method != http.MethodGet && r.Method != http.MethodHead {
				writeError(w, r, &Error{Status: http.StatusForbidden, Type: typeForbidden,
					Message: "the auditor role may only read (GET)"})
				return
			}
			p := Principal{Role: t.Role, Scope: hex.EncodeToString(t.Hash[:8])}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		})
	}
}
