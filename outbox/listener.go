package outbox

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Listener tells a process's readers of the event log that it grew: it
// LISTENs on FeedChannel on a dedicated connection and closes the channel
// that Changed handed out at each notification (and after each
// reconnection, when one may have been missed).
type Listener struct {
	url    string
	logger *slog.Logger

	mu sync.Mutex
	ch chan struct{}
}

// NewListener returns a Listener; Run starts it.
func NewListener(databaseURL string, logger *slog.Logger) *Listener {
	if logger == nil {
		logger = slog.Default()
	}
	return &Listener{url: databaseURL, logger: logger, ch: make(chan struct{})}
}

// Changed returns a channel that is closed at the next notification: take
// it before reading the log, then wait on it.
func (l *Listener) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ch
}

func (l *Listener) broadcast() {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.ch)
	l.ch = make(chan struct{})
}

// Run listens until ctx ends, reconnecting with capped backoff.
func (l *Listener) Run(ctx context.Context) {
	b := backoff{max: 5 * time.Second}
	for ctx.Err() == nil {
		err := l.session(ctx, &b)
		if ctx.Err() != nil {
			return
		}
		wait := b.next()
		l.logger.Warn("feed listener lost its database session; reconnecting", "err", err, "retry_in", wait.String())
		if !sleep(ctx, wait) {
			return
		}
	}
}

func (l *Listener) session(ctx context.Context, b *backoff) error {
	conn, err := connect(ctx, l.url, "ledgerd-feed-listener")
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn)
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = conn.Exec(lctx, "LISTEN "+FeedChannel)
	cancel()
	if err != nil {
		return err
	}
	b.reset()
	l.broadcast() // a notification may have been missed while down
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		l.broadcast()
	}
}
