// Command tern is the Tern MQTT broker and its tools, in one binary.
package main

import (
	"fmt"
	"os"
)

const version = "0.1.0-dev"

const usage = `usage: tern <command> [flags]

commands:
  serve     run the broker (arrives with the engine; see README "Status")
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
		fmt.Fprintln(os.Stderr, "tern serve: the broker engine has not landed yet; this build contains the codec only (README, Status)")
		os.Exit(1)
	case "help", "--help", "-h":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "tern: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}
