// Package wal owns the broker's durable state: a Pebble store of sessions,
// subscriptions, retained messages, queued and in-flight deliveries, inbound
// QoS 2 packet ids and pending wills, written by one group-commit goroutine,
// read back on start (Load), and printed by `tern wal tail` and verified by
// `tern wal check`. It knows nothing of the network or of the engine's
// types: the engine converts its sessions and messages to the records here.
//
// # Writing
//
// An event loop builds a Batch for one logical change (a PUBLISH, a
// SUBSCRIBE, an acknowledgement) and calls Store.Submit with a completion.
// Submit never blocks: it enqueues the batch on a bounded queue, or returns
// an error (queue full, store failed, disk space low) that the caller turns
// into a refusal. The committer goroutine drains the queue, applies many
// changes to one Pebble batch, commits it, makes it durable as
// Options.Durability says, and then calls each completion in submission
// order, on the committer goroutine. The engine sends PUBACK, PUBREC,
// SUBACK... from the completion, so an acknowledgement is never sent before
// its change is on disk (DESIGN invariant 4) and no loop waits on disk
// (invariant 3).
//
// Message bodies are stored once, under an id from Store.NewMessageID, and
// queue entries refer to them. The committer counts references in memory
// (after Load) and deletes a body with the last entry that refers to it;
// Load deletes bodies that nothing refers to. In-flight state is not a key
// family of its own (as DESIGN.md sketched) but the State of a queue entry:
// a delivery goes from queued to in flight to PUBREC-received in place.
//
// # Failures
//
// Pebble treats an error writing or syncing its WAL or MANIFEST as fatal:
// its default logger exits the process, and a WAL writer that failed once
// panics on the next commit. The store installs a logger that records such
// errors instead, and wraps the file system (watchFS) to see WAL write and
// sync errors before Pebble's next commit does. A failed commit or sync
// completes every change of its group with the error, and the store refuses
// all new work (ErrUnavailable) while it closes and reopens Pebble every
// Options.RetryInterval; it accepts work again once a reopen and a synced
// probe write succeed. A change whose completion got an error may or may not
// be on disk afterwards, as with any failed fsync: the caller must not
// acknowledge it, and must tolerate its reappearing after a restart. If
// Pebble cannot be closed (a panic inside its commit pipeline left it
// locked) the store stays failed until the broker restarts.
//
// One case is beyond the store: a WAL write that first fails while Pebble
// rotates its WAL (when a memtable fills) makes Pebble panic in a way that
// ends the process. Under DurabilitySync every commit has synced its data
// before a rotation, so this takes a disk that fails between two commits;
// under batch and none it is likelier. A restart recovers; nothing
// acknowledged under sync is lost.
//
// A full disk is better not reached: before every commit the committer
// checks free space (at most every 100 ms), and below Options.MinFreeBytes
// it refuses changes that add data (ErrDiskFull: the engine answers QoS 1/2
// work with 0x97 Quota exceeded) while still committing deletions and state
// changes, which free space; it accepts new data again when space returns.
//
// # Reading
//
// Load reads everything back once at start. Retained messages are not
// loaded: RangeRetained and GetRetained read them from disk, for a bounded
// cache above. A corrupt or unreadable store is an error naming the
// directory and what to do, never an empty start.
//
// # Tail and follow
//
// Tail and Check open a data directory read-only, which needs the
// directory lock: they work on the directory of a stopped broker. A running
// broker holds the lock for its lifetime and Pebble cannot be read safely
// without it (compactions delete files under a reader), so on a running
// broker Tail and Check fail with ErrLocked. Following a running broker goes
// through the broker itself: Store.Tail streams the change log from the live
// store and wakes on every commit, for an endpoint of the broker (not wired
// yet) to serve; `tern wal tail --follow` then connects to that endpoint.
// This was chosen over polling a read-only checkpoint because a checkpoint
// costs the broker a copy of its WAL on every poll and still lags. Tail of a
// stopped broker's directory with follow prints what is there and returns:
// nothing can be appended while no broker runs, and waiting would hold the
// lock and keep the broker from starting.
//
// The change log is an audit trail for tail, not the source of truth:
// recovery reads the state families, and the log is trimmed to the last
// Options.LogRetain records.
package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Durability says when a change counts as durable.
type Durability int

const (
	// DurabilitySync syncs the WAL before completing a change; one sync
	// covers every change the committer gathered meanwhile (group commit).
	DurabilitySync Durability = iota
	// DurabilityBatch commits without syncing and syncs at most every
	// SyncInterval; completions wait for that sync.
	DurabilityBatch
	// DurabilityNone commits without syncing and completes at once: a crash
	// of the machine may lose what the OS had not written back.
	DurabilityNone
)

func (d Durability) String() string {
	switch d {
	case DurabilitySync:
		return "sync"
	case DurabilityBatch:
		return "batch"
	case DurabilityNone:
		return "none"
	}
	return fmt.Sprintf("durability(%d)", int(d))
}

// ParseDurability parses "sync", "batch" or "none".
func ParseDurability(s string) (Durability, error) {
	switch s {
	case "sync":
		return DurabilitySync, nil
	case "batch":
		return DurabilityBatch, nil
	case "none":
		return DurabilityNone, nil
	}
	return 0, fmt.Errorf("wal: unknown durability %q (want sync, batch or none)", s)
}

// Options configure a Store. EnsureDefaults fills the zero fields.
type Options struct {
	// Dir is the data directory. Required.
	Dir string
	// Durability defaults to DurabilitySync.
	Durability Durability
	// SyncInterval is the longest time between syncs under DurabilityBatch.
	// Default 5 ms.
	SyncInterval time.Duration
	// LogRetain is how many change-log records are kept. Default 1,000,000.
	// The log is trimmed in steps, so it may hold up to 1/16 more.
	LogRetain int
	// MaxPending bounds the submissions waiting for the committer; Submit
	// returns ErrQueueFull beyond it. Default 65,536.
	MaxPending int
	// MinFreeBytes is the free disk space below which changes that add data
	// are refused with ErrDiskFull. It must leave room for Pebble to flush
	// its memtables and compact (up to MemTableStopWritesThreshold times the
	// memtable size, 256 MiB). Default 256 MiB; negative disables the check.
	MinFreeBytes int64
	// RetryInterval is how often a failed store tries to recover. Default 1 s.
	RetryInterval time.Duration
	// Logger receives the store's and Pebble's messages. Default slog.Default().
	Logger *slog.Logger
	// FS is the file system, for tests (vfs.NewMem, vfs.NewCrashableMem,
	// errorfs). Default vfs.Default.
	FS vfs.FS

	hooks testHooks
}

// testHooks are seams for tests; nil funcs are skipped.
type testHooks struct {
	afterCommit func(changes int) // after each Pebble commit of a group, on the committer
}

// EnsureDefaults fills the zero fields of o with their defaults.
func (o *Options) EnsureDefaults() {
	if o.SyncInterval <= 0 {
		o.SyncInterval = 5 * time.Millisecond
	}
	if o.LogRetain <= 0 {
		o.LogRetain = 1_000_000
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 1 << 16
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 256 << 20
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
}

var (
	// ErrClosed is returned by Submit after Close.
	ErrClosed = errors.New("wal: store closed")
	// ErrQueueFull is returned by Submit when MaxPending submissions wait.
	ErrQueueFull = errors.New("wal: commit queue full")
	// ErrUnavailable is wrapped by the errors of a store that failed to
	// commit or sync, together with the cause, until it recovers.
	ErrUnavailable = errors.New("wal: store unavailable after a write error, refusing new work until a sync succeeds")
	// ErrDiskFull is returned for changes that add data while free disk space
	// is below Options.MinFreeBytes, and wrapped when Pebble hit ENOSPC.
	ErrDiskFull = errors.New("wal: disk space low, refusing new data")
	// ErrLocked is wrapped when a data directory is locked by another store:
	// a running broker, or a tail or check in progress.
	ErrLocked = errors.New("wal: data directory in use")
)

// store states
const (
	stateOK       int32 = iota
	stateLowSpace       // refusing changes that add data
	stateBroken         // refusing everything; the committer reopens Pebble
	stateDead           // Pebble could not be closed: refusing until restart
)

// Store is an open data directory. Its methods are safe for concurrent use.
type Store struct {
	opts Options
	dir  string
	fs   vfs.FS
	log  *slog.Logger
	lock *pebble.Lock

	// dbMu guards db against the committer swapping it on recovery and Close;
	// readers (Load, RangeRetained, Tail) hold it shared.
	dbMu sync.RWMutex
	db   *pebble.DB

	fatal fatalSink // errors Pebble reported through Logger.Fatalf

	metrics storeMetrics

	// subMu orders Submit against Close: Submit holds it shared while it
	// enqueues, so that once Close has it exclusively no batch can slip into
	// the queue after the committer's last drain.
	subMu  sync.RWMutex
	closed bool
	in     chan *Batch

	state    atomic.Int32
	cause    atomic.Pointer[error] // why the store is not stateOK
	quit     chan struct{}
	stopped  chan struct{}
	closeErr error
	once     sync.Once

	nextMsgID atomic.Uint64
	nextSeq   atomic.Uint64

	// refs counts the queue entries that refer to each message body. Nil
	// until Load: without it the committer never deletes a body. refsMu is
	// held by the committer while it applies a group and by Load while it
	// scans, so Load sees no half-applied group.
	refsMu sync.Mutex
	refs   map[uint64]int32

	prevCommit int64 // unix nanoseconds of the last commit before Open

	// committer-only state
	logSeq   uint64 // last change-log sequence assigned
	logFirst uint64 // first change-log sequence not trimmed

	tail tailNotifier
	st   stats
}

// Stats are the store's counters since Open.
type Stats struct {
	Changes  uint64 // changes committed
	Commits  uint64 // Pebble commits (one per group)
	Syncs    uint64 // WAL syncs
	Refused  uint64 // Submit calls refused (queue full, failed, low space)
	Failed   uint64 // changes completed with an error
	Recovery uint64 // recoveries from a failed state
}

type stats struct {
	changes, commits, syncs, refused, failed, recovery atomic.Uint64
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{Changes: s.st.changes.Load(), Commits: s.st.commits.Load(), Syncs: s.st.syncs.Load(),
		Refused: s.st.refused.Load(), Failed: s.st.failed.Load(), Recovery: s.st.recovery.Load()}
}

// Open opens or creates the store in o.Dir and starts its committer. A
// directory that holds files but no readable store is an error, never an
// empty start.
func Open(o Options) (*Store, error) {
	o.EnsureDefaults()
	if o.Dir == "" {
		return nil, errors.New("wal: Options.Dir is empty")
	}
	s := &Store{opts: o, dir: o.Dir, fs: o.FS, log: o.Logger.With("component", "wal"),
		in: make(chan *Batch, o.MaxPending), quit: make(chan struct{}), stopped: make(chan struct{}),
		metrics: newStoreMetrics()}
	if err := s.fs.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: cannot create data directory %q: %w", s.dir, err)
	}
	fresh, err := inspectDir(s.fs, s.dir)
	if err != nil {
		return nil, err
	}
	if s.lock, err = lockDir(s.fs, s.dir); err != nil {
		return nil, err
	}
	c, err := s.openDB(fresh)
	if err != nil {
		_ = s.lock.Close()
		return nil, err
	}
	s.prevCommit = c.Time
	s.log.Info("wal opened", "dir", s.dir, "durability", o.Durability.String(),
		"next_message_id", s.nextMsgID.Load(), "next_seq", s.nextSeq.Load(), "log_seq", s.logSeq)
	go s.run()
	return s, nil
}

// inspectDir reports whether dir holds no store yet. A directory with files
// but no Pebble store is refused: it is someone else's directory, or a store
// that lost its MANIFEST marker.
func inspectDir(fs vfs.FS, dir string) (fresh bool, err error) {
	desc, err := pebble.Peek(dir, fs)
	if err != nil {
		return false, damaged(dir, err)
	}
	if desc.Exists {
		return false, nil
	}
	names, err := fs.List(dir)
	if err != nil {
		return false, fmt.Errorf("wal: cannot list data directory %q: %w", dir, err)
	}
	for _, n := range names {
		if n != "LOCK" {
			return false, fmt.Errorf("wal: data directory %q holds files (%s, ...) but no store (no current MANIFEST): "+
				"if it was a tern store it is damaged: run \"tern wal check --data-dir %s\" and restore it from a backup; "+
				"otherwise point --data-dir at an empty directory", dir, n, dir)
		}
	}
	return true, nil
}

// damaged wraps an error reading the store with what to do about it.
func damaged(dir string, err error) error {
	return fmt.Errorf("wal: cannot read the store in %q: %w; the store may be damaged: "+
		"run \"tern wal check --data-dir %s\" and restore the directory from a backup if it reports damage "+
		"(tern does not start with an empty store in its place)", dir, err, dir)
}

// lockDir takes the directory lock that every open of dir, read-only or not,
// needs.
func lockDir(fs vfs.FS, dir string) (*pebble.Lock, error) {
	l, err := pebble.LockDirectory(dir, fs)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot lock %q (is a broker, or a tern wal tail/check, using it?): %w",
			ErrLocked, dir, err)
	}
	return l, nil
}

// pebbleOptions are tuned for many small values written at a high rate and
// deleted soon after (queue entries and their bodies), read in full only at
// start.
func (s *Store) pebbleOptions(readOnly bool) *pebble.Options {
	po := &pebble.Options{
		FS:       watchFS{FS: s.fs, sink: &s.fatal},
		Lock:     s.lock,
		ReadOnly: readOnly,
		Logger:   pebbleLogger{log: s.log, sink: &s.fatal},
		// A large memtable absorbs churn: a queue entry and its body that are
		// put and deleted within its lifetime (an online subscriber's
		// acknowledgement, seconds at 100k msg/s) never reach an sstable as
		// values, only as tombstones. The default 4 MiB would flush several
		// times a second under load.
		MemTableSize: 64 << 20,
		// Room for two memtables to queue while one flushes before writes
		// stall; a stall stops the committer and so every acknowledgement.
		MemTableStopWritesThreshold: 4,
		// Compact L0 at the default read amplification, but never stop writes
		// for L0 (default 12): we read rarely (Load at start, retained
		// lookups behind a cache), so read amplification is cheaper for us
		// than a write stall.
		L0CompactionThreshold: 4,
		L0StopWritesThreshold: 1000,
		// Retained and session lookups are point reads; the block cache keeps
		// the hot ones.
		CacheSize: 32 << 20,
		// Smooth sstable writeback so that flushes do not produce latency
		// spikes on the WAL syncs that acknowledgements wait for.
		BytesPerSync: 1 << 20,
		// New stores get the newest on-disk format. WALMinSyncInterval stays
		// unset: we group commits ourselves, and Pebble must not delay the
		// syncs that acknowledgements wait for any further.
		FormatMajorVersion: pebble.FormatNewest,
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) { s.log.Warn("pebble background error", "err", err) },
			DiskSlow: func(info pebble.DiskSlowInfo) {
				s.log.Warn("disk slow", "path", info.Path, "duration", info.Duration)
			},
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				s.log.Warn("pebble write stall", "reason", info.Reason)
			},
			WriteStallEnd: func() { s.log.Info("pebble write stall ended") },
		},
	}
	if readOnly {
		// Read the format the store has; FormatNewest would try to upgrade it.
		po.FormatMajorVersion = pebble.FormatDefault
	}
	if s.opts.Durability != DurabilitySync {
		// Without a sync per commit, let Pebble write the WAL back in the
		// background every MiB: it bounds what a power loss can take and
		// avoids the OS writing a large dirty WAL at once.
		po.WALBytesPerSync = 1 << 20
	}
	// Read sampling schedules compactions from iterator reads; our only big
	// reads are Load and tail, after which the data is not read again.
	po.Experimental.ReadSamplingMultiplier = -1
	// Table stats stay on (DisableTableStats false): they tell the compaction
	// picker where tombstones pile up, which is most of our deletes.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return po
}

// openDB opens Pebble under the store's lock, checks the format marker and
// seeds the allocators and the change-log position from the store.
func (s *Store) openDB(fresh bool) (counters, error) {
	s.fatal.reset()
	db, err := pebble.Open(s.dir, s.pebbleOptions(false))
	if err != nil {
		return counters{}, damaged(s.dir, err)
	}
	if err := checkFormat(db, s.dir, fresh); err != nil {
		_ = db.Close()
		return counters{}, err
	}
	c, err := readCounters(db)
	var first, last, lastMsg uint64
	if err == nil {
		first, last, err = logBounds(db)
	}
	if err == nil {
		lastMsg, err = lastMessageID(db)
	}
	if err != nil {
		_ = db.Close()
		return counters{}, damaged(s.dir, err)
	}
	s.raise(&s.nextMsgID, max(c.NextMsgID, lastMsg+1, 1))
	s.raise(&s.nextSeq, max(c.NextSeq, 1))
	s.logSeq = max(c.LogSeq, last)
	s.logFirst = first
	if first == 0 {
		s.logFirst = s.logSeq + 1
	}
	s.dbMu.Lock()
	s.db = db
	s.dbMu.Unlock()
	return c, nil
}

// raise sets a to v if v is larger.
func (s *Store) raise(a *atomic.Uint64, v uint64) {
	for {
		cur := a.Load()
		if cur >= v || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// checkFormat makes sure db is a tern store, marking a new one.
func checkFormat(db *pebble.DB, dir string, fresh bool) error {
	v, closer, err := db.Get(metaKey(nil, metaFormat))
	switch {
	case err == nil:
		defer closer.Close()
		if string(v) != formatMarker {
			return fmt.Errorf("wal: the store in %q has format %q, this tern reads %q: use a matching tern version",
				dir, v, formatMarker)
		}
		return nil
	case !errors.Is(err, pebble.ErrNotFound):
		return damaged(dir, err)
	}
	if !fresh {
		// A store that never got its marker is empty if it was created by a
		// tern that crashed right after creating it; anything else is not ours.
		empty, err := isEmpty(db)
		if err != nil {
			return damaged(dir, err)
		}
		if !empty {
			return fmt.Errorf("wal: %q holds a Pebble store that tern did not create (no format marker): "+
				"point --data-dir at tern's data directory", dir)
		}
	}
	if err := db.Set(metaKey(nil, metaFormat), []byte(formatMarker), pebble.Sync); err != nil {
		return fmt.Errorf("wal: cannot initialise the store in %q: %w", dir, err)
	}
	return nil
}

func isEmpty(db *pebble.DB) (bool, error) {
	it, err := db.NewIter(nil)
	if err != nil {
		return false, err
	}
	empty := !it.First()
	return empty, errors.Join(it.Error(), it.Close())
}

func readCounters(db *pebble.DB) (counters, error) {
	v, closer, err := db.Get(metaKey(nil, metaCounters))
	if errors.Is(err, pebble.ErrNotFound) {
		return counters{}, nil
	}
	if err != nil {
		return counters{}, err
	}
	defer closer.Close()
	return decodeCounters(v)
}

// logBounds returns the first and last change-log sequence, 0 when empty.
func logBounds(db *pebble.DB) (first, last uint64, err error) {
	lo, hi := familyBounds(famLog)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, 0, err
	}
	if it.First() {
		first, err = parseIDKey(it.Key(), famLog)
		if err == nil && it.Last() {
			last, err = parseIDKey(it.Key(), famLog)
		}
	}
	return first, last, errors.Join(err, it.Error(), it.Close())
}

// lastMessageID returns the largest stored message id, 0 when none.
func lastMessageID(db *pebble.DB) (uint64, error) {
	lo, hi := familyBounds(famMessage)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, err
	}
	var id uint64
	if it.Last() {
		id, err = parseIDKey(it.Key(), famMessage)
	}
	return id, errors.Join(err, it.Error(), it.Close())
}

// NewMessageID returns a message id never used before in this store, for
// Batch.MessagePut and QueueEntry.MsgID.
func (s *Store) NewMessageID() uint64 { return s.nextMsgID.Add(1) - 1 }

// NewQueueSeq returns a queue sequence number larger than every one handed
// out before, for Batch.QueuePut: queue entries of a session are loaded in
// the order of their sequence numbers.
func (s *Store) NewQueueSeq() uint64 { return s.nextSeq.Add(1) - 1 }

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Close commits what was submitted before it (completing those changes),
// stops the committer and closes Pebble. Submit returns ErrClosed afterwards.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.subMu.Lock()
		s.closed = true
		s.subMu.Unlock()
		close(s.quit)
		<-s.stopped
		s.dbMu.Lock()
		released := true
		if s.db != nil && s.state.Load() != stateDead {
			// A Pebble whose commit pipeline panicked never closes: give up
			// on it rather than hang the broker's shutdown.
			var closed bool
			closed, s.closeErr = closeWithin(s.db, closeTimeout)
			released = closed
		}
		s.db = nil
		s.dbMu.Unlock()
		if released && s.state.Load() != stateDead {
			s.closeErr = errors.Join(s.closeErr, s.lock.Close())
		}
		s.tail.wake()
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("wal: closing %q: %w", s.dir, s.closeErr)
		}
	})
	return s.closeErr
}

// fatalSink keeps the first error Pebble reported as fatal since the last
// reset.
type fatalSink struct{ err atomic.Pointer[error] }

func (f *fatalSink) set(err error) { f.err.CompareAndSwap(nil, &err) }

func (f *fatalSink) get() error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *fatalSink) reset() { f.err.Store(nil) }

// pebbleLogger routes Pebble's messages to slog. Pebble's informational
// messages are chatty (every flush and compaction), so they go to Debug.
// Fatalf does not exit: see the package doc.
type pebbleLogger struct {
	log  *slog.Logger
	sink *fatalSink
}

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "source", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Warn(fmt.Sprintf(format, args...), "source", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	err := &pebbleFatal{msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if e, ok := a.(error); ok {
			err.cause = e // keeps errors.Is(err, syscall.ENOSPC) working
			break
		}
	}
	l.log.Error(err.msg, "source", "pebble", "fatal", true)
	l.sink.set(err)
}

// pebbleFatal is an error Pebble reported through Fatalf.
type pebbleFatal struct {
	msg   string
	cause error
}

func (e *pebbleFatal) Error() string { return e.msg }
func (e *pebbleFatal) Unwrap() error { return e.cause }

// isNoSpace reports whether err is the file system's "no space left".
func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// closeTimeout bounds how long recovery waits for Pebble to close.
const closeTimeout = 10 * time.Second

// closeWithin closes c, giving up after d; it reports whether c closed.
func closeWithin(c io.Closer, d time.Duration) (closed bool, err error) {
	ch := make(chan error, 1)
	go func() { ch <- c.Close() }()
	select {
	case err := <-ch:
		return true, err
	case <-time.After(d):
		return false, os.ErrDeadlineExceeded
	}
}
