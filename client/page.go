package client

import (
	"context"
	"iter"
)

// Page is one page of a list.
type Page[T any] struct {
	Data []T
	// NextCursor continues the list after this page: pass it as the next
	// filter's Cursor (After for events and checkpoints). "" on a list's
	// last page; the event feed always gives one, to wait on for newer
	// events.
	NextCursor string
	// HasMore reports whether more items were there already.
	HasMore bool
}

// fetchFunc reads the page after cursor ("" for the first).
type fetchFunc[T any] func(ctx context.Context, cursor string) (Page[T], error)

// pages iterates over a list from cursor: each page, then the one after
// it (next gives its cursor) while the page says there are more. An error
// is yielded once and ends the iteration.
func pages[T any](ctx context.Context, cursor string, fetch fetchFunc[T], next func(Page[T]) (string, error)) iter.Seq2[Page[T], error] {
	return func(yield func(Page[T], error) bool) {
		for {
			p, err := fetch(ctx, cursor)
			if err != nil {
				yield(Page[T]{}, err)
				return
			}
			if !yield(p, nil) || !p.HasMore {
				return
			}
			c, err := next(p)
			if err != nil {
				yield(Page[T]{}, err)
				return
			}
			if c == "" || c == cursor {
				return // no way on: stop rather than read the same page forever
			}
			cursor = c
		}
	}
}

// byNextCursor continues a list with its NextCursor.
func byNextCursor[T any](p Page[T]) (string, error) { return p.NextCursor, nil }

// All iterates over every item of the pages, in order, and stops at the
// first error, which it yields:
//
//	for e, err := range client.All(c.TransactionPages(ctx, 1, client.TransactionFilter{})) {
//		if err != nil { return err }
//		fmt.Println(e.Seq, e.Amount)
//	}
func All[T any](pages iter.Seq2[Page[T], error]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for p, err := range pages {
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range p.Data {
				if !yield(item, nil) {
					return
				}
			}
		}
	}
}

// page makes a Page of data and the answer's pagination.
func page[T any](data []T, info pageInfo) Page[T] {
	p := Page[T]{Data: data, HasMore: info.HasMore}
	if info.NextCursor != nil {
		p.NextCursor = *info.NextCursor
	}
	return p
}
