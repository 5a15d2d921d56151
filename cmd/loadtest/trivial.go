package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/money"
)

// serveTrivial runs the trivial server on addr until ctx ends.
func serveTrivial(ctx context.Context, addr string, stderr io.Writer) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: newTrivialHandler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(stderr, "trivial server on http://%s (Ctrl-C stops it)\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// trivialServer answers ledgerd's routes at once from memory, with bodies
// of the same shape and about the same size as ledgerd's: the ceiling of
// HTTP on this machine, for `make bench`. It keeps each user's balance and
// entry count, so every scenario's invariants hold against it (the hot
// scenario gets exactly 5000 successes), and its /readyz shows a relay
// that publishes every entry at once. Nothing is durable, nothing hashed.
type trivialServer struct {
	mu      sync.RWMutex
	users   map[int64]*trivialUser
	nextID  atomic.Int64
	entries atomic.Int64 // every entry written: the relay's "published"
	page    []byte       // the answer to every history read
}

type trivialUser struct {
	mu      sync.Mutex
	balance money.Cents
	seq     int64 // entries written
}

// trivialTime stands for every instant in the trivial server's answers.
const trivialTime = "2025-04-01T12:00:00.000000Z"

// newTrivialHandler is the trivial server's handler.
func newTrivialHandler() http.Handler {
	s := &trivialServer{users: map[int64]*trivialUser{}}
	s.nextID.Store(1_000_000)
	s.page = s.historyPage(20)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/users", s.createUser)
	mux.HandleFunc("GET /api/users/{id}", s.withUser(s.getUser))
	mux.HandleFunc("PUT /api/users/{id}/balance", s.withUser(s.updateBalance))
	mux.HandleFunc("GET /api/users/{id}/balance", s.withUser(s.getBalance))
	mux.HandleFunc("GET /api/users/{id}/transactions", s.withUser(s.history))
	mux.HandleFunc("GET /api/users/{id}/verify", s.withUser(s.verify))
	mux.HandleFunc("POST /api/transfers", s.transfer)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, []byte(`{"success":true,"data":{"status":"ok"}}`))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, "not_found", "no such route")
	})
	return mux
}

func reply(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json; charset=utf-8"}
	h["X-Request-Id"] = []string{"01JQTRIVIAL0000000000000000"}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func fail(w http.ResponseWriter, status int, typ, message string) {
	reply(w, status, []byte(`{"success":false,"error":{"message":"`+message+`","code":`+strconv.Itoa(status)+`,"type":"`+typ+`"}}`))
}

// decode reads a JSON body into v as ledgerd does: one object, no unknown
// fields.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	d := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "validation_error", "body is not a valid request")
		return false
	}
	return true
}

func (s *trivialServer) user(id int64) *trivialUser {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.users[id]
}

// withUser looks up {id} for h, answering 400 or 404 itself.
func (s *trivialServer) withUser(h func(http.ResponseWriter, *http.Request, int64, *trivialUser)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			fail(w, http.StatusBadRequest, "validation_error", "user id must be a positive integer")
			return
		}
		u := s.user(id)
		if u == nil {
			fail(w, http.StatusNotFound, "not_found", "User not found")
			return
		}
		h(w, r, id, u)
	}
}

func appendUser(b []byte, id int64, balance money.Cents) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"balance":`...)
	b = money.AppendFormat(b, balance)
	return append(b, `,"createdAt":"`+trivialTime+`","updatedAt":"`+trivialTime+`"}`...)
}

func (s *trivialServer) createUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID      *int64       `json:"id"`
		Balance *money.Cents `json:"balance"`
	}
	if !decode(w, r, &req) {
		return
	}
	u := &trivialUser{}
	if req.Balance != nil {
		if *req.Balance < 0 {
			fail(w, http.StatusBadRequest, "validation_error", "balance must not be negative")
			return
		}
		u.balance = *req.Balance
	}
	if u.balance > 0 {
		u.seq = 1 // the opening entry
	}
	id := s.nextID.Add(1)
	if req.ID != nil {
		id = *req.ID
	}
	s.mu.Lock()
	_, exists := s.users[id]
	if !exists {
		s.users[id] = u
	}
	s.mu.Unlock()
	if exists {
		fail(w, http.StatusConflict, "conflict", "User already exists")
		return
	}
	s.entries.Add(u.seq)
	body := append([]byte(`{"success":true,"data":`), appendUser(nil, id, u.balance)...)
	reply(w, http.StatusCreated, append(body, `,"message":"User created successfully"}`...))
}

func (s *trivialServer) getUser(w http.ResponseWriter, _ *http.Request, id int64, u *trivialUser) {
	u.mu.Lock()
	balance := u.balance
	u.mu.Unlock()
	body := append([]byte(`{"success":true,"data":`), appendUser(nil, id, balance)...)
	reply(w, http.StatusOK, append(body, '}'))
}

// getBalance answers the current balance and seq; with ?at, the instant
// before every entry (balance 0, seq 0): the trivial server keeps no
// history.
func (s *trivialServer) getBalance(w http.ResponseWriter, r *http.Request, id int64, u *trivialUser) {
	u.mu.Lock()
	balance, seq := u.balance, u.seq
	u.mu.Unlock()
	if r.URL.Query().Has("at") {
		balance, seq = 0, 0
	}
	b := append(make([]byte, 0, 128), `{"success":true,"data":{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"balance":`...)
	b = money.AppendFormat(b, balance)
	b = append(b, `,"at":"`+trivialTime+`","seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	reply(w, http.StatusOK, append(b, `}}`...))
}

// apply changes u's balance by amount unless it would go below zero, and
// returns the new balance and entry seq.
func (u *trivialUser) apply(amount money.Cents) (money.Cents, int64, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.balance+amount < 0 {
		return u.balance, u.seq, false
	}
	u.balance += amount
	u.seq++
	return u.balance, u.seq, true
}

func (s *trivialServer) updateBalance(w http.ResponseWriter, r *http.Request, id int64, u *trivialUser) {
	var req struct {
		Amount      money.Cents `json:"amount"`
		Description *string     `json:"description"`
		Reference   *string     `json:"reference"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Amount == 0 {
		fail(w, http.StatusBadRequest, "validation_error", "amount must not be zero")
		return
	}
	balance, seq, ok := u.apply(req.Amount)
	if !ok {
		fail(w, http.StatusBadRequest, "insufficient_funds", "Insufficient funds")
		return
	}
	s.entries.Add(1)
	b := append(make([]byte, 0, 256), `{"success":true,"data":{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"balance":`...)
	b = money.AppendFormat(b, balance)
	b = append(b, `,"updatedAt":"`+trivialTime+`","entry":{"id":"`...)
	b = appendFakeUUID(b, id, seq)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	reply(w, http.StatusOK, append(b, `}},"message":"Balance updated successfully"}`...))
}

func (s *trivialServer) history(w http.ResponseWriter, _ *http.Request, _ int64, _ *trivialUser) {
	reply(w, http.StatusOK, s.page)
}

func (s *trivialServer) verify(w http.ResponseWriter, _ *http.Request, id int64, u *trivialUser) {
	u.mu.Lock()
	balance, seq := u.balance, u.seq
	u.mu.Unlock()
	b := append(make([]byte, 0, 160), `{"success":true,"data":{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"ok":true,"entries":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"ledgerBalance":`...)
	b = money.AppendFormat(b, balance)
	b = append(b, `,"projectedBalance":`...)
	b = money.AppendFormat(b, balance)
	reply(w, http.StatusOK, append(b, `,"chainValid":true}}`...))
}

func (s *trivialServer) transfer(w http.ResponseWriter, r *http.Request) {
	var req struct {
		FromUserID  int64       `json:"fromUserId"`
		ToUserID    int64       `json:"toUserId"`
		Amount      money.Cents `json:"amount"`
		Description *string     `json:"description"`
		Reference   *string     `json:"reference"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Amount <= 0 || req.FromUserID == req.ToUserID {
		fail(w, http.StatusBadRequest, "validation_error", "amount must be positive and the users different")
		return
	}
	from, to := s.user(req.FromUserID), s.user(req.ToUserID)
	if from == nil || to == nil {
		fail(w, http.StatusNotFound, "not_found", "User not found")
		return
	}
	// Two separate steps, never both locks at once, so no lock order is
	// needed; the trivial server promises no atomicity to readers.
	fromBalance, fromSeq, ok := from.apply(-req.Amount)
	if !ok {
		fail(w, http.StatusBadRequest, "insufficient_funds", "Insufficient funds")
		return
	}
	toBalance, toSeq, _ := to.apply(req.Amount)
	s.entries.Add(2)
	b := append(make([]byte, 0, 1400), `{"success":true,"data":{"id":"`...)
	b = appendFakeUUID(b, req.FromUserID, -fromSeq)
	b = fmt.Appendf(b, `","fromUserId":%d,"toUserId":%d,"amount":%s,"entries":[`, req.FromUserID, req.ToUserID, req.Amount)
	b = appendEntry(b, req.FromUserID, fromSeq, "transfer_out", -req.Amount, fromBalance)
	b = append(b, ',')
	b = appendEntry(b, req.ToUserID, toSeq, "transfer_in", req.Amount, toBalance)
	reply(w, http.StatusCreated, append(b, `],"createdAt":"`+trivialTime+`"},"message":"Transfer completed successfully"}`...))
}

func (s *trivialServer) readyz(w http.ResponseWriter, _ *http.Request) {
	b := append(make([]byte, 0, 300), `{"success":true,"data":{"status":"ready","database":"up","relay":{"enabled":true,"role":"leader","brokerConnected":true,"published":`...)
	b = strconv.AppendInt(b, s.entries.Load(), 10)
	reply(w, http.StatusOK, append(b, `,"returned":0,"pending":0,"oldestPendingAgeSeconds":0,"backlogAt":"`+trivialTime+`"}}}`...))
}

// historyPage is a page of n made-up entries, newest first, as
// GET /api/users/{id}/transactions?limit=n writes it.
func (s *trivialServer) historyPage(n int) []byte {
	b := []byte(`{"success":true,"data":[`)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		seq := int64(n - i + 1)
		b = appendEntry(b, 1, seq, "withdrawal", -2_00, startBalance-money.Cents(seq-1)*2_00)
	}
	return append(b, `],"pagination":{"nextCursor":"Mg","hasMore":true}}`...)
}

// appendEntry writes a made-up entry in ledgerd's shape, hashes included.
func appendEntry(b []byte, userID, seq int64, typ string, amount, balanceAfter money.Cents) []byte {
	b = append(b, `{"id":"`...)
	b = appendFakeUUID(b, userID, seq)
	b = fmt.Appendf(b, `","userId":%d,"seq":%d,"type":"%s","amount":%s,"balanceAfter":%s,`, userID, seq, typ, amount, balanceAfter)
	b = append(b, `"transferId":null,"description":null,"reference":null,"idempotencyKey":null,"createdAt":"`+trivialTime+`",`...)
	b = append(b, `"hash":"`+strings.Repeat("ab", 32)+`","prevHash":"`+strings.Repeat("cd", 32)+`"}`...)
	return b
}

// appendFakeUUID writes a UUID-shaped id made of userID and seq.
func appendFakeUUID(b []byte, userID, seq int64) []byte {
	return fmt.Appendf(b, "0195f2a0-%04x-7000-8000-%012x", uint16(userID), uint64(seq)&(1<<48-1))
}
