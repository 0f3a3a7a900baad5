// Package servertest runs real Debian 12 servers on this machine for tests: each is an
// OpenSSH sshd on its own port of 127.0.0.1, and an SSH session into it runs inside a
// Debian root of its own, where apt-get, dpkg and sudo work as on a real server.
// Tests of fleet features (setup, deploy, audit over SSH) start them with Start:
//
//	f := servertest.Start(t) // web1 (root login) and web2 (sudo user deploy)
//	web1, web2 := f.Server("web1"), f.Server("web2")
//	upds("setup", "--host", web1.Target(), "--host", web2.Target(),
//		"--identity", f.Identity, "--known-hosts", f.KnownHosts, ...)
//	web2.Run(t, "dpkg-query -W hello")        // as root inside web2, not over SSH
//	web1.SSH(t, "ls /etc/apt/sources.list.d") // over SSH as web1.User
//
// or with their own servers: Start(t, Spec{Name: "db1", User: "admin"}, ...).
//
// # What a server is
//
// A server is the Debian 12 (bookworm) base root (debootstrap --variant=minbase with
// Packages: openssh-server, sudo, procps, curl, apt-utils, and python3, nginx, uwsgi and
// uwsgi-plugin-python3 that examples/hello depends on) under an overlay whose upper
// layer (Server.Changes) is the server's own: starting one copies nothing, and what a
// test installs lands in Changes only (directories can be renamed: redirect_dir=on). Its sshd runs as PID 1 of new mount, PID, UTS
// and IPC namespaces (unshare), chrooted into the overlay, with the network of this
// machine (127.0.0.1 is shared: a repository served by the test on 127.0.0.1 is
// reachable from every server). Inside: /proc (of the server's PID namespace), /sys
// (read-only), /run and /dev/shm (tmpfs), /dev/pts (a devpts instance of its own); the
// base root's /dev holds null, zero, full, random, urandom, tty, ptmx and console.
// The hostname is Spec.Name (in /etc/hostname and /etc/hosts).
//
// Like a fresh cloud server, and unlike this machine:
//
//   - apt has no source: /etc/apt/sources.list is a comment and /var/lib/apt/lists is
//     empty. Tests add their repository (on 127.0.0.1) under sources.list.d, or let
//     upds setup do it. Debian's own packages cannot be installed beyond the base's.
//   - No init system runs: /usr/sbin/policy-rc.d exits 101, so invoke-rc.d and
//     deb-systemd-invoke start no service (as in Debian's build chroots). A test of a
//     service may replace it (WriteFile) and run the daemon itself.
//   - dpkg runs with force-unsafe-io (as Debian's container images): no fsync.
//   - The login user (Spec.User) is root, which logs in with the fleet's key, or a user
//     created with useradd (home /home/USER, shell bash, group sudo, and
//     "USER ALL=(ALL:ALL) NOPASSWD: ALL" in /etc/sudoers.d) whose authorized_keys
//     holds the fleet's key; root cannot log in there. sshd uses Debian's
//     sshd_config (UsePAM yes) plus /etc/ssh/sshd_config.d/servertest.conf (Port,
//     ListenAddress 127.0.0.1, its ed25519 host key, no passwords).
//
// # The client side
//
// A Fleet has one client key, Identity (Signer for golang.org/x/crypto/ssh), authorized
// on every server; KnownHosts with every server's host key as [127.0.0.1]:PORT; and
// SSHConfig, an ssh_config(5) file with a "Host NAME" block per server (HostName,
// Port, User, IdentityFile, UserKnownHostsFile): `ssh -F f.SSHConfig web1` works, and
// Server.SSHConfigBlock writes such a block under any alias (for a test's
// ~/.ssh/config). Server.Target is "USER@127.0.0.1:PORT" and Server.KnownHostsLine
// its known_hosts line.
//
// # Looking inside
//
// Server.Run, Output, Command, ReadFile and WriteFile act as root inside the server
// (nsenter into its namespaces and chroot, not over SSH), so assertions see exactly
// what a root shell on the server sees, and a command that is still running when the
// server stops dies with it. Server.SSH and SSHOutput run a command over SSH as the
// login user. Server.Changes holds what changed on the server; Server.Root is a path
// to its / on this machine. Server.Processes lists what still runs in it (is apt still running
// after a Ctrl-C? also: Run(t, "pgrep -a apt")).
//
// # Stopping
//
// Start registers Fleet.Stop with t.Cleanup; a test may call it (or Server.Stop)
// earlier, to check what a stop leaves. Stop kills the server's PID 1 (through a
// pidfd), which kills every process in its PID namespace; the mount namespace, and so
// every mount of the server, goes with its last process and with the handles to its
// namespaces that the test process holds (closed once Stop saw no process left).
// Nothing is ever mounted in this machine's mount namespace, and Stop checks it: the
// server's directory is removed only when no process of the server is left and
// nothing is mounted under it. If the test process dies (a test timeout, kill -9), its
// servers die too (Pdeathsig on unshare, and unshare --kill-child), and the next Start
// removes the directories it left in $TMPDIR (upds-servertest-*).
//
// # The base root
//
// The first Start on a machine makes the base root with debootstrap from this machine's
// Debian mirror (HostMirror: apt's sources, or $UPDS_SERVERTEST_MIRROR), which takes
// a minute or two, in $UPDS_SERVERTEST_CACHE or /var/cache/upds-servertest, in a
// directory named after the suite, the architecture and a hash of the package list
// and of its preparation. Later Starts reuse it: starting two servers takes well under
// a second. Concurrent test processes build it once (an exclusive flock) and hold a
// shared flock while they use it; a base root that no configuration names any more is
// removed when a new one is made. When debootstrap cannot run (no mirror, no network),
// Start fails the test with debootstrap's last lines: it never skips. Everything needs
// root (debootstrap, mount, chroot), as the project's CI runs the tests; debootstrap
// comes from .ci/packages.
package servertest
