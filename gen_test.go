package creditd_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsFresh regenerates ent and gqlgen code in a copy of the
// module and fails if any file differs from the committed one: generated
// code is never edited by hand and never left stale.
func TestGeneratedCodeIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("regenerates the code: slow")
	}
	tmp := t.TempDir()
	if err := copyTree(".", tmp); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "generate", "./...")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go generate: %v\n%s", err, out)
	}
	var stale []string
	for _, dir := range []string{"ent", "graph"} {
		seen := map[string]bool{}
		filepath.WalkDir(filepath.Join(tmp, dir), func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err // tests are written by hand, never generated
			}
			rel, _ := filepath.Rel(tmp, p)
			seen[rel] = true
			want, _ := os.ReadFile(p)
			got, err := os.ReadFile(rel)
			if err != nil || !bytes.Equal(got, want) {
				stale = append(stale, rel)
			}
			return nil
		})
		filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") && !seen[p] {
				stale = append(stale, p+" (no longer generated)")
			}
			return err
		})
	}
	if len(stale) > 0 {
		t.Fatalf("generated code is stale; run `go generate ./...` and commit:\n  %s", strings.Join(stale, "\n  "))
	}
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == ".git" || e.Name() == "node_modules") {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, p)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
