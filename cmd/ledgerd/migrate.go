package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ledgerd/ledgerd/migrations"
)

// migrateCmd is `ledgerd migrate`; its subcommands read its settings.
type migrateCmd struct {
	databaseSettings

	Up       migrateUpCmd       `cmd:"" help:"Apply pending migrations."`
	Down     migrateDownCmd     `cmd:"" help:"Roll back the last N migrations."`
	Version  migrateVersionCmd  `cmd:"" help:"Print the schema version."`
	CreateDB migrateCreateDBCmd `cmd:"" name:"create-db" help:"Create the database named in DATABASE_URL if missing."`
}

// migrateUpCmd is `ledgerd migrate up`.
type migrateUpCmd struct{}

// Run applies the pending migrations and prints the schema version.
func (migrateUpCmd) Run(m *migrateCmd, s streams) error {
	return m.withMigrator(s.stdout, func(mg *migrations.Migrator) error { return mg.Up() })
}

// migrateDownCmd is `ledgerd migrate down N`.
type migrateDownCmd struct {
	Steps int `arg:"" name:"n" help:"how many migrations to roll back"`
}

// Validate is the kong hook that checks the arguments once parsed.
func (c *migrateDownCmd) Validate() error {
	if c.Steps <= 0 {
		return fmt.Errorf("the number of migrations to roll back must be positive, got %d", c.Steps)
	}
	return nil
}

// Run rolls back and prints the schema version.
func (c *migrateDownCmd) Run(m *migrateCmd, s streams) error {
	return m.withMigrator(s.stdout, func(mg *migrations.Migrator) error { return mg.Down(c.Steps) })
}

// migrateVersionCmd is `ledgerd migrate version`.
type migrateVersionCmd struct{}

// Run prints the schema version.
func (migrateVersionCmd) Run(m *migrateCmd, s streams) error {
	return m.withMigrator(s.stdout, func(*migrations.Migrator) error { return nil })
}

// migrateCreateDBCmd is `ledgerd migrate create-db`.
type migrateCreateDBCmd struct{}

// Run creates the database unless it exists.
func (migrateCreateDBCmd) Run(ctx context.Context, m *migrateCmd, s streams) error {
	created, err := migrations.CreateDatabase(ctx, m.DatabaseURL)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintln(s.stdout, "database created:", redactURL(m.DatabaseURL))
	} else {
		fmt.Fprintln(s.stdout, "database exists:", redactURL(m.DatabaseURL))
	}
	return nil
}

// withMigrator runs change on a migrator of the database, then prints the
// schema version.
func (m *migrateCmd) withMigrator(stdout io.Writer, change func(*migrations.Migrator) error) error {
	mg, err := migrations.New(m.DatabaseURL)
	if err != nil {
		return err
	}
	defer mg.Close()
	if err := change(mg); err != nil {
		return err
	}
	v, dirty, err := mg.Version()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema version %d%s\n", v, map[bool]string{true: " (dirty)"}[dirty])
	return nil
}
