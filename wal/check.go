package wal

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Check verifies the store in dir and writes a report to w: it opens the
// store read-only (so the broker must be stopped), checks Pebble's levels and
// block checksums, decodes every record of every family and cross-checks
// references: every subscription, queue entry, inbound packet id and will
// belongs to a session, every queue entry's message body exists. It returns
// nil when the store is sound, otherwise an error saying how many problems
// it found; the report lists them.
func Check(dir string, w io.Writer) error { return checkStore(vfs.Default, dir, w) }

// maxListed bounds the problems listed one by one in the report.
const maxListed = 100

type checker struct {
	w        io.Writer
	problems int
	counts   map[byte]int
	sessions map[string]bool
	refs     map[uint64]queueRef // referenced message id -> first entry referring to it
	bodies   map[uint64]bool
	orphans  int
}

type queueRef struct {
	client string
	seq    uint64
}

func (c *checker) problem(format string, args ...any) {
	c.problems++
	if c.problems <= maxListed {
		fmt.Fprintf(c.w, "DAMAGED: "+format+"\n", args...)
	} else if c.problems == maxListed+1 {
		fmt.Fprintf(c.w, "(more problems not listed)\n")
	}
}

func checkStore(fs vfs.FS, dir string, w io.Writer) error {
	fmt.Fprintf(w, "checking store %s\n", dir)
	db, closeDB, err := openReadOnly(fs, dir)
	if err != nil {
		if !errors.Is(err, ErrLocked) { // in use is not damage: the caller says so
			fmt.Fprintf(w, "DAMAGED: cannot open: %v\n", err)
		}
		return err
	}
	defer closeDB()
	c := &checker{w: w, counts: make(map[byte]int), sessions: make(map[string]bool),
		refs: make(map[uint64]queueRef), bodies: make(map[uint64]bool)}

	var ls pebble.CheckLevelsStats
	if err := db.CheckLevels(&ls); err != nil {
		c.problem("pebble levels: %v", err)
	}
	it, err := db.NewIter(nil)
	if err != nil {
		c.problem("cannot iterate: %v", err)
	} else {
		for it.First(); it.Valid(); it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				c.problem("key %x: cannot read value: %v", it.Key(), err)
				continue
			}
			c.record(it.Key(), v)
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			c.problem("reading the store stopped early: %v", err)
		}
	}
	c.crossCheck()

	for _, f := range []byte{famSession, famSub, famQueue, famInbound, famWill, famMessage, famRetained, famLog} {
		fmt.Fprintf(w, "%-14s %d\n", familyName(f)+":", c.counts[f])
	}
	if c.orphans > 0 {
		fmt.Fprintf(w, "note: %d message bodies are not referred to by any queue entry; the broker deletes them on start\n",
			c.orphans)
	}
	if c.problems == 0 {
		fmt.Fprintf(w, "OK: no damage found (%d points, %d tombstones)\n", ls.NumPoints, ls.NumTombstones)
		return nil
	}
	fmt.Fprintf(w, "%d problems found\n", c.problems)
	return fmt.Errorf("wal: check found %d problems in %q: restore the directory from a backup "+
		"(the broker does not start on undecodable records; it skips, and logs, records whose session "+
		"or message body is missing)", c.problems, dir)
}

func (c *checker) record(k, v []byte) {
	if len(k) == 0 {
		c.problem("empty key")
		return
	}
	fam := k[0]
	c.counts[fam]++
	var err error
	switch fam {
	case famMeta:
		err = c.meta(string(k[1:]), v)
	case famSession, famSub, famQueue, famInbound, famWill:
		err = c.sessionRecord(k, v)
	case famMessage:
		var id uint64
		if id, err = parseIDKey(k, famMessage); err == nil {
			if _, err = decodeMessage(v, true); err == nil {
				c.bodies[id] = true
			}
		}
		if err != nil {
			err = fmt.Errorf("message %x: %w", k[1:], err)
		}
	case famRetained:
		if _, err = decodeMessage(v, false); err != nil {
			err = fmt.Errorf("retained %q: %w", k[1:], err)
		}
	case famLog:
		var seq uint64
		if seq, err = parseIDKey(k, famLog); err == nil {
			if _, err = decodeLogRecord(v); err != nil {
				err = fmt.Errorf("log record %d: %w", seq, err)
			}
		}
	default:
		err = fmt.Errorf("key %x in no known family", k)
	}
	if err != nil {
		c.problem("%v", err)
	}
}

func (c *checker) meta(name string, v []byte) error {
	switch name {
	case metaFormat:
		if string(v) != formatMarker {
			return fmt.Errorf("format marker %q, want %q", v, formatMarker)
		}
	case metaCounters:
		if _, err := decodeCounters(v); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown meta key %q", name)
	}
	return nil
}

// sessionRecord checks one record of a session family. Session records sort
// before the other families, so the session set is complete when they come.
func (c *checker) sessionRecord(k, v []byte) error {
	ck, err := parseClientKey(k)
	if err != nil {
		return err
	}
	cid := string(ck.cid)
	switch ck.fam {
	case famSession:
		if _, err := decodeSession(v); err != nil {
			return fmt.Errorf("session %q: %w", cid, err)
		}
		c.sessions[cid] = true
		return nil
	case famSub:
		_, err = decodeSubscription(v)
	case famQueue:
		var e QueueEntry
		if e, err = decodeQueueEntry(v); err == nil {
			if _, ok := c.refs[e.MsgID]; !ok {
				c.refs[e.MsgID] = queueRef{client: cid, seq: ck.seq()}
			}
		}
	case famInbound:
		_, err = decodeInbound(v)
	case famWill:
		_, err = decodeWill(v)
	}
	if err != nil {
		return fmt.Errorf("%s of %q: %w", ck.family(), cid, err)
	}
	if !c.sessions[cid] {
		return fmt.Errorf("%s of %q: no session record", ck.family(), cid)
	}
	return nil
}

// crossCheck reports queue entries whose message body is missing and counts
// bodies nothing refers to.
func (c *checker) crossCheck() {
	missing := make([]uint64, 0)
	for id := range c.refs {
		if !c.bodies[id] {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	for _, id := range missing {
		r := c.refs[id]
		c.problem("queue entry of %q seq %d (and maybe others) refers to message %d, which is missing", r.client, r.seq, id)
	}
	for id := range c.bodies {
		if _, ok := c.refs[id]; !ok {
			c.orphans++
		}
	}
}
