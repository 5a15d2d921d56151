package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/ledgerd/ledgerd/api"
	"github.com/ledgerd/ledgerd/outbox"
	"github.com/ledgerd/ledgerd/signing"
)

// Every setting has a flag and an environment variable (tag envvar); the
// variable gives the default, the flag wins. Settings come in groups; a
// subcommand embeds the groups it reads. The help shows each setting's
// variable and built-in default, never the value the environment gives.

// settingGroups are the headings of the help.
var settingGroups = []kong.Group{
	{Key: "database", Title: "Database:"},
	{Key: "http", Title: "HTTP:"},
	{Key: "log", Title: "Logs:"},
	{Key: "writes", Title: "Writes:"},
	{Key: "api", Title: "API:"},
	{Key: "audit", Title: "Audit and signing:"},
	{Key: "events", Title: "Events (RabbitMQ):"},
}

// databaseSettings name the database.
type databaseSettings struct {
	DatabaseURL string `name:"database-url" envvar:"DATABASE_URL" default:"postgres://postgres@localhost:5432/ledger?sslmode=disable" placeholder:"URL" group:"database" help:"PostgreSQL URL"`
}

// poolSettings are those of a connection pool on the database.
type poolSettings struct {
	databaseSettings
	DBMaxConns int `name:"db-max-conns" envvar:"DB_MAX_CONNS" default:"20" placeholder:"N" group:"database" help:"most database connections in the pool"`
}

func (s poolSettings) validate() error {
	return positive("db-max-conns", "DB_MAX_CONNS", s.DBMaxConns)
}

// httpSettings are those of the listener.
type httpSettings struct {
	HTTPAddr string `name:"http-addr" envvar:"HTTP_ADDR" default:":3000" placeholder:"ADDR" group:"http" help:"HTTP listen address"`
}

// logSettings are those of the logs.
type logSettings struct {
	LogLevel  string `name:"log-level" envvar:"LOG_LEVEL" default:"info" placeholder:"LEVEL" group:"log" help:"debug, info, warn or error"`
	LogFormat string `name:"log-format" envvar:"LOG_FORMAT" default:"text" placeholder:"FORMAT" group:"log" help:"text or json"`
}

func (s logSettings) validate() error {
	if _, err := parseLevel(s.LogLevel); err != nil {
		return err
	}
	if s.LogFormat != "text" && s.LogFormat != "json" {
		return fmt.Errorf("LOG_FORMAT (--log-format) must be text or json, got %q", s.LogFormat)
	}
	return nil
}

// signingSettings name the key that signs statements and checkpoints.
type signingSettings struct {
	// SigningKey is LEDGER_SIGNING_KEY: a file path or PEM text. It is a
	// secret: the help never shows it.
	SigningKey string `name:"signing-key" envvar:"LEDGER_SIGNING_KEY" secret:"" placeholder:"KEY" group:"audit" help:"Ed25519 private key (PKCS#8 PEM) that signs statements and checkpoints: a file path or the PEM text; unsigned when empty"`
}

// amqpSettings are those of the event relay's broker.
type amqpSettings struct {
	AMQPURL    string `name:"amqp-url" envvar:"AMQP_URL" default:"amqp://guest:guest@localhost:5672/" placeholder:"URL" group:"events" help:"RabbitMQ URL"`
	Exchange   string `name:"amqp-exchange" envvar:"AMQP_EXCHANGE" default:"ledger.events" placeholder:"NAME" group:"events" help:"topic exchange of the events"`
	RelayQueue string `name:"relay-queue" envvar:"RELAY_QUEUE" emptyenv:"" default:"ledger.events.all" placeholder:"NAME" group:"events" help:"durable queue bound to the exchange with #; empty declares none"`
	QueueType  string `name:"relay-queue-type" envvar:"RELAY_QUEUE_TYPE" default:"classic" enum:"classic,quorum" placeholder:"TYPE" group:"events" help:"type of RELAY_QUEUE: classic, or quorum (replicated over a RabbitMQ cluster); an existing queue keeps its type"`
	Partitions int    `name:"relay-partitions" envvar:"RELAY_PARTITIONS" default:"1" placeholder:"N" group:"events" help:"partitions the events are split into by user (1..256), each published by one relay at a time; every relay of a database needs the same"`
}

func (s amqpSettings) validate() error {
	if s.Exchange == "" {
		return fmt.Errorf("AMQP_EXCHANGE (--amqp-exchange) must not be empty")
	}
	if s.Partitions < 1 || s.Partitions > outbox.MaxPartitions {
		return fmt.Errorf("RELAY_PARTITIONS (--relay-partitions) must be 1..%d, got %d", outbox.MaxPartitions, s.Partitions)
	}
	return nil
}

// config is every setting of `ledgerd serve`.
type config struct {
	poolSettings
	DBAcquireWait time.Duration `name:"db-acquire-timeout" envvar:"DB_ACQUIRE_TIMEOUT" default:"5s" placeholder:"DURATION" group:"database" help:"longest wait for a pooled connection before answering 503"`
	DBTxTimeout   time.Duration `name:"db-tx-timeout" envvar:"DB_TX_TIMEOUT" default:"10s" placeholder:"DURATION" group:"database" help:"longest database transaction or read"`
	NoMigrate     bool          `name:"no-migrate" group:"database" help:"do not apply migrations at start"`
	ReadURL       string        `name:"database-read-url" envvar:"DATABASE_READ_URL" placeholder:"URL" group:"database" help:"PostgreSQL URL of a read replica (a streaming standby) for history, statements, checkpoints, the event feed and verify; off when empty"`
	ReadMaxLag    time.Duration `name:"read-max-lag" envvar:"READ_MAX_LAG" default:"10s" placeholder:"DURATION" group:"database" help:"how far behind the read replica may be; further behind, or down, reads go to the primary"`

	httpSettings
	ShutdownWait time.Duration `name:"shutdown-timeout" envvar:"SHUTDOWN_TIMEOUT" default:"20s" placeholder:"DURATION" group:"http" help:"longest wait for in-flight requests at shutdown"`
	DebugAddr    string        `name:"debug-addr" envvar:"DEBUG_ADDR" placeholder:"ADDR" group:"http" help:"address of the pprof debug listener, off when empty; keep it private, e.g. 127.0.0.1:6060"`

	logSettings

	UserQueueLimit int `name:"user-queue-limit" envvar:"USER_QUEUE_LIMIT" default:"4096" placeholder:"N" group:"writes" help:"most changes of one user waiting in this process before 429"`
	MaxBatch       int `name:"max-batch" envvar:"MAX_BATCH" default:"512" placeholder:"N" group:"writes" help:"most write requests per transaction; 1 turns group commit off"`
	MaxInflight    int `name:"max-inflight" envvar:"MAX_INFLIGHT" default:"4" placeholder:"N" group:"writes" help:"most write transactions in flight at once"`

	Tokens               tokenList     `name:"api-tokens" envvar:"LEDGER_API_TOKENS" secret:"" placeholder:"ROLE:HASH,..." group:"api" help:"bearer tokens for /api: comma-separated role:sha256hex pairs, role writer or auditor (ledgerd token makes one); auth is off when empty"`
	RateLimitRPS         float64       `name:"rate-limit-rps" envvar:"RATE_LIMIT_RPS" default:"0" placeholder:"N" group:"api" help:"requests per second per client on /api, 0 = off"`
	IdempotencyRetention time.Duration `name:"idempotency-retention" envvar:"IDEMPOTENCY_RETENTION" default:"24h" placeholder:"DURATION" group:"api" help:"how long idempotency keys are kept, at least 24h"`

	AuditEnabled  bool          `name:"audit-enabled" envvar:"AUDIT_ENABLED" default:"true" negatable:"" group:"audit" help:"run the continuous auditor"`
	AuditInterval time.Duration `name:"audit-interval" envvar:"AUDIT_INTERVAL" default:"30s" placeholder:"DURATION" group:"audit" help:"pause between the auditor's passes"`
	signingSettings
	CheckpointInterval time.Duration `name:"checkpoint-interval" envvar:"CHECKPOINT_INTERVAL" default:"1h" placeholder:"DURATION" group:"audit" help:"how often a signed Merkle checkpoint of every chain head is made"`

	RelayEnabled bool `name:"relay-enabled" envvar:"RELAY_ENABLED" default:"true" negatable:"" group:"events" help:"run the event relay inside serve"`
	amqpSettings
}

// Validate is the kong hook that checks the settings once parsed.
func (c *config) Validate() error {
	if c.RateLimitRPS < 0 {
		return fmt.Errorf("RATE_LIMIT_RPS (--rate-limit-rps) must be ≥ 0, got %v", c.RateLimitRPS)
	}
	if c.IdempotencyRetention < 24*time.Hour {
		return fmt.Errorf("IDEMPOTENCY_RETENTION (--idempotency-retention) must be at least 24h (the contract keeps keys that long), got %s", c.IdempotencyRetention)
	}
	return firstError(
		c.poolSettings.validate(),
		positive("db-acquire-timeout", "DB_ACQUIRE_TIMEOUT", c.DBAcquireWait),
		positive("db-tx-timeout", "DB_TX_TIMEOUT", c.DBTxTimeout),
		positive("read-max-lag", "READ_MAX_LAG", c.ReadMaxLag),
		positive("shutdown-timeout", "SHUTDOWN_TIMEOUT", c.ShutdownWait),
		c.logSettings.validate(),
		positive("user-queue-limit", "USER_QUEUE_LIMIT", c.UserQueueLimit),
		positive("max-batch", "MAX_BATCH", c.MaxBatch),
		positive("max-inflight", "MAX_INFLIGHT", c.MaxInflight),
		positive("audit-interval", "AUDIT_INTERVAL", c.AuditInterval),
		positive("checkpoint-interval", "CHECKPOINT_INTERVAL", c.CheckpointInterval),
		c.amqpSettings.validate(),
	)
}

// positive says that a count or a duration must be above zero.
func positive[T int | time.Duration](flag, env string, v T) error {
	if v <= 0 {
		return fmt.Errorf("%s (--%s) must be positive, got %v", env, flag, v)
	}
	return nil
}

// firstError returns the first error of errs that is not nil.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// tokenList is LEDGER_API_TOKENS parsed: a flag value that kong decodes.
type tokenList []api.Token

// Decode parses role:sha256hex pairs; its errors never echo the value.
func (t *tokenList) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("tokens", &s); err != nil {
		return err
	}
	tokens, err := api.ParseTokens(s)
	if err != nil {
		// The flag's and the variable's name come with the error already.
		return errors.New(strings.TrimPrefix(err.Error(), "LEDGER_API_TOKENS "))
	}
	*t = tokens
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("LOG_LEVEL (--log-level) must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

func newLogger(s logSettings, w io.Writer) *slog.Logger {
	level, _ := parseLevel(s.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if s.LogFormat == "json" {
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
func loadSigner(s signingSettings, logger *slog.Logger) (*signing.Signer, error) {
	if s.SigningKey == "" {
		logger.Warn("signing is off: LEDGER_SIGNING_KEY is not set, statements and checkpoints are unsigned (ledgerd keygen makes a key)")
		return nil, nil
	}
	signer, err := signing.LoadSigner(s.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("%w: LEDGER_SIGNING_KEY: %w", errUsage, err)
	}
	logger.Info("signing statements and checkpoints", "key_id", signer.KeyID())
	return signer, nil
}
