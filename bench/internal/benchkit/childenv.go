package benchkit

import (
	"fmt"
	"os"
	"os/exec"
)

// StartChildEnv is StartChild with env as the child's environment (nil:
// this process's), for programs that must be kept out of the user's home
// directory (Caddy keeps its data and config under $HOME/.local and
// $HOME/.config).
func StartChildEnv(name string, argv, env []string, logPath string) (*Child, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.Env = env
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &Child{name: name, cmd: cmd, log: log, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// Pid is the child's process id, which is also its process group's id:
// the group holds its workers (nginx's) too.
func (c *Child) Pid() int { return c.cmd.Process.Pid }
