package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// MaxPartitions is the most relay partitions (RELAY_PARTITIONS).
const MaxPartitions = 256

// Partition is one of the relay's partitions: the events of the users
// whose id mod Of is Index, published in position order by one relay at a
// time from their own offset.
type Partition struct {
	Index int
	Of    int
}

// lockKey is the partition's advisory lock: partition 0 keeps the key the
// single relay always had, the others follow it 256 apart.
func (p Partition) lockKey() int64 { return partitionLockKey(p.Index) }

func partitionLockKey(i int) int64 { return relayLockKey + int64(i)<<8 }

// memberLockClass is the first half of the two-int advisory lock each relay
// process holds while it runs, the second half its instance number: the
// granted locks of this class list the relay processes, among which the
// partitions are shared.
const memberLockClass int32 = 0x6c64524d // "ldRM"

// share is what one process knows of how the partitions are shared: the
// partitions it leads, the relay processes running and how many partitions
// each leads. A process takes a free partition while it leads fewer than
// its fair share (⌈N/M⌉ of N partitions among M processes), and gives one
// up when it leads more than that, or the most of all while another leads
// fewer than ⌊N/M⌋: leadership spreads over the processes, and a
// partition whose leader dies is taken within a few LockRetry.
type share struct {
	instance   int64
	partitions int

	mu  sync.Mutex
	led map[int]bool
	// view is the last membership read; nil when unknown (the process
	// then takes any free partition, so that none stays without a leader).
	view *membership
	// freeFor counts, per partition, the views in a row that showed it
	// without a leader: past freeLimit any process takes it, whatever its
	// share, so that views that disagree cannot leave a partition unled.
	freeFor map[int]int
}

// freeLimit is how many membership views in a row may show a partition
// without a leader before any process takes it.
const freeLimit = 3

// membership is the relay processes (instance numbers) and how many
// partitions each leads.
type membership struct {
	members []int64
	leads   map[int64]int
	led     map[int]bool
}

func newShare(partitions int) *share {
	return &share{
		instance:   rand.Int64N(1<<31-1) + 1, //nolint:gosec // an instance number, not a secret
		partitions: partitions,
		led:        make(map[int]bool),
		freeFor:    make(map[int]int),
	}
}

// connName is the application name of this process's relay connections:
// the instance number after the last '#' ties a partition lock to its
// process in pg_stat_activity.
func (s *share) connName(name string) string {
	suffix := "#" + strconv.FormatInt(s.instance, 10)
	if len(name)+len(suffix) > 63 {
		name = name[:63-len(suffix)]
	}
	return name + suffix
}

// bounds returns the fair share's floor and ceiling for this view.
func (s *share) bounds() (lo, hi int, ok bool) {
	if s.view == nil || len(s.view.members) == 0 {
		return 0, s.partitions, false
	}
	m := len(s.view.members)
	return s.partitions / m, (s.partitions + m - 1) / m, true
}

// mayTake reports whether this process should try to lead partition p:
// while it leads fewer than its share's ceiling, unless another process
// leads fewer than the floor and this one does not; or when p has had no
// leader for freeLimit views in a row.
func (s *share) mayTake(p int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.freeFor[p] >= freeLimit {
		return true
	}
	lo, hi, ok := s.bounds()
	mine := len(s.led)
	if mine >= hi {
		return false
	}
	if ok && mine >= lo {
		for _, m := range s.view.members {
			if m != s.instance && s.view.leads[m] < lo {
				return false // leave it to the one below its share
			}
		}
	}
	return true
}

// took records that partition p is led here.
func (s *share) took(p int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.led[p] = true
	if s.view != nil {
		s.view.leads[s.instance] = len(s.led)
	}
}

// released records that partition p is no longer led here.
func (s *share) released(p int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.led, p)
	if s.view != nil {
		s.view.leads[s.instance] = len(s.led)
	}
}

// shouldYield reports whether partition p, led here, should be given up:
// only the highest partition this process leads, and only when the process
// leads more than its share, or leads the most of all (ties broken by
// the highest instance number) while another leads fewer than ⌊N/M⌋.
func (s *share) shouldYield(p int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	lo, hi, ok := s.bounds()
	if !ok || len(s.led) == 0 || p != slices.Max(mapKeys(s.led)) {
		return false
	}
	mine := len(s.led)
	if mine > hi {
		return true
	}
	if mine <= lo {
		return false
	}
	starved := false
	for _, m := range s.view.members {
		n := s.view.leads[m]
		if m != s.instance && (n > mine || n == mine && m > s.instance) {
			return false // another gives up first
		}
		starved = starved || n < lo
	}
	return starved
}

func (s *share) setView(v *membership) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v != nil {
		v.leads[s.instance] = len(s.led)
		for p := range s.partitions {
			if v.led[p] {
				s.freeFor[p] = 0
			} else {
				s.freeFor[p]++
			}
		}
	}
	s.view = v
}

func mapKeys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The relay processes (holders of a member lock), and the partitions
// ($2 of them) whose lock is held with the application name of the
// session that holds it.
const (
	relayMembers = `SELECT objid::bigint FROM pg_locks
WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid::bigint = $1::bigint AND objsubid = 2 AND granted`
	relayLeaders = `SELECT ((l.classid::bigint << 32 | l.objid::bigint) - $1::bigint) >> 8, a.application_name
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE ` + partitionLocksHeld
)

// readMembership reads the relay processes and the partitions each leads.
func readMembership(ctx context.Context, conn *pgx.Conn, partitions int) (*membership, error) {
	rows, err := conn.Query(ctx, relayMembers, int64(memberLockClass))
	if err != nil {
		return nil, fmt.Errorf("read relay members: %w", err)
	}
	members, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("read relay members: %w", err)
	}
	slices.Sort(members)
	rows, err = conn.Query(ctx, relayLeaders, relayLockKey, partitions)
	if err != nil {
		return nil, fmt.Errorf("read relay leaders: %w", err)
	}
	type leader struct {
		Partition int
		Name      string
	}
	leaders, err := pgx.CollectRows(rows, pgx.RowToStructByPos[leader])
	if err != nil {
		return nil, fmt.Errorf("read relay leaders: %w", err)
	}
	v := &membership{members: members, leads: make(map[int64]int, len(members)), led: make(map[int]bool, len(leaders))}
	for _, l := range leaders {
		v.led[l.Partition] = true
		i := strings.LastIndexByte(l.Name, '#')
		if id, err := strconv.ParseInt(l.Name[i+1:], 10, 64); i >= 0 && err == nil {
			v.leads[id]++
		}
	}
	return v, nil
}

// member holds this process's member lock and refreshes the share's view
// and the relay's backlog every LockRetry, until ctx ends. While it cannot
// (the database is down), the view is unknown and the process takes any
// free partition.
func (r *Relay) member(ctx context.Context, log *slog.Logger) {
	b := backoff{max: r.cfg.MaxBackoff}
	for ctx.Err() == nil {
		err := r.memberSession(ctx, &b)
		r.share.setView(nil)
		if ctx.Err() != nil {
			return
		}
		wait := b.next()
		log.Debug("relay membership lost its database session; reconnecting", "err", err, "retry_in", wait.String())
		if !sleep(ctx, wait) {
			return
		}
	}
}

func (r *Relay) memberSession(ctx context.Context, b *backoff) error {
	conn, err := connect(ctx, r.cfg.DatabaseURL, r.share.connName(r.cfg.Name))
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn)
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = conn.Exec(qctx, `SELECT pg_advisory_lock($1::int, $2::int)`, memberLockClass, int32(r.share.instance)) //nolint:gosec // the instance number is below 2^31
	cancel()
	if err != nil {
		return fmt.Errorf("take the relay member lock: %w", err)
	}
	b.reset()
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := readMembership(qctx, conn, r.cfg.Partitions)
		if err == nil {
			r.share.setView(v)
			r.readBacklog(qctx, conn)
		}
		cancel()
		if err != nil {
			return err
		}
		if !sleep(ctx, r.cfg.LockRetry) {
			return nil
		}
	}
}
