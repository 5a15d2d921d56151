// Package client is the Go client of ledgerd's HTTP API: typed methods for
// every route under /api, exact money, safe retries and typed errors.
//
//	c, err := client.New("http://localhost:3000", client.WithToken(os.Getenv("LEDGER_API_TOKEN")))
//	u, err := c.CreateUser(ctx, client.NewUser{Balance: 100_00}) // 100.00
//	_, err = c.UpdateBalance(ctx, u.ID, client.BalanceChange{Amount: -2_00})
//	if errors.Is(err, client.ErrInsufficientFunds) { … }
//
// # Money
//
// Amounts and balances are money.Cents, int64 minor units: 100.50 is
// 10050. They are sent as exact JSON numbers and read from the JSON number
// text, never through a float.
//
// # Writes are made safe to retry
//
// Every write (POST, PUT) carries an Idempotency-Key: a fresh random one,
// or the caller's (IdempotencyKey). Each retry of the call sends the same
// key and the same bytes, so a write the server committed before its answer
// was lost is answered from its stored outcome (Response.Replayed) and
// applied once. A decided refusal is stored too: a retried withdrawal that
// was refused stays refused.
//
// # Retries
//
// A call is retried on transport errors (no complete answer) and on 429,
// 502, 503 and 504, with capped exponential backoff and jitter, waiting at
// least what a Retry-After header asks, and bounded by RetryPolicy
// (attempts, elapsed time) and by the context's deadline; it then returns
// the last attempt's error. Other answers are never retried: a 400 or a
// 409 would only repeat itself. The context bounds the whole call,
// retries included; the http.Client's Timeout bounds each attempt.
//
// # Errors
//
// An answer in the API's error envelope is a *Error with the HTTP status,
// error.type, error.message, error.param (the field at fault) and
// error.requestId. Each is also its type's sentinel for errors.Is
// (ErrInsufficientFunds, ErrNotFound, ErrValidation, ErrConflict,
// ErrIdempotencyConflict, ErrUnauthorized, ErrForbidden, ErrRateLimited,
// ErrUnavailable, …). A call the client gave up retrying returns the last
// *Error wrapped, so errors.Is and errors.As still see it. Transport and
// context errors are returned wrapped as they are.
//
// # Lists
//
// List methods return one Page; the …Pages methods iterate over the pages
// (range-over-func), and All flattens pages into items:
//
//	for e, err := range client.All(c.TransactionPages(ctx, id, client.TransactionFilter{Type: client.EntryWithdrawal})) {
//		if err != nil { return err }
//		fmt.Println(e.Seq, e.Amount, e.BalanceAfter)
//	}
//
// The event feed (ReadEvents, EventPages) pages through every committed
// event exactly once; keep each page's NextCursor to resume after it.
//
// The package imports only the standard library and ledgerd's money
// package: it brings no database or server code into its callers.
package client
