package ledger

// Pending returns how many changes of userID wait in the process queue (not
// counting the batch in flight). Tests use it to submit in a known order.
func (l *Ledger) Pending(userID int64) int {
	l.q.mu.Lock()
	defer l.q.mu.Unlock()
	if q, ok := l.q.users[userID]; ok {
		return len(q.pending)
	}
	return 0
}
