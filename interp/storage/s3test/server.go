package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Bucket is the bucket every server starts with.
const Bucket = "upds"

// Region is the region the clients name (SeaweedFS accepts any).
const Region = "us-east-1"

// Server is a running SeaweedFS with its S3 gateway on 127.0.0.1.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT, the S3 endpoint (path-style)
	AccessKey string // an identity allowed everything
	SecretKey string
	Dir       string // data and log directory

	cmd  *exec.Cmd
	done chan error // the exit of cmd
}

var shared struct {
	sync.Mutex
	srv *Server
	dir string
	err error
}

// Shared returns the server of this test process, started by the first test that asks for
// it: tests that share it use prefixes of their own. TestMain stops it with StopShared
// after m.Run (if the process dies first, the server dies with it).
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.srv == nil && shared.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
		defer cancel()
		shared.dir, shared.err = os.MkdirTemp("", "upds-s3test-")
		if shared.err == nil {
			shared.srv, shared.err = StartServer(ctx, shared.dir, t.Logf)
		}
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

// StopShared stops the server Shared started, if any, and removes its data.
func StopShared() {
	shared.Lock()
	defer shared.Unlock()
	if shared.srv != nil {
		shared.srv.Stop()
		shared.srv = nil
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
		shared.dir = ""
	}
}

// StartServer builds SeaweedFS if needed (Binary), starts `weed server` with its filer and
// S3 gateway on free loopback ports, data in dir, and waits until the gateway answers and
// Bucket exists. Requests signed with AccessKey may do anything; anonymous requests may read
// (apt reads the bucket over plain HTTP). The caller stops it (Shared: tests; bench/s3).
func StartServer(ctx context.Context, dir string, logf func(format string, args ...any)) (*Server, error) {
	bin, err := Binary(ctx, logf)
	if err != nil {
		return nil, err
	}
	var s *Server
	for attempt := 0; ; attempt++ {
		s, err = start(ctx, bin, dir)
		if err == nil || attempt == 2 {
			return s, err // a port taken between choosing it and weed binding it: try again
		}
		logf("s3test: %v; trying other ports", err)
	}
}

func start(ctx context.Context, bin, dir string) (*Server, error) {
	ports, err := freePorts(8)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 16)
	rand.Read(key)
	s := &Server{
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(ports[6]),
		AccessKey: "upds-test",
		SecretKey: hex.EncodeToString(key),
		Dir:       dir,
		done:      make(chan error, 1),
	}
	conf := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(conf, s.config(), 0o600); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "weed.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	p := func(i int) string { return strconv.Itoa(ports[i]) }
	s.cmd = exec.Command(bin, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir="+data,
		"-master.port="+p(0), "-master.port.grpc="+p(1), "-master.telemetry=false",
		"-master.volumeSizeLimitMB=64", "-volume.max=0",
		"-volume.port="+p(2), "-volume.port.grpc="+p(3),
		"-filer", "-filer.port="+p(4), "-filer.port.grpc="+p(5),
		"-filer.localSocket="+filepath.Join(dir, "filer.sock"),
		"-s3", "-s3.port="+p(6), "-s3.port.grpc="+p(7), "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.localSocket="+filepath.Join(dir, "s3.sock"), "-s3.config="+conf)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("s3test: start weed: %w", err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w; last lines of %s:\n%s", err, log.Name(), tail(log.Name(), 30))
	}
	return s, nil
}

// config is the S3 gateway's identities: the test's, allowed everything, and anonymous
// readers.
func (s *Server) config() []byte {
	type cred struct {
		AccessKey string `json:"accessKey"`
		SecretKey string `json:"secretKey"`
	}
	type identity struct {
		Name        string   `json:"name"`
		Credentials []cred   `json:"credentials,omitempty"`
		Actions     []string `json:"actions"`
	}
	b, _ := json.Marshal(map[string][]identity{"identities": {
		{Name: "upds", Credentials: []cred{{s.AccessKey, s.SecretKey}}, Actions: []string{"Admin", "Read", "Write", "List", "Tagging"}},
		{Name: "anonymous", Actions: []string{"Read"}},
	}})
	return b
}

// waitReady waits until the gateway creates Bucket (a minute at most).
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c := s.Client()
	var err error
	for {
		select {
		case err := <-s.done:
			return fmt.Errorf("s3test: weed exited: %v", err)
		default:
		}
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = c.CreateBucket(rctx, &s3.CreateBucketInput{Bucket: aws.String(Bucket)})
		if err == nil || strings.Contains(err.Error(), "BucketAlreadyOwnedByYou") {
			// The first write makes the volume servers grow volumes: seconds, paid here.
			_, err = c.PutObject(rctx, &s3.PutObjectInput{Bucket: aws.String(Bucket), Key: aws.String(".s3test-ready"), Body: strings.NewReader("ready")})
		}
		rcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("s3test: the S3 gateway at %s did not come up: %v", s.Endpoint, err)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// Client returns an S3 client of the server's identity.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// Env is the standard AWS environment that points a client at the server.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + Region,
	}
}

// Setenv sets Env for the rest of the test (and clears AWS variables that would
// override it); the test must not be parallel.
func (s *Server) Setenv(t testing.TB) {
	t.Helper()
	for _, v := range []string{"AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(s.Dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(s.Dir, "no-aws-credentials"))
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// URL is where an HTTP client (apt) reads the objects under prefix of Bucket.
func (s *Server) URL(prefix string) string {
	u := s.Endpoint + "/" + Bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u
}

// Stop stops the server: SIGTERM, then SIGKILL after 2 seconds, to its whole process group.
func (s *Server) Stop() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	pid := s.cmd.Process.Pid
	syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(2 * time.Second):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
	return nil
}

// freePorts returns n distinct TCP ports free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
