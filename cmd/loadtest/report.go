package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// invariant is one check of a scenario's result.
type invariant struct {
	Name   string // snake_case, the key in -json's invariants
	OK     bool
	Detail string // what was compared, for the text report
}

// check makes an invariant whose detail is formatted like fmt.Sprintf.
func check(name string, ok bool, format string, args ...any) invariant {
	return invariant{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)}
}

// detail is a scenario-specific measurement (the relay's drain time…).
type detail struct {
	Name  string
	Value any // a number or a string
}

// result is what a scenario hands to the report.
type result struct {
	Bound      bound
	Phase      *phase
	Invariants []invariant
	Details    []detail
}

// report is the outcome of a run; its JSON field names are stable.
type report struct {
	Scenario         string           `json:"scenario"`
	Settings         settings         `json:"settings"`
	Requests         int64            `json:"requests"`
	DurationSeconds  float64          `json:"duration_seconds"`
	RPS              float64          `json:"rps"`
	LatencyMS        latencyMS        `json:"latency_ms"`
	Outcomes         map[string]int64 `json:"outcomes"`
	Invariants       map[string]bool  `json:"invariants"`
	Details          map[string]any   `json:"details,omitempty"`
	ClientCPUSeconds float64          `json:"client_cpu_seconds"`
	ClientCores      int              `json:"client_cores"`
	OK               bool             `json:"ok"`
	// StartDelayMS is, in the open loop, how late after their due times
	// the requests were sent (every worker was busy, or the client fell
	// behind); absent in a closed loop.
	StartDelayMS *delayMS `json:"start_delay_ms,omitempty"`
	// Timeline is the throughput and p99 of each second of the load.
	Timeline []second `json:"timeline"`
	// RelayBacklog is the relay's outbox backlog sampled from /readyz
	// during the load; absent when the server showed none (relay off).
	RelayBacklog *backlogStats `json:"relay_backlog,omitempty"`

	checks  []invariant // Invariants in order, with their details
	details []detail
}

// settings echo the command line.
type settings struct {
	URL         string  `json:"url"`
	Concurrency int     `json:"concurrency"`
	Bound       string  `json:"bound"`
	Users       int     `json:"users,omitempty"`
	Rate        float64 `json:"rate,omitempty"` // -rate, requests per second; absent in a closed loop
	Idempotency bool    `json:"idempotency"`
	Auth        bool    `json:"auth"`
	TimeoutSecs float64 `json:"timeout_seconds"`
}

// latencyMS are the latency quantiles in milliseconds.
type latencyMS struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// delayMS are quantiles of the open loop's start delays in milliseconds.
type delayMS struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// newReport summarizes res. Besides the scenario's invariants, every run
// must have had no 5xx answer and no transport error.
func newReport(o options, res *result) report {
	p := res.Phase
	var fivexx, transport int64
	for k, v := range p.Outcomes {
		if strings.HasPrefix(k, "transport:") {
			transport += v
		} else if strings.HasPrefix(k, "5") {
			fivexx += v
		}
	}
	checks := append(slices.Clone(res.Invariants),
		check("no_5xx", fivexx == 0, "%d answers with status 5xx", fivexx),
		check("no_transport_errors", transport == 0, "%d requests without an HTTP answer", transport))
	r := report{
		Scenario: o.Scenario,
		Settings: settings{
			URL: strings.Join(o.URLs, ","), Concurrency: o.C, Bound: res.Bound.String(), Rate: p.Rate, Idempotency: o.Idempotency,
			Auth: o.Token != "", TimeoutSecs: o.Timeout.Seconds(),
		},
		Requests:        p.Requests,
		DurationSeconds: p.Elapsed.Seconds(),
		RPS:             float64(p.Requests) / max(p.Elapsed.Seconds(), 1e-9),
		LatencyMS: latencyMS{
			P50: ms(p.Latency.Quantile(0.5)), P90: ms(p.Latency.Quantile(0.9)), P99: ms(p.Latency.Quantile(0.99)),
			P999: ms(p.Latency.Quantile(0.999)), Max: ms(p.Latency.Max()), Mean: ms(p.Latency.Mean()),
		},
		Outcomes:         p.Outcomes,
		Invariants:       map[string]bool{},
		ClientCPUSeconds: p.CPU.Seconds(),
		ClientCores:      runtime.NumCPU(),
		OK:               true,
		Timeline:         p.Timeline,
		RelayBacklog:     p.Backlog,
		checks:           checks,
		details:          res.Details,
	}
	if r.Timeline == nil {
		r.Timeline = []second{}
	}
	if p.StartDelay != nil {
		r.StartDelayMS = &delayMS{P50: ms(p.StartDelay.Quantile(0.5)), P99: ms(p.StartDelay.Quantile(0.99)), Max: ms(p.StartDelay.Max())}
	}
	if o.Scenario != "hot" && o.Scenario != "hot-sustained" {
		r.Settings.Users = o.Users
	}
	for _, c := range checks {
		r.Invariants[c.Name] = c.OK
		r.OK = r.OK && c.OK
	}
	if len(res.Details) > 0 {
		r.Details = map[string]any{}
		for _, d := range res.Details {
			r.Details[d.Name] = d.Value
		}
	}
	return r
}

// writeJSONReport writes r as one JSON object on one line.
func writeJSONReport(w io.Writer, r report) error {
	return json.NewEncoder(w).Encode(r)
}

// writeTextReport writes r for a reader.
func writeTextReport(w io.Writer, r report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	s := r.Settings
	fmt.Fprintf(tw, "scenario\t%s\n", r.Scenario)
	fmt.Fprintf(tw, "target\t%s\n", s.URL)
	users := ""
	if s.Users > 0 {
		users = fmt.Sprintf(", users=%d", s.Users)
	}
	fmt.Fprintf(tw, "settings\tc=%d, %s%s, idempotency=%t, auth=%t, timeout=%gs\n",
		s.Concurrency, s.Bound, users, s.Idempotency, s.Auth, s.TimeoutSecs)
	if d := r.StartDelayMS; d != nil {
		fmt.Fprintf(tw, "loop\topen, %g req/s due (latency from each due time); sent late by p50 %s  p99 %s  max %s ms\n",
			s.Rate, fmtMS(d.P50), fmtMS(d.P99), fmtMS(d.Max))
	} else {
		fmt.Fprintf(tw, "loop\tclosed (each request sent when an earlier one is answered)\n")
	}
	fmt.Fprintf(tw, "duration\t%.3f s\n", r.DurationSeconds)
	fmt.Fprintf(tw, "requests\t%d (%.1f req/s)\n", r.Requests, r.RPS)
	for i, k := range slices.Sorted(maps.Keys(r.Outcomes)) {
		label := ""
		if i == 0 {
			label = "outcomes"
		}
		fmt.Fprintf(tw, "%s\t%-28s %d\n", label, k, r.Outcomes[k])
	}
	l := r.LatencyMS
	fmt.Fprintf(tw, "latency (ms)\tp50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.P999), fmtMS(l.Max))
	if line := timelineSummary(r.Timeline); line != "" {
		fmt.Fprintf(tw, "per second\t%s\n", line)
	}
	if b := r.RelayBacklog; b != nil {
		fmt.Fprintf(tw, "relay backlog\tat most %d pending, the oldest %.3f s old (%d samples of /readyz)\n", b.MaxPending, b.MaxOldestAgeSecs, b.Samples)
	}
	fmt.Fprintf(tw, "client CPU\t%.2f s user+sys = %.2f of %d cores over the run\n",
		r.ClientCPUSeconds, r.ClientCPUSeconds/max(r.DurationSeconds, 1e-9), r.ClientCores)
	for _, d := range r.details {
		fmt.Fprintf(tw, "%s\t%s\n", strings.ReplaceAll(d.Name, "_", " "), fmtValue(d.Value))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "invariants")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range r.checks {
		mark := "✓"
		if !c.OK {
			mark = "✗"
		}
		fmt.Fprintf(tw, "  %s %s\t%s\n", mark, c.Name, c.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "PASS"
	if !r.OK {
		verdict = "FAIL"
	}
	_, err := fmt.Fprintf(w, "result  %s\n", verdict)
	return err
}

func fmtMS(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

func fmtValue(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', 3, 64)
	}
	return fmt.Sprint(v)
}

// timelineSummary is the spread of the whole seconds' throughput: "req/s
// min 812, median 900, max 950 (whole seconds: 10)"; empty when no
// second was whole.
func timelineSummary(secs []second) string {
	var rates []float64
	for _, s := range secs {
		if s.Seconds == 1 {
			rates = append(rates, s.RPS)
		}
	}
	if len(rates) == 0 {
		return ""
	}
	slices.Sort(rates)
	return fmt.Sprintf("req/s min %.0f, median %.0f, max %.0f (whole seconds: %d)",
		rates[0], rates[len(rates)/2], rates[len(rates)-1], len(rates))
}
