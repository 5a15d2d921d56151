package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ledgerd/ledgerd/api"
	"github.com/ledgerd/ledgerd/signing"
)

// config is every setting of ledgerd. Each has an environment variable and
// a flag of the same meaning; the flag wins.
type config struct {
	DatabaseURL    string
	HTTPAddr       string
	LogLevel       string
	LogFormat      string
	DBMaxConns     int
	DBAcquireWait  time.Duration
	DBTxTimeout    time.Duration
	ShutdownWait   time.Duration
	UserQueueLimit int
	MaxBatch       int
	MaxInflight    int
	NoMigrate      bool

	Tokens               []api.Token
	RateLimitRPS         float64
	IdempotencyRetention time.Duration

	AuditEnabled  bool
	AuditInterval time.Duration

	// SigningKey is LEDGER_SIGNING_KEY: a file path or PEM text. It is a
	// secret: never a flag default, so never in the help.
	SigningKey         string
	CheckpointInterval time.Duration
	DebugAddr          string

	AMQPURL      string
	RelayEnabled bool
	Exchange     string
	RelayQueue   string
}

// Defaults of the contract.
const (
	defaultDatabaseURL = "postgres://postgres@localhost:5432/ledger?sslmode=disable"
	defaultHTTPAddr    = ":3000"
	defaultAMQPURL     = "amqp://guest:guest@localhost:5672/" //nolint:gosec // RabbitMQ's well-known local default, as the contract specifies
	defaultExchange    = "ledger.events"
	defaultRelayQueue  = "ledger.events.all"
)

// newFlagSet declares the flags of cfg on a FlagSet named name, with
// defaults taken from the environment.
func newFlagSet(name string, cfg *config, lookupEnv func(string) (string, bool), stderr io.Writer) (*flag.FlagSet, func() error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(key, def string) string {
		if v, _ := lookupEnv(key); v != "" {
			return v
		}
		return def
	}
	var errs []error
	envInt := func(key string, def int) int {
		s := env(key, strconv.Itoa(def))
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive integer, got %q", key, s))
			return def
		}
		return n
	}
	envBool := func(key string, def bool) bool {
		s := env(key, strconv.FormatBool(def))
		b, err := strconv.ParseBool(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s must be true or false, got %q", key, s))
			return def
		}
		return b
	}
	envDur := func(key string, def time.Duration) time.Duration {
		s := env(key, def.String())
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration such as 5s, got %q", key, s))
			return def
		}
		return d
	}
	fs.StringVar(&cfg.DatabaseURL, "database-url", env("DATABASE_URL", defaultDatabaseURL), "PostgreSQL URL (DATABASE_URL)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", env("HTTP_ADDR", defaultHTTPAddr), "HTTP listen address (HTTP_ADDR)")
	fs.StringVar(&cfg.LogLevel, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (LOG_LEVEL)")
	fs.StringVar(&cfg.LogFormat, "log-format", env("LOG_FORMAT", "text"), "text or json (LOG_FORMAT)")
	fs.IntVar(&cfg.DBMaxConns, "db-max-conns", envInt("DB_MAX_CONNS", 20), "most database connections in the pool (DB_MAX_CONNS)")
	fs.DurationVar(&cfg.DBAcquireWait, "db-acquire-timeout", envDur("DB_ACQUIRE_TIMEOUT", 5*time.Second), "longest wait for a pooled connection before answering 503 (DB_ACQUIRE_TIMEOUT)")
	fs.DurationVar(&cfg.DBTxTimeout, "db-tx-timeout", envDur("DB_TX_TIMEOUT", 10*time.Second), "longest database transaction or read (DB_TX_TIMEOUT)")
	fs.IntVar(&cfg.UserQueueLimit, "user-queue-limit", envInt("USER_QUEUE_LIMIT", 4096), "most changes of one user waiting in this process before 429 (USER_QUEUE_LIMIT)")
	fs.IntVar(&cfg.MaxBatch, "max-batch", envInt("MAX_BATCH", 512), "most write requests per transaction; 1 turns group commit off (MAX_BATCH)")
	fs.IntVar(&cfg.MaxInflight, "max-inflight", envInt("MAX_INFLIGHT", 4), "most write transactions in flight at once (MAX_INFLIGHT)")
	fs.DurationVar(&cfg.ShutdownWait, "shutdown-timeout", envDur("SHUTDOWN_TIMEOUT", 20*time.Second), "longest wait for in-flight requests at shutdown (SHUTDOWN_TIMEOUT)")
	fs.StringVar(&cfg.AMQPURL, "amqp-url", env("AMQP_URL", defaultAMQPURL), "RabbitMQ URL (AMQP_URL)")
	fs.BoolVar(&cfg.RelayEnabled, "relay-enabled", envBool("RELAY_ENABLED", true), "run the event relay inside serve (RELAY_ENABLED)")
	fs.StringVar(&cfg.Exchange, "amqp-exchange", env("AMQP_EXCHANGE", defaultExchange), "topic exchange of the events (AMQP_EXCHANGE)")
	queue, set := lookupEnv("RELAY_QUEUE")
	if !set {
		queue = defaultRelayQueue
	}
	fs.StringVar(&cfg.RelayQueue, "relay-queue", queue, "durable queue bound to the exchange with #; empty declares none (RELAY_QUEUE)")
	rps, err := strconv.ParseFloat(env("RATE_LIMIT_RPS", "0"), 64)
	if err != nil || rps < 0 {
		errs = append(errs, fmt.Errorf("RATE_LIMIT_RPS must be a number ≥ 0, got %q", env("RATE_LIMIT_RPS", "0")))
		rps = 0
	}
	fs.Float64Var(&cfg.RateLimitRPS, "rate-limit-rps", rps, "requests per second per client on /api, 0 = off (RATE_LIMIT_RPS)")
	fs.DurationVar(&cfg.IdempotencyRetention, "idempotency-retention", envDur("IDEMPOTENCY_RETENTION", 24*time.Hour), "how long idempotency keys are kept, at least 24h (IDEMPOTENCY_RETENTION)")
	tokens, err := api.ParseTokens(env("LEDGER_API_TOKENS", ""))
	if err != nil {
		errs = append(errs, err)
	}
	cfg.Tokens = tokens
	fs.BoolVar(&cfg.AuditEnabled, "audit-enabled", envBool("AUDIT_ENABLED", true), "run the continuous auditor (AUDIT_ENABLED)")
	fs.DurationVar(&cfg.AuditInterval, "audit-interval", envDur("AUDIT_INTERVAL", 30*time.Second), "pause between the auditor's passes (AUDIT_INTERVAL)")
	fs.StringVar(&cfg.SigningKey, "signing-key", "", "Ed25519 private key (PKCS#8 PEM) that signs statements and checkpoints: a file path or the PEM text; unsigned when empty (LEDGER_SIGNING_KEY)")
	fs.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", envDur("CHECKPOINT_INTERVAL", time.Hour), "how often a signed Merkle checkpoint of every chain head is made (CHECKPOINT_INTERVAL)")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", env("DEBUG_ADDR", ""), "address of the pprof debug listener, off when empty; keep it private, e.g. 127.0.0.1:6060 (DEBUG_ADDR)")
	check := func() error {
		if cfg.SigningKey == "" {
			cfg.SigningKey, _ = lookupEnv("LEDGER_SIGNING_KEY")
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: %w", errUsage, errs[0])
		}
		if cfg.DBMaxConns <= 0 || cfg.UserQueueLimit <= 0 || cfg.MaxBatch <= 0 || cfg.MaxInflight <= 0 {
			return fmt.Errorf("%w: --db-max-conns, --user-queue-limit, --max-batch and --max-inflight must be positive", errUsage)
		}
		if _, err := parseLevel(cfg.LogLevel); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		if cfg.RateLimitRPS < 0 {
			return fmt.Errorf("%w: --rate-limit-rps must be ≥ 0", errUsage)
		}
		if cfg.IdempotencyRetention < 24*time.Hour {
			return fmt.Errorf("%w: IDEMPOTENCY_RETENTION must be at least 24h (the contract keeps keys that long)", errUsage)
		}
		if cfg.Exchange == "" {
			return fmt.Errorf("%w: AMQP_EXCHANGE must not be empty", errUsage)
		}
		if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
			return fmt.Errorf("%w: LOG_FORMAT must be text or json, got %q", errUsage, cfg.LogFormat)
		}
		return nil
	}
	return fs, check
}

// newBareFlagSet is a FlagSet for a subcommand with no configuration.
func newBareFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("LOG_LEVEL must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// redactURL hides the password of a URL for logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}

// loadSigner reads LEDGER_SIGNING_KEY; without one, statements and
// checkpoints are unsigned, and the server says so once.
func loadSigner(cfg config, logger *slog.Logger) (*signing.Signer, error) {
	if cfg.SigningKey == "" {
		logger.Warn("signing is off: LEDGER_SIGNING_KEY is not set, statements and checkpoints are unsigned (ledgerd keygen makes a key)")
		return nil, nil
	}
	s, err := signing.LoadSigner(cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("%w: LEDGER_SIGNING_KEY: %w", errUsage, err)
	}
	logger.Info("signing statements and checkpoints", "key_id", s.KeyID())
	return s, nil
}
