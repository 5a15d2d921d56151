// Command amqpceiling measures the raw publish ceiling of the local
// RabbitMQ for make bench: n persistent messages of the relay's size,
// published with the mandatory flag in windows of publisher confirms (as
// the relay does), to a scratch exchange with one bound queue, which it
// deletes at the end. It prints one JSON object.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	url := flag.String("url", "amqp://guest:guest@localhost:5672/", "RabbitMQ URL")
	n := flag.Int("n", 50_000, "messages")
	window := flag.Int("window", 256, "unconfirmed messages in flight")
	size := flag.Int("size", 800, "body size in bytes (an event is about 800)")
	flag.Parse()
	rate, err := measure(*url, *n, *window, *size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "amqpceiling:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"scenario": "amqp-ceiling", "rps": rate, "requests": *n, "window": *window, "ok": true})
}

func measure(url string, n, window, size int) (float64, error) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	name := fmt.Sprintf("bench.amqp-ceiling.%d", time.Now().UnixNano())
	if err := ch.ExchangeDeclare(name, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return 0, err
	}
	defer func() { _ = ch.ExchangeDelete(name, false, false) }()
	if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		return 0, err
	}
	defer func() { _, _ = ch.QueueDelete(name, false, false, false) }()
	if err := ch.QueueBind(name, "#", name, false, nil); err != nil {
		return 0, err
	}
	if err := ch.Confirm(false); err != nil {
		return 0, err
	}
	body := []byte(strings.Repeat("x", size))
	ctx := context.Background()
	start := time.Now()
	for sent := 0; sent < n; {
		k := min(window, n-sent)
		confs := make([]*amqp.DeferredConfirmation, 0, k)
		for range k {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, name, "ledger.entry.deposit", true, false,
				amqp.Publishing{DeliveryMode: amqp.Persistent, ContentType: "application/cloudevents+json", Body: body})
			if err != nil {
				return 0, err
			}
			confs = append(confs, dc)
		}
		for _, dc := range confs {
			ok, err := dc.WaitContext(ctx)
			if err != nil {
				return 0, fmt.Errorf("wait for confirm: %w", err)
			}
			if !ok {
				return 0, errors.New("the broker nacked a message")
			}
		}
		sent += k
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
