package wal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Tail prints the change-log records of the store in dir with sequence
// numbers from from on (0: the oldest kept), in order, as "text" (one line
// per record) or "json" (one object per line). It opens the directory
// read-only, so the broker must be stopped: on a running broker's directory
// it returns an error wrapping ErrLocked. With follow it prints what is there
// and returns, since no broker can append while the directory is held; see
// the package doc for following a running broker.
func Tail(dir string, from uint64, follow bool, format string, w io.Writer) error {
	return tailDir(vfs.Default, dir, from, follow, format, w)
}

func tailDir(fs vfs.FS, dir string, from uint64, follow bool, format string, w io.Writer) error {
	p, err := newPrinter(format)
	if err != nil {
		return err
	}
	db, closeDB, err := openReadOnly(fs, dir)
	if err != nil {
		if follow && errors.Is(err, ErrLocked) {
			return fmt.Errorf("%w; following a running broker goes through the broker's endpoint, "+
				"not supported while the broker holds the directory lock", err)
		}
		return err
	}
	defer closeDB()
	for {
		next, more, err := p.render(db, from)
		if err != nil {
			return damaged(dir, err)
		}
		if err := p.writeTo(w); err != nil {
			return err
		}
		if !more {
			return nil
		}
		from = next
	}
}

// Tail streams the change log of the open store to w, as the package func
// Tail does for a stopped broker's directory: records from from on, then,
// with follow, each new record as it commits until ctx is done (returning
// nil) or the store closes (ErrClosed). It is what a broker endpoint serves
// to `tern wal tail --follow`. It reads under the store's lock in chunks and
// writes to w without it, so a slow reader does not hold up the store.
func (s *Store) Tail(ctx context.Context, from uint64, follow bool, format string, w io.Writer) error {
	p, err := newPrinter(format)
	if err != nil {
		return err
	}
	if follow {
		s.tail.waiters.Add(1)
		defer s.tail.waiters.Add(-1)
	}
	for {
		// Take the wake-up channel before reading, so that a commit between
		// the read and the wait is not missed.
		wake := s.tail.wait()
		s.dbMu.RLock()
		db := s.db
		var next uint64
		more := false
		if db != nil {
			next, more, err = p.render(db, from)
		}
		s.dbMu.RUnlock()
		if db == nil {
			return ErrClosed
		}
		if err != nil {
			return damaged(s.dir, err)
		}
		if err := p.writeTo(w); err != nil {
			return err
		}
		from = next
		if more {
			continue
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}

// tailNotifier wakes followers of the change log after a commit. Committers
// pay one atomic load when nobody follows.
type tailNotifier struct {
	waiters atomic.Int32
	mu      sync.Mutex
	ch      chan struct{}
}

func (t *tailNotifier) wait() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ch == nil {
		t.ch = make(chan struct{})
	}
	return t.ch
}

func (t *tailNotifier) wake() {
	if t.waiters.Load() == 0 {
		return
	}
	t.mu.Lock()
	if t.ch != nil {
		close(t.ch)
		t.ch = nil
	}
	t.mu.Unlock()
}

// tailChunk is how many records render reads at a time.
const tailChunk = 1024

// printer renders change-log records as text or JSON lines.
type printer struct {
	json bool
	out  []byte
	key  []byte
}

func newPrinter(format string) (*printer, error) {
	switch format {
	case "text", "":
		return &printer{}, nil
	case "json":
		return &printer{json: true}, nil
	}
	return nil, fmt.Errorf("wal: unknown tail format %q (want text or json)", format)
}

func (p *printer) writeTo(w io.Writer) error {
	if len(p.out) == 0 {
		return nil
	}
	_, err := w.Write(p.out)
	p.out = p.out[:0]
	return err
}

// render renders up to tailChunk records with sequence numbers from from
// on, and returns the sequence after the last one rendered (from when none)
// and whether more may follow.
func (p *printer) render(db *pebble.DB, from uint64) (next uint64, more bool, err error) {
	p.key = logKey(p.key[:0], from)
	_, hi := familyBounds(famLog)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: p.key, UpperBound: hi})
	if err != nil {
		return from, false, err
	}
	next = from
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n == tailChunk {
			more = true
			break
		}
		seq, err := parseIDKey(it.Key(), famLog)
		if err != nil {
			return next, false, errors.Join(err, it.Close())
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return next, false, errors.Join(err, it.Close())
		}
		r, err := decodeLogRecord(v)
		if err != nil {
			return next, false, errors.Join(fmt.Errorf("log record %d: %w", seq, err), it.Close())
		}
		r.Seq = seq
		if err := p.record(&r); err != nil {
			return next, false, errors.Join(err, it.Close())
		}
		next = seq + 1
		n++
	}
	return next, more, errors.Join(it.Error(), it.Close())
}

// jsonRecord is the JSON form of a LogRecord. Client ids and topics that
// are not valid UTF-8 are written with U+FFFD in place of the bad bytes.
type jsonRecord struct {
	Seq      uint64 `json:"seq"`
	Time     string `json:"time"`
	Kind     string `json:"kind"`
	ClientID string `json:"client_id"`
	Topic    string `json:"topic,omitempty"`
	QoS      byte   `json:"qos"`
	Size     uint32 `json:"size"`
}

func (p *printer) record(r *LogRecord) error {
	t := time.Unix(0, r.Time).UTC().Format(time.RFC3339Nano)
	if p.json {
		b, err := json.Marshal(jsonRecord{Seq: r.Seq, Time: t, Kind: r.Kind.String(), ClientID: string(r.ClientID),
			Topic: string(r.Topic), QoS: r.QoS, Size: r.Size})
		if err != nil {
			return err
		}
		p.out = append(append(p.out, b...), '\n')
		return nil
	}
	l := strconv.AppendUint(p.out, r.Seq, 10)
	l = append(l, ' ')
	l = append(l, t...)
	l = append(l, ' ')
	l = append(l, r.Kind.String()...)
	l = append(l, " client_id="...)
	l = strconv.AppendQuote(l, string(r.ClientID))
	l = append(l, " topic="...)
	l = strconv.AppendQuote(l, string(r.Topic))
	l = append(l, " qos="...)
	l = strconv.AppendUint(l, uint64(r.QoS), 10)
	l = append(l, " size="...)
	l = strconv.AppendUint(l, uint64(r.Size), 10)
	p.out = append(l, '\n')
	return nil
}

// openReadOnly opens the store in dir read-only for tail and check, under
// the directory lock. The returned func closes it and releases the lock.
func openReadOnly(fs vfs.FS, dir string) (*pebble.DB, func(), error) {
	if _, err := fs.Stat(dir); err != nil {
		return nil, nil, fmt.Errorf("wal: no data directory %q: %w", dir, err)
	}
	desc, err := pebble.Peek(dir, fs)
	if err != nil {
		return nil, nil, damaged(dir, err)
	}
	if !desc.Exists {
		return nil, nil, fmt.Errorf("wal: %q holds no store (no current MANIFEST); if it held one, "+
			"it is damaged: restore it from a backup", dir)
	}
	lock, err := lockDir(fs, dir)
	if err != nil {
		return nil, nil, err
	}
	s := &Store{dir: dir, fs: fs, lock: lock, log: slog.Default().With("component", "wal")}
	po := s.pebbleOptions(true)
	po.ErrorIfNotExists = true
	db, err := pebble.Open(dir, po)
	if err != nil {
		_ = lock.Close()
		return nil, nil, damaged(dir, err)
	}
	closeDB := func() {
		_ = db.Close()
		_ = lock.Close()
	}
	v, closer, err := db.Get(metaKey(nil, metaFormat))
	if err != nil {
		closeDB()
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, nil, fmt.Errorf("wal: %q holds a Pebble store that tern did not create (no format marker)", dir)
		}
		return nil, nil, damaged(dir, err)
	}
	format := string(v)
	_ = closer.Close()
	if format != formatMarker {
		closeDB()
		return nil, nil, fmt.Errorf("wal: the store in %q has format %q, this tern reads %q", dir, format, formatMarker)
	}
	return db, closeDB, nil
}
