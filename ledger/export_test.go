package ledger

// Pending returns how many requests of userID wait in the process queue
// (not counting those in flight). Tests use it to submit in a known order.
func (l *Ledger) Pending(userID int64) int { return l.waitingOps(userID) }
