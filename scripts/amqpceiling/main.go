// Command amqpceiling measures the raw publish ceiling of the local
// RabbitMQ for make bench: n persistent messages of the relay's size,
// published with the mandatory flag in windows of publisher confirms (as
// the relay does), to a scratch exchange with one bound queue, which it
// deletes at the end. With -channels C, C connections (each with its
// channel) publish n/C messages each at the same time to that exchange and
// queue, as C relay partitions do. It prints one JSON object.
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
	channels := flag.Int("channels", 1, "connections publishing at once, each with its channel and n/channels messages")
	scenario := flag.String("scenario", "amqp-ceiling", "the scenario name of the JSON result")
	flag.Parse()
	rate, err := measure(*url, *n, *window, *size, max(*channels, 1))
	if err != nil {
		fmt.Fprintln(os.Stderr, "amqpceiling:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"scenario": *scenario, "rps": rate, "requests": *n, "window": *window, "channels": *channels, "ok": true,
		"details": map[string]any{"channels": *channels}})
}

func measure(url string, n, window, size, channels int) (float64, error) {
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
	body := []byte(strings.Repeat("x", size))
	errs := make(chan error, channels)
	start := time.Now()
	for i := range channels {
		k := n / channels
		if i < n%channels {
			k++
		}
		go func() { errs <- publish(url, name, body, k, window) }()
	}
	for range channels {
		if err := <-errs; err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// publish sends n messages to exchange on a connection and confirm-mode
// channel of its own, in windows of confirms.
func publish(url, exchange string, body []byte, n, window int) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	ctx := context.Background()
	for sent := 0; sent < n; {
		k := min(window, n-sent)
		confs := make([]*amqp.DeferredConfirmation, 0, k)
		for range k {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, "ledger.entry.deposit", true, false,
				amqp.Publishing{DeliveryMode: amqp.Persistent, ContentType: "application/cloudevents+json", Body: body})
			if err != nil {
				return err
			}
			confs = append(confs, dc)
		}
		for _, dc := range confs {
			ok, err := dc.WaitContext(ctx)
			if err != nil {
				return fmt.Errorf("wait for confirm: %w", err)
			}
			if !ok {
				return errors.New("the broker nacked a message")
			}
		}
		sent += k
	}
	return nil
}
