package chain

import "unsafe"

// memStore holds a memory chain's events. Unbounded, it packs data into
// shared chunks so an append allocates only when a chunk fills; bounded, it
// is a ring whose slots reuse their data buffers.
type memStore struct {
	retain int
	events []Event   // ring, when bounded
	pages  [][]Event // unbounded: fixed-size pages, so growth never copies old events
	next   int       // ring: slot of the next event
	full   bool
	chunk  []byte
	// bytes is what the store allocated for events and their data (the
	// ring's slots and buffers, the pages, the chunks), for accounting.
	bytes int64
}

const (
	memChunkSize = 64 << 10
	memPageSize  = 1024
	// eventSize is the size of an Event value in a page or ring slot.
	eventSize = int64(unsafe.Sizeof(Event{}))
)

func newMemStore(retain int) *memStore {
	m := &memStore{retain: retain}
	if retain > 0 {
		m.events = make([]Event, retain)
		m.bytes = int64(retain) * eventSize
	}
	return m
}

func (m *memStore) add(e Event) {
	if m.retain > 0 {
		slot := &m.events[m.next]
		before := cap(slot.Data)
		e.Data = append(slot.Data[:0], e.Data...)
		m.bytes += int64(cap(e.Data) - before)
		*slot = e
		m.next++
		if m.next == m.retain {
			m.next, m.full = 0, true
		}
		return
	}
	e.Data = m.copyData(e.Data)
	if len(m.pages) == 0 || len(m.pages[len(m.pages)-1]) == memPageSize {
		m.pages = append(m.pages, make([]Event, 0, memPageSize))
		m.bytes += memPageSize * eventSize
	}
	last := &m.pages[len(m.pages)-1]
	*last = append(*last, e)
}

// copyData copies into the current chunk; old chunks stay alive through the
// events that point into them and are never written again.
func (m *memStore) copyData(d []byte) []byte {
	if len(d) == 0 {
		return nil
	}
	if len(d) > memChunkSize/4 {
		m.bytes += int64(len(d))
		return append([]byte(nil), d...)
	}
	if cap(m.chunk)-len(m.chunk) < len(d) {
		m.chunk = make([]byte, 0, memChunkSize)
		m.bytes += memChunkSize
	}
	start := len(m.chunk)
	m.chunk = append(m.chunk, d...)
	return m.chunk[start:len(m.chunk):len(m.chunk)]
}

func (m *memStore) each(fn func(Event) error) error {
	if m.retain > 0 {
		if m.full {
			for _, e := range m.events[m.next:] {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
		for _, e := range m.events[:m.next] {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
	for _, page := range m.pages {
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}
