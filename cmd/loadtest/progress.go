package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progressEvery is how often the progress bar is redrawn.
const progressEvery = 200 * time.Millisecond

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// startProgress draws a progress bar of m on stderr about five times a
// second, when e.progress is set, until the returned function is called;
// that function erases the bar.
func (e *env) startProgress(m *meter, b bound, start time.Time) (stop func()) {
	if !e.progress {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(e.stderr, "\r\033[K")
				return
			case <-t.C:
				fmt.Fprint(e.stderr, "\r\033[K"+progressLine(m, b, time.Since(start)))
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// progressLine is one state of the bar: how far, the rate, the errors.
func progressLine(m *meter, b bound, elapsed time.Duration) string {
	done := m.done.Load()
	frac, where := 0.0, ""
	if b.n > 0 {
		frac = float64(done) / float64(b.n)
		where = fmt.Sprintf("%d/%d", done, b.n)
	}
	if b.d > 0 {
		if f := elapsed.Seconds() / b.d.Seconds(); f > frac || b.n == 0 {
			frac = f
		}
		where += fmt.Sprintf(" %.1fs/%s", elapsed.Seconds(), b.d)
	}
	frac = min(max(frac, 0), 1)
	const width = 30
	filled := int(frac * width)
	rate := float64(done) / max(elapsed.Seconds(), 1e-9)
	return fmt.Sprintf("[%s%s] %s %3.0f%%  %.0f req/s  refused %d  errors %d",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		strings.TrimSpace(where), frac*100, rate, m.refused.Load(), m.failed.Load())
}
