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

// eventLogPartitionAfter reads partition $4 of $3 (user_id mod $3 = $4)
// after position $2 and up to $5.
const eventLogPartitionAfter = eventLogColumns + ` AND position <= $5 AND user_id % $3 = $4 ORDER BY position LIMIT $1`

// lastPosition is the log's last position (0 when empty).
const lastPosition = `SELECT coalesce(max(position), 0) FROM event_log`

// fetchPending reads up to limit events of partition part after the
// position after, in position order, and the position up to which it
// looked: every event of the partition up to upTo is among rows or at or
// before after; more is true when the log goes on past upTo. Positions
// become visible in increasing order (see Sequencer), so paging by
// position skips nothing. With one partition it reads the log as it is.
// With N it looks at most 2·limit·N positions ahead (about 2·limit of its
// own), so that a fetch costs the same however long the backlog, and a
// partition without events moves past the others' a range at a time
// instead of scanning them again.
func fetchPending(ctx context.Context, conn *pgx.Conn, limit int, after int64, part Partition) (rows []pendingRow, upTo int64, more bool, err error) {
	if part.Of == 1 {
		rows, err = ReadLog(ctx, conn, after, limit, "")
		upTo = after
		if len(rows) > 0 {
			upTo = rows[len(rows)-1].ID
		}
		return rows, upTo, len(rows) == limit, err
	}
	var last int64
	if err := conn.QueryRow(ctx, lastPosition).Scan(&last); err != nil {
		return nil, 0, false, fmt.Errorf("read the log's end: %w", err)
	}
	if last <= after {
		return nil, after, false, nil
	}
	upTo = min(last, after+int64(2*limit*part.Of))
	rows, err = readLog(ctx, conn, eventLogPartitionAfter, limit, after, part.Of, part.Index, upTo)
	if len(rows) == limit {
		upTo = rows[len(rows)-1].ID
	}
	return rows, upTo, upTo < last, err
}

// ReadLog reads up to limit events of the log after the position after,
// in position order, only those whose routing key starts with typePrefix
// when it is not empty. Slim events have no Headers and Body: Expand
// builds them.
func ReadLog(ctx context.Context, q Querier, after int64, limit int, typePrefix string) ([]LogEvent, error) {
	if typePrefix != "" {
		return readLog(ctx, q, eventLogAfterOfType, limit, after, typePrefix)
	}
	return readLog(ctx, q, eventLogAfter, limit, after)
}

// readLog runs sql, one of the eventLog queries, with args.
func readLog(ctx context.Context, q Querier, sql string, args ...any) ([]LogEvent, error) {
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
	// relayPartitionCount is the partition count the offsets are
	// recorded for (every row has the same).
	relayPartitionCount  = `SELECT partitions FROM relay_partitions LIMIT 1`
	partitionOffsetRead  = `SELECT partitions, position FROM relay_partitions WHERE partition = $1`
	partitionOffsetWrite = `UPDATE relay_partitions SET position = $1 WHERE partition = $2 AND partitions = $3 AND position < $1`
	// repartitionOffsets replaces every partition's offset with $1 new
	// ones, all at the smallest old one: nothing is skipped, and what
	// some old partitions had confirmed already is published again.
	repartitionOffsets = `WITH old AS (DELETE FROM relay_partitions RETURNING position)
INSERT INTO relay_partitions (partition, partitions, position)
SELECT p, $1::int, (SELECT coalesce(min(position), 0) FROM old) FROM generate_series(0, $1::int - 1) AS p`
)

// errOtherPartitions is returned by readOffset when the offsets were
// recorded for another number of partitions.
type errOtherPartitions struct{ recorded int }

func (e errOtherPartitions) Error() string {
	return fmt.Sprintf("the relay offsets are recorded for %d partitions", e.recorded)
}

// readOffset returns the position up to which the broker confirmed every
// event of part, or errOtherPartitions when the offsets are recorded for
// another count.
func readOffset(ctx context.Context, conn *pgx.Conn, part Partition) (int64, error) {
	var (
		n int
		p int64
	)
	err := conn.QueryRow(ctx, partitionOffsetRead, part.Index).Scan(&n, &p)
	if errors.Is(err, pgx.ErrNoRows) {
		if err := conn.QueryRow(ctx, relayPartitionCount).Scan(&n); err != nil {
			return 0, fmt.Errorf("read relay partitions: %w", err)
		}
	} else if err != nil {
		return 0, fmt.Errorf("read relay offset: %w", err)
	}
	if n != part.Of {
		return 0, errOtherPartitions{recorded: n}
	}
	return p, nil
}

// repartition replaces the offsets recorded for from partitions with to
// new ones, on conn, which holds partition 0's lock. It first takes the
// lock of every other partition of either count, released when it
// returns: when one is held elsewhere a relay still leads, and it returns
// false having changed nothing.
func repartition(ctx context.Context, conn *pgx.Conn, from, to int) (bool, error) {
	var held []int64
	defer func() {
		for _, k := range held {
			_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, k)
		}
	}()
	for i := 1; i < max(from, to); i++ {
		var locked bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, partitionLockKey(i)).Scan(&locked); err != nil {
			return false, fmt.Errorf("try relay lock: %w", err)
		}
		if !locked {
			return false, nil
		}
		held = append(held, partitionLockKey(i))
	}
	if _, err := conn.Exec(ctx, repartitionOffsets, to); err != nil {
		return false, fmt.Errorf("repartition relay offsets: %w", err)
	}
	return true, nil
}

// markPublished records that the broker confirmed every event of part up
// to position: one row's update, however many events.
func markPublished(ctx context.Context, conn *pgx.Conn, part Partition, position int64) error {
	if _, err := conn.Exec(ctx, partitionOffsetWrite, position, part.Index, part.Of); err != nil {
		return fmt.Errorf("mark events published: %w", err)
	}
	return nil
}

// outboxBacklog counts the events not yet confirmed: those still waiting
// for a position, and those of the log after their partition's offset; the
// oldest is the oldest of either. It reads every unconfirmed event of the
// log once.
const outboxBacklog = `WITH o AS (SELECT partition, partitions, position FROM relay_partitions),
unsequenced AS (SELECT count(*) AS n, min(created_at) AS oldest FROM outbox),
unpublished AS (SELECT count(*) AS n, min(l.created_at) AS oldest
    FROM event_log l JOIN o ON o.partition = l.user_id % o.partitions
    WHERE l.position > (SELECT coalesce(min(position), 0) FROM o) AND l.position > o.position)
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

// ClusterStatus is what the database tells of the relays: how many
// partitions there are, how many of them a relay leads, and the backlog.
type ClusterStatus struct {
	// LeaderPresent is true when every partition has a leader.
	LeaderPresent bool `json:"leaderPresent"`
	Partitions    int  `json:"partitions"`
	Led           int  `json:"led"`
	Backlog
}

// partitionLocksHeld selects, from pg_locks as l, the granted locks of the
// partitions ($2 of them, their keys after $1 as partitionLockKey makes
// them) in the current database; a bigint key appears split in two 32-bit
// halves.
const partitionLocksHeld = `l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.objsubid = 1 AND l.granted
  AND (l.classid::bigint << 32 | l.objid::bigint) IN (SELECT $1::bigint + (p::bigint << 8) FROM generate_series(0, $2::int - 1) AS p)`

// relayLocksHeld counts the partitions whose advisory lock is held.
const relayLocksHeld = `SELECT count(*) FROM pg_locks l WHERE ` + partitionLocksHeld

// ReadClusterStatus reports how many partitions are led and the backlog.
func ReadClusterStatus(ctx context.Context, q Querier) (ClusterStatus, error) {
	var st ClusterStatus
	if err := q.QueryRow(ctx, relayPartitionCount).Scan(&st.Partitions); err != nil {
		return st, fmt.Errorf("read relay partitions: %w", err)
	}
	if err := q.QueryRow(ctx, relayLocksHeld, relayLockKey, st.Partitions).Scan(&st.Led); err != nil {
		return st, fmt.Errorf("read relay locks: %w", err)
	}
	st.LeaderPresent = st.Led == st.Partitions
	b, err := ReadBacklog(ctx, q)
	st.Backlog = b
	return st, err
}
