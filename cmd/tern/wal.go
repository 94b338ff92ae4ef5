package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/tern-mqtt/tern/wal"
)

const walUsage = `usage: tern wal <tail|check> --data-dir DIR [flags]

  tail   print the logged state changes in order (sequence, time, kind,
         client id, topic, QoS, size); works on the data directory of a
         stopped broker
  check  verify the store and report what is damaged
`

// walCmd runs `tern wal ...` and returns the exit code.
func walCmd(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, walUsage)
		return 2
	}
	switch args[0] {
	case "tail":
		fs := flag.NewFlagSet("tern wal tail", flag.ContinueOnError)
		dir := fs.String("data-dir", "", "the broker's data directory (required)")
		from := fs.Uint64("from", 0, "first sequence number to print")
		follow := fs.Bool("follow", false, "keep printing new records; on a running broker this needs the broker's endpoint (not yet available)")
		format := fs.String("format", "text", "output format: text or json")
		if code, ok := parse(fs, args[1:]); !ok {
			return code
		}
		if *dir == "" {
			return usageErr("--data-dir is required")
		}
		if err := wal.Tail(*dir, *from, *follow, *format, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "tern wal tail:", err)
			return 1
		}
		return 0
	case "check":
		fs := flag.NewFlagSet("tern wal check", flag.ContinueOnError)
		dir := fs.String("data-dir", "", "the broker's data directory (required)")
		if code, ok := parse(fs, args[1:]); !ok {
			return code
		}
		if *dir == "" {
			return usageErr("--data-dir is required")
		}
		if err := wal.Check(*dir, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "tern wal check:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "tern wal: unknown command %q\n\n%s", args[0], walUsage)
	return 2
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
		fmt.Fprintf(os.Stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}
