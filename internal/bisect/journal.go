package bisect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// journalVersion is the format of the journal file.
const journalVersion = 1

// maxJournalBytes bounds the journal file read by ReadJournal.
const maxJournalBytes = 4 << 20

// Errors about the journal, matched with errors.Is.
var (
	// ErrNoJournal means there is no journal: nothing to restore.
	ErrNoJournal = errors.New("no bisect journal")
	// ErrBadJournal means the journal file cannot be read as one.
	ErrBadJournal = errors.New("not a bisect journal")
	// ErrUnfinished means a journal exists: a bisect is running or did not
	// finish, and its items must be restored first.
	ErrUnfinished = errors.New("an unfinished bisect")
	// ErrStillRunning means the process that wrote the journal is alive.
	ErrStillRunning = errors.New("the bisect that wrote the journal is still running")
)

// Journal is what a bisect in progress keeps on disk, written before any
// item is disabled: enough to enable every item it disabled, after a crash.
type Journal struct {
	// Version is the file's format, 1.
	Version int `json:"version"`
	// PID is the process id of the bisect.
	PID int `json:"pid"`
	// Started is when the bisect started.
	Started time.Time `json:"started"`
	// Dir is the working directory of the commands.
	Dir string `json:"dir"`
	// Enable is the command that enables an item, with {} for the item.
	Enable string `json:"enable"`
	// CommandTimeout bounds each command, as a Go duration ("2m0s").
	CommandTimeout string `json:"command_timeout"`
	// Disabled lists the items that are (or may be) disabled now.
	Disabled []string `json:"disabled"`
}

// DefaultJournalPath returns where the journal goes when none is given:
// $XDG_STATE_HOME/gatewise/bisect-journal.json, or
// ~/.local/state/gatewise/bisect-journal.json.
func DefaultJournalPath() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no place for the journal (give --journal FILE): %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "gatewise", "bisect-journal.json"), nil
}

// ReadJournal reads the journal at path. A missing file is ErrNoJournal.
func ReadJournal(path string) (*Journal, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s", ErrNoJournal, path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJournalBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxJournalBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadJournal, path, maxJournalBytes)
	}
	var j Journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadJournal, path, err)
	}
	switch {
	case j.Version != journalVersion:
		return nil, fmt.Errorf("%w: %s: version %d, want %d", ErrBadJournal, path, j.Version, journalVersion)
	case !strings.Contains(j.Enable, "{}"):
		return nil, fmt.Errorf("%w: %s: the enable command %q has no {}", ErrBadJournal, path, j.Enable)
	}
	if _, err := time.ParseDuration(j.CommandTimeout); err != nil {
		return nil, fmt.Errorf("%w: %s: command_timeout: %v", ErrBadJournal, path, err)
	}
	for _, it := range j.Disabled {
		if it == "" || strings.ContainsAny(it, "\x00\n\r") {
			return nil, fmt.Errorf("%w: %s: bad item %q", ErrBadJournal, path, it)
		}
	}
	return &j, nil
}

// createJournal writes j at path, failing with ErrUnfinished if a journal
// is there already (the file appears whole or not at all).
func createJournal(path string, j *Journal) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	tmp, err := writeTemp(path, j)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return unfinished(path)
		}
		return fmt.Errorf("journal: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// unfinished describes the journal at path for ErrUnfinished.
func unfinished(path string) error {
	j, err := ReadJournal(path)
	if err != nil {
		return fmt.Errorf("%w: %s exists but cannot be read (%v): look at it, then remove it", ErrUnfinished, path, err)
	}
	return fmt.Errorf("%w (pid %d, started %s) left %d items disabled: run gatewise bisect --restore --journal %s first",
		ErrUnfinished, j.PID, j.Started.Format(time.RFC3339), len(j.Disabled), Quote(path))
}

// writeJournal replaces the journal at path with j, atomically.
func writeJournal(path string, j *Journal) error {
	tmp, err := writeTemp(path, j)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("journal: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes j to a new file beside path, synced to disk, and
// returns its name.
func writeTemp(path string, j *Journal) (string, error) {
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return "", fmt.Errorf("journal: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return "", fmt.Errorf("journal: %w", err)
	}
	_, werr := f.Write(append(data, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("journal: %w", err)
	}
	return f.Name(), nil
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("journal: sync %s: %w", dir, err)
	}
	return nil
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Force restores even when the process that wrote the journal seems
	// alive (its pid may have been reused).
	Force bool
	// Log receives one line per item enabled. Nil means none.
	Log io.Writer
}

// Restore finishes the work of a bisect that did not end: it enables every
// item the journal at path lists as disabled, with the journal's enable
// command, and removes the journal. It returns the items enabled. When a
// command fails, the journal keeps the items left and the error says so;
// ErrNoJournal means there was nothing to do.
func Restore(ctx context.Context, path string, opts RestoreOptions) ([]string, error) {
	j, err := ReadJournal(path)
	if err != nil {
		return nil, err
	}
	if j.PID != os.Getpid() && processAlive(j.PID) && !opts.Force {
		return nil, fmt.Errorf("%w (pid %d): it restores the site itself when it ends or is interrupted; if that process is not a bisect, use --force", ErrStillRunning, j.PID)
	}
	timeout, _ := time.ParseDuration(j.CommandTimeout) // checked by ReadJournal
	return restoreJournal(ctx, path, j, Shell{Dir: j.Dir, Timeout: timeout}, opts.Log)
}

// restoreJournal enables the items of j.Disabled one by one, keeping the
// journal up to date, and removes the journal when none is left.
func restoreJournal(ctx context.Context, path string, j *Journal, sh Shell, log io.Writer) ([]string, error) {
	if log == nil {
		log = io.Discard
	}
	var enabled []string
	var failed []error
	var left []string
	for _, it := range j.Disabled {
		if _, err := sh.Run(ctx, Expand(j.Enable, it)); err != nil {
			failed = append(failed, err)
			left = append(left, it)
			continue
		}
		enabled = append(enabled, it)
		fmt.Fprintf(log, "enabled %s again\n", it)
	}
	j.Disabled = left
	if len(left) > 0 {
		werr := writeJournal(path, j)
		return enabled, fmt.Errorf("%d items could not be enabled again (%s): %w", len(left), strings.Join(left, ", "), errors.Join(append(failed, werr)...))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return enabled, fmt.Errorf("every item is enabled again, but the journal could not be removed: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return enabled, err
	}
	return enabled, nil
}
