package daemon

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/kvstore"
)

// This file adapts kvstore's Store.Watch to httpapi's Store.

// Watch starts a kvstore watcher and relays its events, converted, to an
// httpapi.Watcher.
func (s store) Watch(ctx context.Context, o httpapi.WatchOptions) (httpapi.Watcher, error) {
	kw, err := s.Store.Watch(ctx, kvstore.WatchOptions{Key: o.Key, Prefix: o.Prefix, FromIndex: o.FromIndex, AfterPos: o.AfterPos})
	if err != nil {
		return nil, wireWatchError(err)
	}
	w := &watcher{
		kw:       kw,
		out:      make(chan httpapi.Event),
		done:     make(chan struct{}),
		poke:     make(chan struct{}, 1),
		configAt: s.Store.ConfigVersionAt,
	}
	// The first progress: every event up to the kvstore watcher's progress
	// is in its channel, so up to the first of them all were delivered.
	p := kw.Progress()
	var first *kvstore.Event
	select {
	case ev, ok := <-kw.Events():
		if ok {
			first = &ev
			p = min(p, ev.ModIndex-1)
		}
	default:
	}
	w.progress.Store(p)
	go w.relay(ctx, first)
	return w, nil
}

// watcher relays a kvstore watcher's events. Its goroutine (relay) holds
// at most one event between the two channels, so Progress, which must
// never claim an event not yet delivered to Events, is kept by relay:
// after each event, and when Progress pokes it, from the kvstore
// watcher's progress read while no event was in hand.
type watcher struct {
	kw       *kvstore.Watcher
	out      chan httpapi.Event
	done     chan struct{}
	poke     chan struct{}
	progress atomic.Uint64
	// configAt is the store's ConfigVersionAt.
	configAt func(index uint64) uint64

	err error
}

// ConfigVersionAt is the version of the config the member had applied as
// of index (httpapi.ConfigWatcher).
func (w *watcher) ConfigVersionAt(index uint64) uint64 { return w.configAt(index) }

func (w *watcher) Events() <-chan httpapi.Event { return w.out }
func (w *watcher) Done() <-chan struct{}        { return w.done }

// Err is why the watcher ended, once Done is closed.
func (w *watcher) Err() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

// Progress is the index up to which every event was delivered to Events.
// It asks relay to look again, for the next call.
func (w *watcher) Progress() uint64 {
	select {
	case w.poke <- struct{}{}:
	default:
	}
	return w.progress.Load()
}

// advance raises the progress to p.
func (w *watcher) advance(p uint64) {
	for {
		cur := w.progress.Load()
		if p <= cur || w.progress.CompareAndSwap(cur, p) {
			return
		}
	}
}

// relay forwards the kvstore watcher's events, beginning with first if
// not nil, until it ends or ctx does.
func (w *watcher) relay(ctx context.Context, first *kvstore.Event) {
	defer close(w.done)
	send := func(ev kvstore.Event) bool {
		select {
		case w.out <- wireEvent(ev):
			if ev.ModIndex > 0 {
				w.advance(ev.ModIndex - 1)
			}
			return true
		case <-ctx.Done():
			w.err = ctx.Err()
			return false
		}
	}
	if first != nil && !send(*first) {
		return
	}
	for {
		select {
		case ev, ok := <-w.kw.Events():
			if !ok {
				<-w.kw.Done()
				w.err = wireWatchError(w.kw.Err())
				return
			}
			if !send(ev) {
				return
			}
		case <-w.poke:
			// Every event up to p is in the channel or delivered: if
			// the channel holds one, up to just before it.
			p := w.kw.Progress()
			select {
			case ev, ok := <-w.kw.Events():
				if !ok {
					continue // the case above sees the end
				}
				w.advance(min(p, ev.ModIndex-1))
				if !send(ev) {
					return
				}
			default:
				w.advance(p)
			}
		case <-w.kw.Done():
			// Deliver what the watcher delivered before it ended.
			for {
				select {
				case ev, ok := <-w.kw.Events():
					if ok && send(ev) {
						continue
					}
					if !ok {
						w.err = wireWatchError(w.kw.Err())
					}
				default:
					w.err = wireWatchError(w.kw.Err())
				}
				return
			}
		case <-ctx.Done():
			w.err = ctx.Err()
			return
		}
	}
}

// wireEvent is ev as httpapi names it.
func wireEvent(ev kvstore.Event) httpapi.Event {
	out := httpapi.Event{
		Key:         ev.Key,
		Value:       ev.Value,
		CreateIndex: ev.CreateIndex,
		ModIndex:    ev.ModIndex,
		Pos:         ev.Pos,
		KeyMod:      ev.KeyMod,
		Bucket:      ev.Bucket,
		Version:     ev.Version,
	}
	switch ev.Type {
	case kvstore.EventPut:
		out.Type = httpapi.EventPut
	case kvstore.EventDelete:
		out.Type = httpapi.EventDelete
	case kvstore.EventExpire:
		out.Type = httpapi.EventExpire
	case kvstore.EventBucketOut:
		out.Type = httpapi.EventBucketOut
	case kvstore.EventBucketIn:
		out.Type = httpapi.EventBucketIn
	case kvstore.EventGroupLeft:
		out.Type = httpapi.EventGroupLeft
	}
	return out
}

// wireWatchError gives kvstore's watch errors the form httpapi answers:
// 410 compacted with the oldest index, too_slow, else as wireError.
func wireWatchError(err error) error {
	var ce *kvstore.CompactedError
	switch {
	case errors.As(err, &ce):
		return &httpapi.CompactedError{Oldest: ce.Oldest, Err: err}
	case errors.Is(err, kvstore.ErrWatcherTooSlow):
		return errors.Join(httpapi.ErrWatcherTooSlow, err)
	}
	return wireError(err)
}
