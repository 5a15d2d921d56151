package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// pendingRow is one event of the log waiting to be published.
type pendingRow = LogEvent

// LogEvent is one event of the log.
type LogEvent struct {
	// ID is the event's position in the log.
	ID         int64
	EventID    string
	RoutingKey string
	Headers    map[string]any
	Body       []byte
	CreatedAt  time.Time
	// SourceID is set on a slim row: Headers and Body are built from it.
	SourceID uuid.NullUUID
}

const (
	eventLogColumns = `SELECT position, coalesce(event_id, source_id)::text, routing_key, coalesce(headers::text, '{}'), body::text, source_id, created_at
FROM event_log WHERE position > $2`
	eventLogAfter       = eventLogColumns + ` ORDER BY position LIMIT $1`
	eventLogAfterOfType = eventLogColumns + ` AND starts_with(routing_key, $3) ORDER BY position LIMIT $1`
)

// fetchPending reads up to limit events of the log after the position
// after, in position order. Positions become visible in increasing order
// (see Sequencer), so paging by position skips nothing.
func fetchPending(ctx context.Context, conn *pgx.Conn, limit int, after int64) ([]pendingRow, error) {
	return ReadLog(ctx, conn, after, limit, "")
}

// ReadLog reads up to limit events of the log after the position after,
// in position order, only those whose routing key starts with typePrefix
// when it is not empty. Slim events have no Headers and Body: Expand
// builds them.
func ReadLog(ctx context.Context, q Querier, after int64, limit int, typePrefix string) ([]LogEvent, error) {
	sql, args := eventLogAfter, []any{limit, after}
	if typePrefix != "" {
		sql, args = eventLogAfterOfType, append(args, typePrefix)
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("fetch pending events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pendingRow, error) {
		var (
			p       pendingRow
			headers string
			body    *string
		)
		if err := row.Scan(&p.ID, &p.EventID, &p.RoutingKey, &headers, &body, &p.SourceID, &p.CreatedAt); err != nil {
			return p, err
		}
		if p.SourceID.Valid {
			return p, nil
		}
		h, err := decodeHeaders(headers)
		if err != nil {
			return p, fmt.Errorf("outbox row %d: %w", p.ID, err)
		}
		p.Headers = h
		if body != nil {
			p.Body = []byte(*body)
		}
		return p, nil
	})
	if err != nil {
		return nil, fmt.Errorf("fetch pending events: %w", err)
	}
	return out, nil
}

// decodeHeaders turns the stored JSON headers into AMQP header values:
// integral numbers become int64, other values keep their JSON type.
func decodeHeaders(s string) (map[string]any, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("decode headers: %w", err)
	}
	out := make(map[string]any, len(raw))
	for k, v := range raw {
		var n json.Number
		if err := json.Unmarshal(v, &n); err == nil {
			if i, err := n.Int64(); err == nil {
				out[k] = i
				continue
			}
		}
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, fmt.Errorf("decode header %s: %w", k, err)
		}
		out[k] = x
	}
	return out, nil
}

const (
	relayOffsetRead  = `SELECT position FROM relay_offset`
	relayOffsetWrite = `UPDATE relay_offset SET position = $1 WHERE position < $1`
)

// readOffset returns the position up to which the broker confirmed every
// event.
func readOffset(ctx context.Context, conn *pgx.Conn) (int64, error) {
	var p int64
	if err := conn.QueryRow(ctx, relayOffsetRead).Scan(&p); err != nil {
		return 0, fmt.Errorf("read relay offset: %w", err)
	}
	return p, nil
}

// markPublished records that the broker confirmed every event up to
// position: one row's update, however many events.
func markPublished(ctx context.Context, conn *pgx.Conn, position int64) error {
	if _, err := conn.Exec(ctx, relayOffsetWrite, position); err != nil {
		return fmt.Errorf("mark events published: %w", err)
	}
	return nil
}

// outboxBacklog counts the events not yet confirmed: those still waiting
// for a position, and those of the log after the relay's offset; the
// oldest is the oldest of either.
const outboxBacklog = `WITH o AS (SELECT position FROM relay_offset),
unsequenced AS (SELECT count(*) AS n, min(created_at) AS oldest FROM outbox),
unpublished AS (SELECT coalesce(max(position), (SELECT position FROM o)) - (SELECT position FROM o) AS n,
    (SELECT created_at FROM event_log WHERE position = (SELECT position FROM o) + 1) AS oldest FROM event_log
    WHERE position > (SELECT position FROM o))
SELECT unsequenced.n + unpublished.n,
    coalesce(extract(epoch FROM now() - least(unsequenced.oldest, unpublished.oldest)), 0)::float8
FROM unsequenced, unpublished`

// Backlog is the state of the unpublished rows.
type Backlog struct {
	// Pending is the number of rows not yet confirmed by the broker.
	Pending int64 `json:"pending"`
	// OldestAgeSeconds is the age of the oldest pending row, 0 when none.
	OldestAgeSeconds float64 `json:"oldestPendingAgeSeconds"`
}

// Querier runs queries; *pgx.Conn, *pgxpool.Pool and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// SourceRef names a slim row's source and the event it announces.
type SourceRef struct {
	SourceID uuid.UUID
	EventID  uuid.UUID
}

// Expanded is the headers and body of a slim row, built from its source.
type Expanded struct {
	Headers map[string]any
	Body    []byte
}

// ExpandFunc builds the headers and bodies of slim rows from their
// sources, in the order of refs, reading through q.
type ExpandFunc func(ctx context.Context, q Querier, refs []SourceRef) ([]Expanded, error)

// Expand fills the headers and bodies of the slim events among rows.
func Expand(ctx context.Context, q Querier, fn ExpandFunc, rows []pendingRow) error {
	var (
		refs []SourceRef
		at   []int
	)
	for i, r := range rows {
		if r.SourceID.Valid {
			id, err := uuid.Parse(r.EventID)
			if err != nil {
				return fmt.Errorf("outbox row %d: event id: %w", r.ID, err)
			}
			refs = append(refs, SourceRef{SourceID: r.SourceID.UUID, EventID: id})
			at = append(at, i)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	if fn == nil {
		return errors.New("outbox rows without a body, and no ExpandFunc to build them")
	}
	out, err := fn(ctx, q, refs)
	if err != nil {
		return fmt.Errorf("build events: %w", err)
	}
	if len(out) != len(refs) {
		return fmt.Errorf("build events: %d of %d built", len(out), len(refs))
	}
	for k, i := range at {
		rows[i].Headers, rows[i].Body = out[k].Headers, out[k].Body
	}
	return nil
}

// ReadBacklog reports how many rows wait and how old the oldest is.
func ReadBacklog(ctx context.Context, q Querier) (Backlog, error) {
	var b Backlog
	if err := q.QueryRow(ctx, outboxBacklog).Scan(&b.Pending, &b.OldestAgeSeconds); err != nil {
		return Backlog{}, fmt.Errorf("read outbox backlog: %w", err)
	}
	return b, nil
}

// ClusterStatus is what the database tells of the relays: whether one holds
// the leader lock, and the backlog.
type ClusterStatus struct {
	LeaderPresent bool `json:"leaderPresent"`
	Backlog
}

// The advisory lock's key appears in pg_locks split in two 32-bit halves.
const relayLockHeld = `SELECT EXISTS (SELECT 1 FROM pg_locks
WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid::bigint = ($1::bigint >> 32) AND objid::bigint = ($1::bigint & 4294967295) AND objsubid = 1 AND granted)`

// ReadClusterStatus reports whether a relay leads and the backlog.
func ReadClusterStatus(ctx context.Context, q Querier) (ClusterStatus, error) {
	var st ClusterStatus
	if err := q.QueryRow(ctx, relayLockHeld, relayLockKey).Scan(&st.LeaderPresent); err != nil {
		return st, fmt.Errorf("read relay lock: %w", err)
	}
	b, err := ReadBacklog(ctx, q)
	st.Backlog = b
	return st, err
}
