package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// runHealthcheck asks the local server's /healthz, for container health
// checks in images without a shell or curl.
func runHealthcheck(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) error {
	var cfg config
	fs, _ := newFlagSet("healthcheck", &cfg, lookupEnv, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, port, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("%w: HTTP_ADDR %q has no port", errUsage, cfg.HTTPAddr)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+port+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: status %d", resp.StatusCode)
	}
	return nil
}
