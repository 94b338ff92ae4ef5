package wal

import (
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// watchFS reports errors writing or syncing Pebble's WAL files to a
// fatalSink before Pebble sees them. Pebble keeps such an error in its WAL
// writer and panics on the next commit, with its commit pipeline locked, so
// that it can no longer be closed and reopened. The committer checks the
// sink before every commit and stops before that happens: the failed Pebble
// still closes, and the store can recover without a restart.
type watchFS struct {
	vfs.FS
	sink *fatalSink
}

func isWAL(name string) bool { return strings.HasSuffix(name, ".log") }

func (fs watchFS) watch(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		if isWAL(name) {
			fs.sink.set(err)
		}
		return f, err
	}
	if !isWAL(name) {
		return f, nil
	}
	return watchFile{File: f, sink: fs.sink}, nil
}

func (fs watchFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.watch(name, f, err)
}

func (fs watchFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return fs.watch(name, f, err)
}

func (fs watchFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return fs.watch(newname, f, err)
}

// Unwrap returns the file system underneath.
func (fs watchFS) Unwrap() vfs.FS { return fs.FS }

type watchFile struct {
	vfs.File
	sink *fatalSink
}

func (f watchFile) check(err error) error {
	if err != nil {
		f.sink.set(err)
	}
	return err
}

func (f watchFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	return n, f.check(err)
}

func (f watchFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	return n, f.check(err)
}

func (f watchFile) Preallocate(off, n int64) error { return f.check(f.File.Preallocate(off, n)) }
func (f watchFile) Sync() error                    { return f.check(f.File.Sync()) }
func (f watchFile) SyncData() error                { return f.check(f.File.SyncData()) }

func (f watchFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	return full, f.check(err)
}
