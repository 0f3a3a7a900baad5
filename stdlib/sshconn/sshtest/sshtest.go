// Package sshtest starts a real OpenSSH sshd on 127.0.0.1 for tests, with its own
// configuration, host key and authorized_keys in a temporary directory.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is the path of the OpenSSH server.
const SSHD = "/usr/sbin/sshd"

// SFTPServer is the path of OpenSSH's sftp-server.
const SFTPServer = "/usr/lib/openssh/sftp-server"

// Server is a running sshd.
type Server struct {
	Host       string // "127.0.0.1"
	Port       int
	User       string        // the user the client key is authorized for (the current user)
	Dir        string        // temporary directory holding config and keys
	HostKey    ssh.PublicKey // ed25519
	RSAHostKey ssh.PublicKey // with Config.RSAHostKey
	Identity   string        // private key file authorized to log in
	KnownHosts string        // known_hosts file with the server's host key
}

// WriteKey writes a new ed25519 private key in OpenSSH format to path (mode 0600)
// and returns its public key.
func WriteKey(path string) (ssh.PublicKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	return signer.PublicKey(), nil
}

// Config adjusts the server Start runs.
type Config struct {
	// RSAHostKey gives the server a second host key (RSA 3072) besides ed25519;
	// Server.RSAHostKey holds it. known_hosts still records only the ed25519 key.
	RSAHostKey bool
	// Extra lines for sshd_config (e.g. "AllowTcpForwarding no"); they come first, so
	// they win over the defaults.
	Extra string
}

// Start runs sshd for the duration of the test. It skips the test when sshd is not installed.
func Start(t testing.TB) *Server { return StartConfig(t, Config{}) }

// StartConfig is Start with a Config.
func StartConfig(t testing.TB, c Config) *Server {
	t.Helper()
	if _, err := os.Stat(SSHD); err != nil {
		t.Skipf("sshd not installed (%s): apt-get install openssh-server", SSHD)
	}
	dir := t.TempDir()
	s := &Server{Host: "127.0.0.1", Dir: dir, Identity: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts")}
	u := os.Getenv("USER")
	if u == "" {
		u = "root"
	}
	s.User = u
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	var err error
	if s.HostKey, err = WriteKey(hostKey); err != nil {
		t.Fatal(err)
	}
	hostKeys := "HostKey " + hostKey + "\n"
	if c.RSAHostKey {
		k, err := rsa.GenerateKey(rand.Reader, 3072)
		if err != nil {
			t.Fatal(err)
		}
		block, err := ssh.MarshalPrivateKey(k, "")
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "ssh_host_rsa_key")
		if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if s.RSAHostKey, err = ssh.NewPublicKey(&k.PublicKey); err != nil {
			t.Fatal(err)
		}
		hostKeys += "HostKey " + p + "\n"
	}
	clientPub, err := WriteKey(s.Identity)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll("/run/sshd", 0o755)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()

	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, s.HostKey)
	if err := os.WriteFile(s.KnownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := c.Extra
	if cfg != "" && cfg[len(cfg)-1] != '\n' {
		cfg += "\n"
	}
	cfg += fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
%sAuthorizedKeysFile %s
PidFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp %s
LogLevel ERROR
`, s.Port, hostKeys, filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"), SFTPServer)
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(SSHD, "-D", "-e", "-f", cfgPath)
	log, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		log.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("sshd exited: %s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// Addr returns "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }
