package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tern-mqtt/tern/wal"
)

const walUsage = `usage: tern wal <tail|check> --data-dir DIR [flags]

  tail   print the logged state changes in order (sequence, time, kind,
         client id, topic, QoS, size), as text or JSON lines
  check  verify the store and report what is damaged; the broker must be
         stopped

tail reads the data directory of a stopped broker itself. A running broker
holds its directory, so tail then reads through the broker's admin endpoint,
whose address the broker writes to DIR/admin.addr (start the broker with
--admin-listen; --admin HOST:PORT names the endpoint instead). With --follow
it keeps printing records as the running broker commits them, until
interrupted (exit 0) or the broker stops (exit 1); on a stopped broker's
directory --follow prints what is there and exits, since nothing can be
appended while no broker runs.

  tern wal tail --data-dir DIR [--from SEQ] [--follow] [--format text|json]
                [--admin HOST:PORT] [--admin-token-file FILE]
  tern wal check --data-dir DIR

exit codes: 0 done, 1 failed (check: damage found), 2 bad usage, or check
on the directory of a running broker
`

// walCmd runs `tern wal ...` on the process's stdout and stderr and returns
// the exit code.
func walCmd(args []string) int {
	return runWal(context.Background(), args, os.Stdout, os.Stderr)
}

// runWal runs `tern wal ...` and returns the exit code. Cancelling ctx stops
// a tail that reads from a broker, as SIGINT does, with exit code 0.
func runWal(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, walUsage)
		return 2
	}
	switch args[0] {
	case "tail":
		return walTail(ctx, args[1:], stdout, stderr)
	case "check":
		return walCheck(args[1:], stdout, stderr)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, walUsage)
		return 0
	}
	fmt.Fprintf(stderr, "tern wal: unknown command %q\n\n%s", args[0], walUsage)
	return 2
}

func walTail(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tern wal tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { walFlagUsage(fs) }
	dir := fs.String("data-dir", "", "the broker's data directory (required unless --admin is given)")
	from := fs.Uint64("from", 0, "first sequence number to print (0: the oldest kept)")
	follow := fs.Bool("follow", false, "keep printing new records as a running broker commits them (through its admin endpoint), "+
		"until interrupted; on a stopped broker's directory print what is there and exit")
	format := fs.String("format", "text", "output format: text, or json (one object per line)")
	admin := fs.String("admin", "", "HOST:PORT of the running broker's admin endpoint (default: read from DIR/admin.addr, "+
		"which a broker started with --admin-listen writes)")
	tokenFile := fs.String("admin-token-file", "", "file holding the bearer token of the broker's admin endpoint, if it requires one")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(stderr, "tern wal tail: "+format+"\n", args...)
		return code
	}
	switch {
	case *dir == "" && *admin == "":
		return fail(2, "--data-dir is required")
	case *format != "text" && *format != "json":
		return fail(2, "bad --format %q: want text or json", *format)
	}

	addr, where := *admin, "--admin"
	if *dir != "" {
		err := wal.Tail(*dir, *from, *follow, *format, stdout)
		if err == nil {
			return 0
		}
		if !errors.Is(err, wal.ErrLocked) {
			return fail(1, "%v", err)
		}
		// A running broker holds the directory: read through it.
		if addr == "" {
			where = filepath.Join(*dir, adminAddrFile)
			b, err := os.ReadFile(where)
			if errors.Is(err, os.ErrNotExist) {
				return fail(1, "%s is held by a running broker (or another tern wal tail/check), which publishes "+
					"no admin endpoint (no %s): reading a running broker's store goes through the broker; "+
					"start it with --admin-listen ADDR, or pass --admin HOST:PORT of its endpoint", *dir, where)
			}
			if err != nil {
				return fail(1, "%s is held by a running broker, and its admin address cannot be read: %v", *dir, err)
			}
			addr = strings.TrimSpace(string(b))
		}
	}
	token := ""
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fail(1, "cannot read the admin token: %v", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return fail(1, "the admin token file %s is empty", *tokenFile)
		}
	}
	if *follow {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt)
		defer stop()
	}
	return tailRemote(ctx, addr, where, token, *from, *follow, *format, stdout, stderr)
}

// adminClient talks to a broker's admin endpoint: directly (an HTTP proxy
// could hold back a stream), with no overall timeout since a follow lasts
// until interrupted.
var adminClient = &http.Client{Transport: &http.Transport{
	Proxy:                 nil,
	DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	ResponseHeaderTimeout: 10 * time.Second,
	DisableCompression:    true,
}}

// tailRemote copies GET /v1/wal/tail of the admin endpoint at addr (found
// in where) to stdout and returns the exit code: 0 when the stream is
// complete or ctx is cancelled, 1 when the broker cannot be reached or ends
// the stream early. A follow stream that ends has ended early.
func tailRemote(ctx context.Context, addr, where, token string, from uint64, follow bool, format string, stdout, stderr io.Writer) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "tern wal tail: "+format+"\n", args...)
		return 1
	}
	q := url.Values{"from": {strconv.FormatUint(from, 10)}, "format": {format}}
	if follow {
		q.Set("follow", "1")
	}
	u := url.URL{Scheme: "http", Host: addr, Path: "/v1/wal/tail", RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail("bad admin address %q (from %s): %v", addr, where, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // without the URL, which says nothing more
		}
		return fail("cannot reach the broker's admin endpoint at %s (from %s): %v", addr, where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg := readError(resp)
		if resp.StatusCode == http.StatusUnauthorized {
			msg += " (pass the broker's token with --admin-token-file)"
		}
		return fail("the broker's admin endpoint at %s answered %s: %s", addr, resp.Status, msg)
	}
	out := &errWriter{w: stdout}
	_, err = io.Copy(out, resp.Body)
	switch {
	case ctx.Err() != nil:
		return 0
	case out.err != nil:
		return fail("cannot write: %v", out.err)
	case err != nil:
		return fail("lost the connection to the broker at %s: %v", addr, err)
	}
	if reason := resp.Trailer.Get(tailErrorTrailer); reason != "" {
		return fail("the broker at %s ended the stream: %s", addr, reason)
	}
	if follow {
		return fail("the broker at %s closed the stream", addr)
	}
	return 0
}

// readError returns the message of an admin endpoint's JSON error answer,
// or its body as text.
func readError(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	return strings.TrimSpace(string(b))
}

// errWriter remembers the first write error, to tell it from a read error
// of io.Copy.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

func walCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tern wal check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { walFlagUsage(fs) }
	dir := fs.String("data-dir", "", "the broker's data directory (required); the broker must be stopped")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "tern wal check: --data-dir is required")
		return 2
	}
	if err := wal.Check(*dir, stdout); err != nil {
		if errors.Is(err, wal.ErrLocked) {
			fmt.Fprintf(stderr, "tern wal check: %s is in use, most likely by a running broker: "+
				"stop the broker first, check needs the directory to itself (%v)\n", *dir, err)
			return 2
		}
		fmt.Fprintln(stderr, "tern wal check:", err)
		return 1
	}
	return 0
}

// walFlagUsage prints the usage of `tern wal` and the flags of fs.
func walFlagUsage(fs *flag.FlagSet) {
	fmt.Fprintf(fs.Output(), "%s\nflags of %s:\n", walUsage, fs.Name())
	fs.PrintDefaults()
}

// parse parses flags; ok is false when the caller should return code.
func parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}
