package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tern-mqtt/tern/perf/report"
)

// stopGrace is how long a command has to stop its broker and exit after
// SIGTERM: a broker gets 5 s before it is killed.
const stopGrace = 15 * time.Second

// build compiles perf/cmd/<name> for each of names into dir, in one go
// build.
func build(ctx context.Context, root, dir string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cannot build %s: %w\n%s", strings.Join(names, ", "), err, out)
	}
	return nil
}

// runStep runs the binary bin for s in root (the commands find the modules
// they build brokers from with go list, from their working directory). Its
// stderr goes to stderr as it comes; its stdout goes to <out>/<s.name>.txt,
// and each JSON line of it also to runs, wrapped by report.AppendLine.
func runStep(ctx context.Context, bin, root string, s step, out string, runs io.Writer, stderr io.Writer) error {
	txt, err := os.Create(filepath.Join(out, s.name+".txt"))
	if err != nil {
		return err
	}
	defer txt.Close()

	cmd := exec.CommandContext(ctx, bin, s.args...)
	cmd.Dir = root
	cmd.Stderr = stderr
	// SIGTERM, not the default SIGKILL: the command then stops its broker.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	copyErr := copyLines(pipe, txt, runs, s.name, s.command, stderr)
	if copyErr != nil {
		// Keep the command from blocking on a full pipe.
		_, _ = io.Copy(io.Discard, pipe)
	}
	err = cmd.Wait()
	return errors.Join(err, copyErr)
}

// copyLines copies r to txt, and the lines of r that are JSON objects also to
// runs, wrapped; a line that starts like one but does not parse is reported
// on stderr and kept in txt only.
func copyLines(r io.Reader, txt, runs io.Writer, scenario, command string, stderr io.Writer) error {
	br := bufio.NewReader(r)
	var wrapped []byte
	for {
		line, readErr := br.ReadBytes('\n')
		if len(line) > 0 {
			if _, err := txt.Write(line); err != nil {
				return err
			}
			if j := bytes.TrimSpace(line); bytes.HasPrefix(j, []byte("{")) {
				var err error
				wrapped, err = report.AppendLine(wrapped[:0], scenario, command, j)
				if err != nil {
					fmt.Fprintf(stderr, "suite: %s: a line that is not JSON left out of %s: %v\n", scenario, report.RunsFile, err)
				} else if _, err := runs.Write(wrapped); err != nil {
					return err
				}
			}
		}
		if errors.Is(readErr, io.EOF) {
			return nil
		}
		if readErr != nil {
			return readErr
		}
	}
}

// goList returns the directory of module path as the module in dir sees it.
func goList(ctx context.Context, dir, path string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", path)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("cannot locate module %s (run from inside perf/): %w", path, err)
	}
	return strings.TrimSpace(string(out)), nil
}
