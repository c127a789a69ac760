package harness

import (
	"fmt"
	"os"
	"testing"
)

// RunSuite is a test package's TestMain around one shared set-up: it makes a
// work directory, runs setUp in it (which starts the fixtures and Envoy and
// returns the Envoy and a cleanup that stops whatever it started, also after
// an error), runs the tests, and checks that Envoy did not fail meanwhile. The
// directory (bootstrap, logs) is kept when anything failed or E2E_KEEP is
// set. It returns the exit code.
func RunSuite(m *testing.M, name string, setUp func(dir string) (envoy func() *Envoy, cleanup func(), err error)) int {
	dir, err := os.MkdirTemp("", "phantom-"+name+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	envoy, cleanup, err := setUp(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s set-up failed (work directory %s kept): %v\n", name, dir, err)
		if cleanup != nil {
			cleanup()
		}
		return 1
	}
	code := m.Run()
	if err := envoy().Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "Envoy failed during the suite: %v\n", err)
		code = 1
	}
	cleanup()
	if code != 0 || os.Getenv("E2E_KEEP") != "" {
		fmt.Fprintf(os.Stderr, "%s work directory (bootstrap, logs): %s\n", name, dir)
	} else {
		_ = os.RemoveAll(dir)
	}
	return code
}
