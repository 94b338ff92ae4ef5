// Command tern is the Tern MQTT broker and its tools, in one binary.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const version = "0.1.0-dev"

const usage = `usage: tern <command> [flags]

commands:
  serve     run the broker (tern serve --help lists its flags)
  pub       publish a message, mosquitto_pub style (tern pub --help)
  sub       subscribe and print messages, mosquitto_sub style (tern sub --help)
  ctl       ask a running broker through its admin API: sessions, subscriptions, retained, stats (tern ctl help)
  wal       inspect a data directory: tail, check (tern wal for details)
  passwd    add, change or delete a user of a password file (tern passwd -h)
  version   print the version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "version", "--version", "-v":
		fmt.Println("tern", version)
	case "serve":
		os.Exit(serve(os.Args[2:]))
	case "pub":
		os.Exit(pubCmd(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	case "sub":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := subCmd(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	case "ctl":
		os.Exit(ctlCmd(os.Args[2:], os.Stdout, os.Stderr))
	case "wal":
		os.Exit(walCmd(os.Args[2:]))
	case "passwd":
		os.Exit(passwdCmd(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	case "gendocs": // writes docs/configuration.md from the serve flags (make docs)
		os.Exit(gendocsCmd(os.Args[2:]))
	case "help", "--help", "-h":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "tern: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}
