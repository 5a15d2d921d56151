package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/money"
)

// The original requirement's flow: a user with 100.00, a withdrawal of 2,
// and a withdrawal the balance cannot cover, refused.
func Example() {
	ctx := context.Background()
	c, err := client.New(os.Getenv("LEDGERD_URL"), client.WithToken(os.Getenv("LEDGER_API_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}

	u, err := c.CreateUser(ctx, client.NewUser{Balance: 100_00}) // 100.00, in cents
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created with", u.Balance)

	up, err := c.UpdateBalance(ctx, u.ID, client.BalanceChange{Amount: -2_00})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after withdrawing 2:", up.Balance)

	_, err = c.UpdateBalance(ctx, u.ID, client.BalanceChange{Amount: -100_00})
	switch {
	case errors.Is(err, client.ErrInsufficientFunds):
		fmt.Println("refused: insufficient funds; nothing was written")
	case err != nil:
		log.Fatal(err)
	}

	u, err = c.GetUser(ctx, u.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("balance", u.Balance, "available", u.Available)
	// Output:
	// created with 100
	// after withdrawing 2: 98
	// refused: insufficient funds; nothing was written
	// balance 98 available 98
}

// A transfer with an Idempotency-Key of your own: sending it again (after
// a crash, say) changes nothing and answers the same.
func ExampleClient_CreateTransfer() {
	ctx := context.Background()
	c, err := client.New(os.Getenv("LEDGERD_URL"))
	if err != nil {
		log.Fatal(err)
	}
	alice, err := c.CreateUser(ctx, client.NewUser{Balance: 1000_00})
	if err != nil {
		log.Fatal(err)
	}
	bob, err := c.CreateUser(ctx, client.NewUser{})
	if err != nil {
		log.Fatal(err)
	}

	rent := client.NewTransfer{FromUserID: alice.ID, ToUserID: bob.ID, Amount: 30_50, Description: "rent"}
	key := fmt.Sprintf("rent-2025-04-%d", alice.ID) // derived from your own record
	for range 2 {
		var resp client.Response
		t, err := c.CreateTransfer(ctx, rent, client.IdempotencyKey(key), client.ResponseInto(&resp))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("moved %s: %s then %s, replayed %t\n", t.Amount, t.Entries[0].Type, t.Entries[1].Type, resp.Replayed)
	}

	bob, err = c.GetUser(ctx, bob.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob holds", bob.Balance)
	// Output:
	// moved 30.50: transfer_out then transfer_in, replayed false
	// moved 30.50: transfer_out then transfer_in, replayed true
	// bob holds 30.50
}

// A user's history, oldest first, across pages.
func ExampleClient_TransactionPages() {
	ctx := context.Background()
	c, err := client.New(os.Getenv("LEDGERD_URL"))
	if err != nil {
		log.Fatal(err)
	}
	u, err := c.CreateUser(ctx, client.NewUser{Balance: 100_00})
	if err != nil {
		log.Fatal(err)
	}
	for _, amount := range []money.Cents{-2_00, 10_05, -0_05} {
		if _, err := c.UpdateBalance(ctx, u.ID, client.BalanceChange{Amount: amount}); err != nil {
			log.Fatal(err)
		}
	}

	f := client.TransactionFilter{Order: client.OldestFirst, Limit: 2}
	for e, err := range client.All(c.TransactionPages(ctx, u.ID, f)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Seq, e.Type, e.Amount, e.BalanceAfter)
	}
	// Output:
	// 1 opening 100 100
	// 2 withdrawal -2 98
	// 3 deposit 10.05 108.05
	// 4 withdrawal -0.05 108
}

// A batch is all or nothing; a refused change is named in Error.Param.
func ExampleError() {
	ctx := context.Background()
	c, err := client.New(os.Getenv("LEDGERD_URL"))
	if err != nil {
		log.Fatal(err)
	}
	payer, err := c.CreateUser(ctx, client.NewUser{Balance: 50_00})
	if err != nil {
		log.Fatal(err)
	}
	payee, err := c.CreateUser(ctx, client.NewUser{})
	if err != nil {
		log.Fatal(err)
	}

	_, err = c.CreateBatch(ctx, client.NewBatch{Changes: []client.BatchChange{
		{UserID: payee.ID, Amount: 100_00},
		{UserID: payer.ID, Amount: -100_00},
	}})
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Type, apiErr.Param)
		fmt.Println("insufficient funds:", errors.Is(err, client.ErrInsufficientFunds))
		fmt.Println("has a request id:", apiErr.RequestID != "")
	}
	// Output:
	// 400 insufficient_funds changes[1]
	// insufficient funds: true
	// has a request id: true
}

// Authorize now, capture part later.
func ExampleClient_CaptureHold() {
	ctx := context.Background()
	c, err := client.New(os.Getenv("LEDGERD_URL"))
	if err != nil {
		log.Fatal(err)
	}
	u, err := c.CreateUser(ctx, client.NewUser{Balance: 100_00})
	if err != nil {
		log.Fatal(err)
	}
	h, err := c.PlaceHold(ctx, u.ID, client.NewHold{Amount: 60_00, Description: "card auth"})
	if err != nil {
		log.Fatal(err)
	}
	u, err = c.GetUser(ctx, u.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("held", u.Held, "available", u.Available)

	h, err = c.CaptureHold(ctx, h.ID, 25_00)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(h.Status, *h.CapturedAmount)
	_, err = c.VoidHold(ctx, h.ID)
	fmt.Println("void after capture:", errors.Is(err, client.ErrConflict))

	u, err = c.GetUser(ctx, u.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("balance", u.Balance, "held", u.Held)
	// Output:
	// held 60 available 40
	// captured 25
	// void after capture: true
	// balance 75 held 0
}

// Reading the event feed: every committed event once, each user's in seq
// order. A consumer saves the cursor with what it applied and resumes
// from it; EventPages pages to the end in one loop.
func ExampleClient_ReadEvents() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(os.Getenv("LEDGERD_URL"))
	if err != nil {
		log.Fatal(err)
	}
	u, err := c.CreateUser(ctx, client.NewUser{Balance: 10_00})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.UpdateBalance(ctx, u.ID, client.BalanceChange{Amount: -1_00}); err != nil {
		log.Fatal(err)
	}

	subject := fmt.Sprintf("users/%d", u.ID)
	cursor := "" // the saved cursor; "" reads from the ledger's first event
	for seen := 0; seen < 2; {
		// Wait: when nothing is there yet, wait up to 5 s for an event.
		p, err := c.ReadEvents(ctx, client.EventFilter{After: cursor, Limit: 1000, Wait: 5 * time.Second, Type: "ledger.entry."})
		if err != nil {
			log.Fatal(err)
		}
		for _, ev := range p.Data {
			if ev.Subject != subject {
				continue // another user's
			}
			e, err := ev.Entry()
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println(ev.Type, e.Seq, e.Amount, e.BalanceAfter)
			seen++
		}
		cursor = p.NextCursor // save it with what was applied
	}
	// Output:
	// ledger.entry.opening 1 10 10
	// ledger.entry.withdrawal 2 -1 9
}
