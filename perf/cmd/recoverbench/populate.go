package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/tern-mqtt/tern/wal"
)

// Batch sizes of the populate step, and the shape of the data. They are part
// of the layout: the checks compute what to expect from them.
const (
	sessionsPerBatch = 1000
	bodiesPerBatch   = 8 // message bodies the queues of one batch of sessions share
	retainedPerBatch = 10_000
	devsPerSite      = 1000 // retained topics site/S/dev/D/temp, D < devsPerSite
	payloadSize      = 64
	// inFlightBatches bounds the batches submitted and not yet committed, so
	// that populating holds little memory and the committer's groups stay
	// moderate.
	inFlightBatches = 8
)

// layout is what populate writes and the checks expect; every client id,
// filter, topic and payload follows from an index.
type layout struct {
	sessions int // persistent sessions
	subs     int // subscriptions per session
	queued   int // queued QoS 1 messages per session
	retained int // retained messages
}

func (l layout) clientID(i int) string { return fmt.Sprintf("recover-%07d", i) }

// sites is the number of site/S subtrees the retained topics spread over.
func (l layout) sites() int { return max(1, (l.retained+devsPerSite-1)/devsPerSite) }

// filter is the k-th subscription of session i: the first a wildcard over
// one site's devices, the others a topic of its own.
func (l layout) filter(i, k int) string {
	if k == 0 {
		return fmt.Sprintf("site/%d/dev/+/temp", i%l.sites())
	}
	return fmt.Sprintf("recover/%07d/cmd/%d", i, k)
}

// body is the message body the k-th queue entry of session i refers to:
// the sessions of one batch share bodiesPerBatch bodies.
func (l layout) body(i, k int) int {
	return i/sessionsPerBatch*bodiesPerBatch + (i%sessionsPerBatch+k)%bodiesPerBatch
}

func bodyTopic(b int) string { return "recover/shared/" + strconv.Itoa(b) }

func bodyPayload(b int) []byte { return pad("queued body " + strconv.Itoa(b)) }

func retainedTopic(i int) string {
	return fmt.Sprintf("site/%d/dev/%d/temp", i/devsPerSite, i%devsPerSite)
}

func retainedPayload(i int) []byte { return pad("retained " + strconv.Itoa(i)) }

// pad returns s padded with dots to payloadSize bytes.
func pad(s string) []byte {
	b := make([]byte, payloadSize)
	for i := range b {
		b[i] = '.'
	}
	copy(b, s)
	return b
}

// populated is what populate reports.
type populated struct {
	Elapsed time.Duration
	Bytes   int64 // size of the data directory afterwards
	Bodies  int   // message bodies written
}

// populate writes l into a new store in dir through the wal package, with
// DurabilityNone and large batches, and closes it. progress, when not nil,
// is called about every tenth of the work.
func populate(dir string, l layout, progress func(string)) (populated, error) {
	start := time.Now()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := wal.Open(wal.Options{Dir: dir, Durability: wal.DurabilityNone, Logger: log})
	if err != nil {
		return populated{}, err
	}
	if _, err := s.Load(); err != nil { // required once before the first Submit
		_ = s.Close()
		return populated{}, err
	}
	p := &submitter{s: s, sem: make(chan struct{}, inFlightBatches)}
	var res populated
	now := time.Now().UnixNano()
	total := l.sessions/sessionsPerBatch + l.retained/retainedPerBatch + 2
	step, done := max(total/10, 1), 0
	report := func(what string) {
		if done++; progress != nil && done%step == 0 {
			progress(fmt.Sprintf("%s (%d%%, %v)", what, 100*done/total, time.Since(start).Round(time.Millisecond)))
		}
	}

	for first := 0; first < l.sessions && p.err() == nil; first += sessionsPerBatch {
		last := min(first+sessionsPerBatch, l.sessions)
		nb := bodiesPerBatch
		if l.queued == 0 {
			nb = 0
		}
		res.Bodies += nb
		p.submit(func() *wal.Batch {
			b := wal.NewBatch(wal.KindConnect, nil)
			// The ids are from this store and belong to bodies of this
			// batch only, so their reference counts start in it.
			ids := make([]uint64, nb)
			for j := range ids {
				ids[j] = s.NewMessageID()
				bn := first/sessionsPerBatch*bodiesPerBatch + j
				b.MessagePut(ids[j], &wal.Message{Topic: []byte(bodyTopic(bn)), Payload: bodyPayload(bn), QoS: 1, Created: now})
			}
			for i := first; i < last; i++ {
				cid := []byte(l.clientID(i))
				b.SessionPut(cid, &wal.Session{Expiry: 0xFFFFFFFF, Version: 4, ConnectedAt: now - int64(time.Hour), DisconnectedAt: now})
				for k := range l.subs {
					b.SubPut(cid, []byte(l.filter(i, k)), &wal.Subscription{QoS: 1})
				}
				for k := range l.queued {
					bn := l.body(i, k)
					b.QueuePut(cid, s.NewQueueSeq(), &wal.QueueEntry{MsgID: ids[bn%bodiesPerBatch], QoS: 1})
				}
			}
			return b
		})
		report("sessions")
	}
	for first := 0; first < l.retained && p.err() == nil; first += retainedPerBatch {
		last := min(first+retainedPerBatch, l.retained)
		p.submit(func() *wal.Batch {
			b := wal.NewBatch(wal.KindRetain, nil)
			for i := first; i < last; i++ {
				b.RetainedPut(&wal.Message{Topic: []byte(retainedTopic(i)), Payload: retainedPayload(i), QoS: 1, Retain: true, Created: now})
			}
			return b
		})
		report("retained")
	}
	p.wg.Wait()
	err = p.err()
	if cerr := s.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("cannot populate %q: %w", dir, err)
	}
	res.Elapsed = time.Since(start)
	res.Bytes, err = dirSize(dir)
	return res, err
}

// submitter submits batches with at most cap(sem) in flight and keeps the
// first error.
type submitter struct {
	s    *wal.Store
	sem  chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	err1 error
}

func (p *submitter) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err1 == nil {
		p.err1 = err
	}
}

func (p *submitter) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err1
}

// submit builds a batch and submits it, building it again after
// ErrQueueFull: Submit takes a batch over even when it refuses it.
func (p *submitter) submit(build func() *wal.Batch) {
	p.sem <- struct{}{}
	p.wg.Add(1)
	done := func(err error) {
		if err != nil {
			p.fail(err)
		}
		<-p.sem
		p.wg.Done()
	}
	for {
		err := p.s.Submit(build(), done)
		if err == nil {
			return
		}
		if !errors.Is(err, wal.ErrQueueFull) {
			done(err)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// dirSize returns the total size of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}
