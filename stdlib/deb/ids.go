package deb

import "fmt"

// Static ids of Debian's base-passwd (passwd.master and group.master), which every Debian and
// Ubuntu system has with these numbers. gnats (41) was dropped in Debian 12 but is kept here for
// older targets.
var (
	wellKnownUsers = map[string]int{
		"root": 0, "daemon": 1, "bin": 2, "sys": 3, "sync": 4, "games": 5, "man": 6, "lp": 7,
		"mail": 8, "news": 9, "uucp": 10, "proxy": 13, "www-data": 33, "backup": 34, "list": 38,
		"irc": 39, "gnats": 41, "_apt": 42, "nobody": 65534,
	}
	wellKnownGroups = map[string]int{
		"root": 0, "daemon": 1, "bin": 2, "sys": 3, "adm": 4, "tty": 5, "disk": 6, "lp": 7,
		"mail": 8, "news": 9, "uucp": 10, "man": 12, "proxy": 13, "kmem": 15, "dialout": 20,
		"fax": 21, "voice": 22, "cdrom": 24, "floppy": 25, "tape": 26, "sudo": 27, "audio": 29,
		"dip": 30, "www-data": 33, "backup": 34, "operator": 37, "list": 38, "irc": 39, "src": 40,
		"gnats": 41, "shadow": 42, "utmp": 43, "video": 44, "sasl": 45, "plugdev": 46, "staff": 50,
		"games": 60, "users": 100, "nogroup": 65534,
	}
)

// WellKnownUID returns the static uid Debian gives the user name, and whether it has one.
func WellKnownUID(name string) (int, bool) { id, ok := wellKnownUsers[name]; return id, ok }

// WellKnownGID returns the static gid Debian gives the group name, and whether it has one.
func WellKnownGID(name string) (int, bool) { id, ok := wellKnownGroups[name]; return id, ok }

// resolveID turns (name, id) into the name and id written to the tar header.
func resolveID(kind, name string, id int, table map[string]int) (string, int, error) {
	if name == "" {
		name = "root"
	}
	if len(name) > 31 {
		return "", 0, fmt.Errorf("%s name %q is longer than 31 bytes", kind, name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == ':' {
			return "", 0, fmt.Errorf("%s name %q has invalid character %q", kind, name, c)
		}
	}
	if id > 0 || id == 0 && name == "root" {
		if id > 1<<21-1 {
			return "", 0, fmt.Errorf("%s %q: id %d is too large (at most 2097151)", kind, name, id)
		}
		return name, id, nil
	}
	if id < -1 {
		return "", 0, fmt.Errorf("%s %q: invalid id %d", kind, name, id)
	}
	known, ok := table[name]
	if !ok {
		field := "UID"
		if kind == "group" {
			field = "GID"
		}
		return "", 0, fmt.Errorf("%s %q has no static Debian id: give its numeric id too (%s, or owner/group ids in BUILD.star), and create the account on the target before installing", kind, name, field)
	}
	return name, known, nil
}
