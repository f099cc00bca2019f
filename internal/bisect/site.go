package bisect

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// site switches the items of a real site with shell commands, keeping the
// journal one step ahead: an item is listed in the journal before its
// disable command runs, and dropped from it after its enable command
// succeeded.
type site struct {
	items       []string
	disable     string
	shell       Shell
	journalPath string
	journal     Journal
	disabled    []bool // by item index: disabled now, or maybe (a command failed)
	log         io.Writer
}

// newSite creates the journal (failing with ErrUnfinished when one exists)
// for a site whose items are all enabled now.
func newSite(items []string, disable, enable string, sh Shell, journalPath string, log io.Writer) (*site, error) {
	dir := sh.Dir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("working directory: %w", err)
		}
		dir = wd
	}
	sh.Dir = dir
	timeout := sh.Timeout
	if timeout <= 0 {
		timeout = DefaultCommandTimeout
	}
	s := &site{
		items: items, disable: disable, shell: sh, journalPath: journalPath,
		journal: Journal{
			Version: journalVersion, PID: os.Getpid(), Started: time.Now().UTC().Truncate(time.Second),
			Dir: dir, Enable: enable, CommandTimeout: timeout.String(), Disabled: []string{},
		},
		disabled: make([]bool, len(items)),
		log:      log,
	}
	if err := createJournal(journalPath, &s.journal); err != nil {
		return nil, err
	}
	return s, nil
}

// syncJournal writes the journal with the items disabled now.
func (s *site) syncJournal() error {
	s.journal.Disabled = s.journal.Disabled[:0]
	for i, d := range s.disabled {
		if d {
			s.journal.Disabled = append(s.journal.Disabled, s.items[i])
		}
	}
	return writeJournal(s.journalPath, &s.journal)
}

// apply puts the site in the state where exactly enabled (indices) is
// enabled: the items to enable first, then the items to disable. A command
// in hand is never killed by ctx (a half-run wp-cli is worse than a late
// stop): ctx is checked between commands.
func (s *site) apply(ctx context.Context, enabled []int) error {
	want := make([]bool, len(s.items)) // want[i]: disabled in the new state
	for i := range want {
		want[i] = true
	}
	for _, i := range enabled {
		want[i] = false
	}
	run := context.WithoutCancel(ctx)
	changed := false
	for i, it := range s.items {
		if !s.disabled[i] || want[i] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return s.afterEnables(changed, err)
		}
		if _, err := s.shell.Run(run, Expand(s.journal.Enable, it)); err != nil {
			return s.afterEnables(changed, err)
		}
		s.disabled[i] = false
		changed = true
	}
	var toDisable []int
	for i := range s.items {
		if want[i] && !s.disabled[i] {
			toDisable = append(toDisable, i)
		}
	}
	if len(toDisable) == 0 {
		return s.afterEnables(changed, nil)
	}
	if err := ctx.Err(); err != nil {
		return s.afterEnables(changed, err)
	}
	for _, i := range toDisable {
		s.disabled[i] = true
	}
	if err := s.syncJournal(); err != nil {
		for _, i := range toDisable {
			s.disabled[i] = false
		}
		return err
	}
	for n, i := range toDisable {
		if n > 0 {
			if err := ctx.Err(); err != nil {
				return err // the journal lists the rest too: enabling them is harmless
			}
		}
		if _, err := s.shell.Run(run, Expand(s.disable, s.items[i])); err != nil {
			return err
		}
	}
	return nil
}

// afterEnables writes the journal when items were enabled, and returns err
// (or the journal's error).
func (s *site) afterEnables(changed bool, err error) error {
	if !changed {
		return err
	}
	if jerr := s.syncJournal(); err == nil {
		return jerr
	}
	return err
}

// restore enables every item disabled, whatever ctx says (bounded by the
// commands' timeout), and removes the journal.
func (s *site) restore(ctx context.Context) ([]string, error) {
	s.journal.Disabled = s.journal.Disabled[:0]
	for i, d := range s.disabled {
		if d {
			s.journal.Disabled = append(s.journal.Disabled, s.items[i])
		}
	}
	enabled, err := restoreJournal(context.WithoutCancel(ctx), s.journalPath, &s.journal, s.shell, s.log)
	for i := range s.disabled {
		s.disabled[i] = false
	}
	for _, it := range s.journal.Disabled {
		for i := range s.items {
			if s.items[i] == it {
				s.disabled[i] = true
			}
		}
	}
	return enabled, err
}
