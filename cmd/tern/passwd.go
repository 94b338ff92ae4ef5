package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/tern-mqtt/tern/auth"
)

// passwdCmd adds or changes a user of a password file (creating the file),
// or deletes one with -D. The password is prompted for twice, without echo,
// on a terminal; otherwise it is the first line of standard input, for
// scripts. It writes $7$ hashes, which Mosquitto reads too, or with -scram
// SCRAM-SHA-256 keys, which it does not.
func passwdCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tern passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	del := fs.Bool("D", false, "delete the user")
	iterations := fs.Int("iterations", 0, "PBKDF2 iterations of the hash (each CONNECT pays for them); default 1000, or 4096 with -scram")
	scram := fs.Bool("scram", false, "write SCRAM-SHA-256 keys (for 5.0 enhanced authentication; plain passwords work too) instead of a $7$ hash; Mosquitto does not read these lines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tern passwd [-D] [-scram] [-iterations N] FILE USER\n\nThe password is read from the terminal (twice, without echo) or from the first line of standard input.\nA running broker reads the file again on SIGHUP.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *iterations == 0 {
		*iterations = auth.DefaultIterations
		if *scram {
			*iterations = auth.ScramIterations
		}
	}
	if *iterations < 1 || *iterations > auth.MaxIterations { // checked before hashing for minutes
		fmt.Fprintf(stderr, "tern passwd: -iterations must be 1 to %d\n", auth.MaxIterations)
		return 2
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return 2
	}
	file, user := fs.Arg(0), fs.Arg(1)
	if *del {
		if err := auth.SetPassword(file, user, ""); err != nil {
			fmt.Fprintln(stderr, "tern passwd:", err)
			return 1
		}
		return 0
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "tern passwd:", err)
		return 1
	}
	hash := auth.Hash7(pw, *iterations)
	if *scram {
		hash = auth.ScramHash(pw, *iterations)
	}
	if err := auth.SetPassword(file, user, hash); err != nil {
		fmt.Fprintln(stderr, "tern passwd:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: password for %q set\n", file, user)
	return 0
}

func readPassword(stdin io.Reader, prompt io.Writer) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return nil, err
		}
		fmt.Fprint(prompt, "Reenter password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return nil, err
		}
		if string(a) != string(b) {
			return nil, errors.New("the passwords do not match")
		}
		if len(a) == 0 {
			return nil, errors.New("empty password")
		}
		return a, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return nil, errors.New("no password on standard input")
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty password")
	}
	return []byte(line), nil
}
