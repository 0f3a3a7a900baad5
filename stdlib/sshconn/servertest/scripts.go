package servertest

import (
	"fmt"
	"strings"
)

// nsScript runs as PID 1 of a server's new namespaces (unshare), still in this
// machine's root: it mounts the server's file systems, all in the server's private
// mount namespace, configures the server inside its chroot and becomes its sshd.
// Arguments: base root, upper, work, mount point, hostname, setup script.
const nsScript = `set -eu
base=$1 upper=$2 work=$3 m=$4 name=$5 setup=$6
mount -t overlay servertest -o "lowerdir=$base,upperdir=$upper,workdir=$work,redirect_dir=on" "$m"
mount -t proc -o nosuid,nodev,noexec proc "$m/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$m/sys"
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs "$m/run"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$m/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$m/dev/pts"
printf '%s\n' "$name" >"$m/proc/sys/kernel/hostname"
chroot "$m" /bin/sh -eu <"$setup"
cd "$m"
exec chroot . /usr/sbin/sshd -D -e
`

// setupScript configures one server inside its chroot, as root, before sshd starts.
func setupScript(spec Spec, port int, hostKey, hostPub, clientPub string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `mkdir -p /run/sshd /run/lock
chmod 1777 /run/lock
printf '%%s\n' %[1]s >/etc/hostname
cat >/etc/hosts <<'EOF'
127.0.0.1	localhost
127.0.1.1	%[1]s
::1	localhost ip6-localhost ip6-loopback
EOF
umask 077
cat >/etc/ssh/ssh_host_ed25519_key <<'EOF'
%[2]sEOF
umask 022
cat >/etc/ssh/ssh_host_ed25519_key.pub <<'EOF'
%[3]sEOF
cat >/etc/ssh/sshd_config.d/servertest.conf <<'EOF'
# servertest: a test server on 127.0.0.1 with its own host key.
Port %[4]d
ListenAddress 127.0.0.1
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
EOF
`, spec.Name, hostKey, hostPub, port)
	home := "/root"
	if spec.User != "root" {
		home = "/home/" + spec.User
		groups := ""
		if !spec.NoSudo {
			groups = " --groups sudo"
		}
		fmt.Fprintf(&b, "useradd --create-home --shell /bin/bash%s -- %s\n", groups, spec.User)
		if !spec.NoSudo {
			fmt.Fprintf(&b, "printf '%%s\\n' '%[1]s ALL=(ALL:ALL) NOPASSWD: ALL' >/etc/sudoers.d/servertest-%[1]s\nchmod 0440 /etc/sudoers.d/servertest-%[1]s\n", spec.User)
		}
	}
	fmt.Fprintf(&b, `install -d -m 0700 -o %[1]s -g %[1]s %[2]s/.ssh
cat >%[2]s/.ssh/authorized_keys <<'EOF'
%[3]sEOF
chown %[1]s:%[1]s %[2]s/.ssh/authorized_keys
chmod 0600 %[2]s/.ssh/authorized_keys
`, spec.User, home, clientPub)
	return b.String()
}
