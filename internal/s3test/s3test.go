package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"

	"github.com/troupe-dev/troupe/internal/objstore"
)

// BinaryEnv names the variable that gives the versitygw binary (make test
// sets it from hack/s3-server.sh). Without it, Binary runs the script,
// which prints the cached binary at once once it was built.
const BinaryEnv = "TROUPE_VERSITYGW"

// startTimeout bounds how long the server may take to answer: generous,
// because the machine tests run on is loaded.
const startTimeout = 60 * time.Second

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the versitygw binary: $TROUPE_VERSITYGW, or what
// hack/s3-server.sh prints (building it when it is not cached yet). A test
// that needs it fails, never skips, when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv(BinaryEnv); p != "" {
			binPath = p
			return
		}
		script, err := findScript()
		if err != nil {
			binErr = err
			return
		}
		var stderr bytes.Buffer
		cmd := exec.Command(script)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			binErr = fmt.Errorf("%s (set %s to a versitygw binary instead): %w\n%s", script, BinaryEnv, err, stderr.String())
			return
		}
		binPath = strings.TrimSpace(string(out))
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	if st, err := os.Stat(binPath); err != nil || st.IsDir() {
		t.Fatalf("versitygw binary %q: %v", binPath, err)
	}
	return binPath
}

// Server is a running versitygw.
type Server struct {
	// Endpoint is its URL, http://127.0.0.1:PORT (or the address StartOn
	// was given).
	Endpoint string
	// AccessKey and SecretKey are its root user's.
	AccessKey, SecretKey string
	// Dir is the directory its posix backend serves: one subdirectory a
	// bucket, one file an object.
	Dir string

	t       testing.TB
	bin     string
	args    []string
	logPath string
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
}

// Start runs versitygw on a free loopback port with a temporary directory
// and waits until it answers; the test's cleanup stops it.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartOn(t, "127.0.0.1")
}

// StartOn is Start on a free port of the address ip, for clients that
// are not on the loopback (the e2e suite's pods reach the node's bridge
// address).
func StartOn(t testing.TB, ip string) *Server {
	t.Helper()
	s := &Server{
		AccessKey: "troupe-" + randHex(t, 6),
		SecretKey: randHex(t, 20),
		Dir:       t.TempDir(),
		logPath:   filepath.Join(t.TempDir(), "versitygw.log"),
		t:         t,
		bin:       Binary(t),
	}
	t.Cleanup(s.Stop)
	// The port is picked by the kernel and released before versitygw binds
	// it; another process may take it in between, so a start that loses
	// the port is tried again on another.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.start(ip, ""); err == nil {
			return s
		}
		if !errors.Is(err, errExited) {
			break
		}
	}
	t.Fatalf("starting versitygw: %v\n%s", err, s.Log())
	return nil
}

var errExited = errors.New("versitygw exited")

// start runs the server on addr ("" picks a free port of ip) and waits
// for it.
func (s *Server) start(ip, addr string) error {
	if addr == "" {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return fmt.Errorf("picking a port: %w", err)
		}
		addr = l.Addr().String()
		l.Close()
	}
	// --keep-alive: without it versitygw closes every connection after one
	// request, which no production store does; clients would dial (and the
	// archive's CPU figures count) a connection per request.
	args := []string{"--port", addr, "--access", s.AccessKey, "--secret", s.SecretKey, "--quiet", "--keep-alive", "posix"}
	// The posix backend keeps object metadata (ETags, content types) in
	// extended attributes; where the temporary directory's file system has
	// none (tmpfs on older kernels, some overlays), in a sidecar directory.
	if !xattrsWork(s.Dir) {
		side := filepath.Join(filepath.Dir(s.Dir), filepath.Base(s.Dir)+".meta")
		if err := os.MkdirAll(side, 0o755); err != nil {
			return err
		}
		args = append(args, "--sidecar", side)
	}
	args = append(args, s.Dir)
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Dies with the test binary, even when that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("running %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.args, s.Endpoint = cmd, done, args, "http://"+addr
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-done:
			return fmt.Errorf("%w before it answered on %s (%v)", errExited, addr, cmd.ProcessState)
		default:
		}
		// Any HTTP answer (an unsigned request gets 403) means it serves.
		if resp, err := client.Get(s.Endpoint + "/"); err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("versitygw did not answer on %s within %s", addr, startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server and waits for it to exit; its directory stays, so
// Restart serves the same objects. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart starts the server again on the same port and directory (a store
// that was down and came back).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	addr := strings.TrimPrefix(s.Endpoint, "http://")
	if err := s.start("", addr); err != nil {
		s.t.Fatalf("restarting versitygw on %s: %v\n%s", addr, err, s.Log())
	}
}

// Log returns what the server printed.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// Config returns a store configuration for bucket and prefix on s.
func (s *Server) Config(bucket, prefix string) objstore.Config {
	return objstore.Config{
		Endpoint:  s.Endpoint,
		Bucket:    bucket,
		Prefix:    prefix,
		Region:    "us-east-1",
		PathStyle: true,
		AccessKey: s.AccessKey,
		SecretKey: s.SecretKey,
	}
}

// Bucket makes a bucket with a fresh name on s and returns a Store for it
// under prefix.
func (s *Server) Bucket(t testing.TB, prefix string) *objstore.S3 {
	t.Helper()
	bucket := "troupe-" + randHex(t, 6)
	st, err := objstore.New(s.Config(bucket, prefix))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := st.Client().MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("making bucket %s: %v\n%s", bucket, err, s.Log())
	}
	return st
}

// findScript finds hack/s3-server.sh above the working directory (a test's
// package directory).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding hack/s3-server.sh: %w", err)
	}
	for {
		p := filepath.Join(dir, "hack", "s3-server.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no hack/s3-server.sh above the working directory; set %s to a versitygw binary", BinaryEnv)
		}
		dir = parent
	}
}

func xattrsWork(dir string) bool {
	f, err := os.CreateTemp(dir, ".xattr-probe")
	if err != nil {
		return false
	}
	defer os.Remove(f.Name())
	f.Close()
	return unix.Setxattr(f.Name(), "user.troupe-probe", []byte("1"), 0) == nil
}

func randHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
