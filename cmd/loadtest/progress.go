package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// progressEvery is how often the progress bar is redrawn.
const progressEvery = 200 * time.Millisecond

// defaultWidth is the width assumed for a terminal that does not tell its
// own.
const defaultWidth = 80

// terminalWidthFunc returns a function that reads the current width of
// the terminal w writes to (it may change while the run goes on), or nil
// when w is not a terminal. golang.org/x/term asks the terminal itself
// (TIOCGWINSZ), which $COLUMNS does not reliably tell a child process; it
// is the Go team's own package for it.
func terminalWidthFunc(w io.Writer) func() int {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	fd := int(f.Fd()) //nolint:gosec // a file descriptor fits an int
	if !term.IsTerminal(fd) {
		return nil
	}
	return func() int {
		if w, _, err := term.GetSize(fd); err == nil && w > 0 {
			return w
		}
		return defaultWidth
	}
}

// fitWidth cuts s to at most width columns, ending it with "…" when it
// was cut. Every character the load tool prints takes one column.
func fitWidth(s string, width int) string {
	if width <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	return string(r[:width-1]) + "…"
}

// drawProgress replaces the progress line with line, cut to the
// terminal's width less one column (so the cursor never wraps); it does
// nothing when stderr is not a terminal.
func (e *env) drawProgress(line string) {
	if !e.progress() {
		return
	}
	fmt.Fprint(e.stderr, "\r\033[K"+fitWidth(line, e.widthFunc()-1))
}

// clearProgress erases the progress line.
func (e *env) clearProgress() {
	if e.progress() {
		fmt.Fprint(e.stderr, "\r\033[K")
	}
}

// startProgress draws a progress bar of m on stderr about five times a
// second, when stderr is a terminal, until the returned function is
// called; that function erases the bar. When stderr is not a terminal
// (a log file, a pipe), nothing is drawn: the report tells the outcome.
func (e *env) startProgress(m *meter, b bound, start time.Time) (stop func()) {
	if !e.progress() {
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
				e.clearProgress()
				return
			case <-t.C:
				e.drawProgress(progressLine(m, b, float64(e.opts.Rate), time.Since(start), e.widthFunc()-1))
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// progressBarWidth is the widest the bar gets; it shrinks, then goes, on a
// narrow terminal so that the figures stay in view.
const progressBarWidth = 30

// progressLine is one state of the bar in at most width columns: how far,
// the rate (and the open loop's target), the refusals and the errors.
func progressLine(m *meter, b bound, rate float64, elapsed time.Duration, width int) string {
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
	target := ""
	if rate > 0 {
		target = fmt.Sprintf(" of %.0f/s", rate)
	}
	figures := fmt.Sprintf("%s %3.0f%%  %.0f req/s%s  refused %d  errors %d",
		strings.TrimSpace(where), frac*100, float64(done)/max(elapsed.Seconds(), 1e-9), target, m.refused.Load(), m.failed.Load())
	if bar := min(progressBarWidth, width-utf8.RuneCountInString(figures)-3); bar >= 5 {
		filled := int(frac * float64(bar))
		figures = "[" + strings.Repeat("#", filled) + strings.Repeat(".", bar-filled) + "] " + figures
	}
	return fitWidth(figures, width)
}
