//go:build faults

package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the ledgerd binary built once for the suite.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func ledgerdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ledgerd-faults-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ledgerd")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, "github.com/ledgerd/ledgerd/cmd/ledgerd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build ledgerd: %v", buildErr)
	}
	return binPath
}

// Process is one ledgerd serve process.
type Process struct {
	t    *testing.T
	name string
	env  []string
	port int
	log  *bytes.Buffer

	mu  sync.Mutex
	cmd *exec.Cmd
}

// URL is the process's base URL.
func (p *Process) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", p.port) }

// Start starts the process and waits until /healthz answers.
func (p *Process) Start() {
	p.t.Helper()
	p.mu.Lock()
	cmd := exec.Command(ledgerdBinary(p.t), "serve")
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Env = append(cmd.Env, fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", p.port))
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd = cmd
	p.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if p.Alive() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("%s did not become healthy; log:\n%s", p.name, p.log)
}

// Alive reports whether /healthz answers 200.
func (p *Process) Alive() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill() { p.signal(syscall.SIGKILL) }

// Stop sends SIGTERM (a graceful shutdown) and waits.
func (p *Process) Stop() { p.signal(syscall.SIGTERM) }

func (p *Process) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// RelayRole reads the relay's role from /readyz.
func (p *Process) RelayRole() string { return p.relayStatus().Role }

// RelayLeading reads from /readyz the partitions the relay leads.
func (p *Process) RelayLeading() []int { return p.relayStatus().Leading }

type relayStatus struct {
	Role    string `json:"role"`
	Leading []int  `json:"leading"`
}

func (p *Process) relayStatus() relayStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return relayStatus{}
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Relay relayStatus `json:"relay"`
		} `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body.Data.Relay
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// service runs a shell command that starts or stops a shared service, as
// DEVELOPERS.md documents them.
func service(t *testing.T, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Logf("service command %q: %v: %s", script, err, out)
	}
}

// The commands of DEVELOPERS.md.
const (
	postgresStart = `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | sort -V | tail -n 1) main start`
	postgresStop  = `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | sort -V | tail -n 1) main stop -m fast`
	rabbitStop    = `rabbitmqctl -q stop_app`
	rabbitStart   = `(rabbitmqctl -q start_app 2>/dev/null || rabbitmq-server -detached) && rabbitmqctl -q await_startup`
)

// portOpen reports whether something listens on 127.0.0.1:port.
func portOpen(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ensureServices restores PostgreSQL and RabbitMQ if a test left them down.
func ensureServices(t *testing.T) {
	t.Helper()
	if !portOpen(5432) {
		service(t, postgresStart)
	}
	if !portOpen(5672) {
		service(t, rabbitStart)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !(portOpen(5432) && portOpen(5672)) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
}
