package ledgerdclient_test

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"testing"

	ledgerdclient "ledgerd.test/goclient"
)

// Money is generated as float64: these lines compile only if every money
// field is one (a float32 is not assignable to a float64).
var (
	_ float64 = ledgerdclient.User{}.Balance
	_ float64 = ledgerdclient.User{}.Available
	_ float64 = ledgerdclient.User{}.Held
	_ float64 = ledgerdclient.BalanceUpdate{}.Balance
	_ float64 = ledgerdclient.Entry{}.Amount
	_ float64 = ledgerdclient.Entry{}.BalanceAfter
	_ float64 = ledgerdclient.Transfer{}.Amount
	_ float64 = ledgerdclient.Hold{}.Amount
	_ float64 = ledgerdclient.Amount0(0)
)

// TestAgainstLedgerd creates a user through the generated client, deposits
// 1234567.89 and reads it back exactly (rounded to cents, as the Money
// schema asks), and reads an error's type, param and requestId.
func TestAgainstLedgerd(t *testing.T) {
	base := os.Getenv("LEDGERD_URL")
	if base == "" {
		t.Fatal("LEDGERD_URL is not set: ledgerd's TestGeneratedGoClient runs this test against a live server")
	}
	ctx := context.Background()
	c, err := ledgerdclient.NewClientWithResponses(base)
	if err != nil {
		t.Fatal(err)
	}

	created, err := c.CreateUserWithResponse(ctx, nil, ledgerdclient.CreateUserJSONRequestBody{})
	if err != nil || created.JSON201 == nil {
		t.Fatalf("create user: %v %s", err, body(created.Body))
	}
	id := strconv.FormatInt(created.JSON201.Data.Id, 10)

	var amount ledgerdclient.Amount
	if err := amount.FromAmount0(1234567.89); err != nil {
		t.Fatal(err)
	}
	updated, err := c.UpdateBalanceWithResponse(ctx, id, nil, ledgerdclient.UpdateBalanceJSONRequestBody{Amount: amount})
	if err != nil || updated.JSON200 == nil {
		t.Fatalf("deposit: %v %s", err, body(updated.Body))
	}

	got, err := c.GetUserWithResponse(ctx, id)
	if err != nil || got.JSON200 == nil {
		t.Fatalf("get user: %v %s", err, body(got.Body))
	}
	for name, v := range map[string]float64{
		"PUT's balance": updated.JSON200.Data.Balance,
		"GET's balance": got.JSON200.Data.Balance, "GET's available": got.JSON200.Data.Available,
	} {
		if s := strconv.FormatFloat(v, 'f', 2, 64); s != "1234567.89" || v != 1234567.89 {
			t.Errorf("%s reads %s (%v), want 1234567.89", name, s, v)
		}
	}
	if f32 := float32(1234567.89); strconv.FormatFloat(float64(f32), 'f', 2, 32) == "1234567.89" {
		t.Error("a float32 would keep 1234567.89: this test no longer shows why float64 matters")
	}

	bad, err := c.GetUserWithResponse(ctx, "abc", func(_ context.Context, req *http.Request) error {
		req.Header.Set("X-Request-Id", "goclient-bad-id")
		return nil
	})
	if err != nil || bad.JSON400 == nil {
		t.Fatalf("get user abc: want a 400 envelope, got %v %s", err, body(bad.Body))
	}
	e := bad.JSON400.Error
	if e.Type != "validation_error" || e.Param == nil || *e.Param != "id" || e.RequestId != "goclient-bad-id" ||
		bad.HTTPResponse.Header.Get("X-Request-Id") != e.RequestId {
		t.Errorf("the error names the type, the path parameter and the request id: %s", bad.Body)
	}
}

func body(b []byte) string { return string(b) }
