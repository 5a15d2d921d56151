package migrations

import (
	"embed"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers the pgx5:// driver
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

//go:embed *.sql
var files embed.FS

// FS returns the embedded migration files.
func FS() embed.FS { return files }

// Latest returns the version of the newest embedded migration.
func Latest() uint {
	entries, _ := files.ReadDir(".") // embedded: cannot fail
	var latest uint
	for _, e := range entries {
		var v uint
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err == nil && v > latest {
			latest = v
		}
	}
	return latest
}

// Migrator applies the embedded migrations to one database.
type Migrator struct {
	m *migrate.Migrate
}

// New opens a Migrator for the PostgreSQL database at databaseURL (a
// postgres:// or postgresql:// URL). Close it when done.
func New(databaseURL string) (*Migrator, error) {
	src, err := iofs.New(files, ".")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	u, err := driverURL(databaseURL)
	if err != nil {
		return nil, err
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, u)
	if err != nil {
		return nil, fmt.Errorf("open migrate: %w", err)
	}
	return &Migrator{m: m}, nil
}

// Up applies every migration not yet applied. It is a no-op on an up-to-date
// database.
func (g *Migrator) Up() error {
	if err := g.m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// Down rolls back the last n applied migrations.
func (g *Migrator) Down(n int) error {
	if n <= 0 {
		return fmt.Errorf("migrate down: n must be positive, got %d", n)
	}
	if err := g.m.Steps(-n); err != nil {
		return fmt.Errorf("migrate down %d: %w", n, err)
	}
	return nil
}

// Version reports the current schema version and whether a failed
// migration left the schema dirty. Version 0 means nothing is applied.
func (g *Migrator) Version() (version uint, dirty bool, err error) {
	v, d, err := g.m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("migrate version: %w", err)
	}
	return v, d, nil
}

// Close releases the Migrator's database connection.
func (g *Migrator) Close() error {
	srcErr, dbErr := g.m.Close()
	return errors.Join(srcErr, dbErr)
}

// Up applies every pending migration to the database at databaseURL.
func Up(databaseURL string) error {
	g, err := New(databaseURL)
	if err != nil {
		return err
	}
	return errors.Join(g.Up(), g.Close())
}

// driverURL turns a postgres:// URL into the pgx5:// form that the
// golang-migrate pgx v5 driver registers.
func driverURL(databaseURL string) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", errors.New("parse database URL: invalid URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "postgres", "postgresql", "pgx5":
		u.Scheme = "pgx5"
	default:
		return "", fmt.Errorf("database URL: unsupported scheme %q (want postgres://)", u.Scheme)
	}
	return u.String(), nil
}
