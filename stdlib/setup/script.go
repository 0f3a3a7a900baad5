package setup

import (
	"bytes"
	"errors"
	"strings"
	"text/template"
)

// Files the script keeps on the machine.
const (
	// LockFile serialises runs of the script on one machine. A run holds it, and so does
	// the apt-get it started, until apt-get ends: while it is locked, apt is still running.
	LockFile = "/run/lock/upds-setup.lock"
	// LogFile holds the last run's report and apt's output.
	LogFile = "/var/log/upds/setup.log"
)

// ExitConflicts is the script's exit status when the machine is set up but configuration
// files of the repository's packages kept local changes (the "conffile" report lines).
const ExitConflicts = 3

// Script returns a POSIX sh script that sets a machine up from the source and brings it up
// to date. It
//
//   - waits for an earlier run on the machine to end (LockFile);
//   - writes the key to /etc/apt/keyrings/NAME.asc and a deb822 NAME.sources with
//     Signed-By (each only when its content changed), after disabling every other apt
//     source for the same URL (in sources.list, *.list or *.sources: apt refuses two
//     sources of one URL with different Signed-By);
//   - runs apt-get update, repairs an interrupted dpkg (dpkg --configure -a) and unmet
//     dependencies (apt-get --fix-broken install);
//   - installs the roles given as arguments and upgrades every installed package of the
//     repository to its newest version, non-interactively, keeping locally changed
//     configuration files;
//
// and reports, one line each on stdout:
//
//	waited    for an earlier upds setup (...)
//	key       PATH written|unchanged (fingerprint FPR)
//	replaced  PATH: WHY            (another source for the URL, or its unused key)
//	source    PATH written|unchanged
//	repaired  COMMAND (WHY)
//	installed NAME VERSION
//	upgraded  NAME OLD -> NEW      (or downgraded)
//	removed   NAME VERSION
//	role      NAME VERSION
//	conffile  NAME PATH FILE       (FILE: PATH.dpkg-dist or PATH.dpkg-old)
//	nothing to do | done
//
// apt and dpkg run in a session of their own with their output in LogFile, which the
// script shows on stderr as it grows: a lost connection or Ctrl-C never stops them
// half-way. The script needs only sh, apt and the base system (dpkg, coreutils,
// util-linux, diffutils, sed, mawk). Options: --repo URL, --name NAME, --update=all|repo,
// --print-name. Exit status 0 on success, 1 on failure, 2 on bad usage, 3
// (ExitConflicts) when configuration files need a decision, 130 when interrupted.
func Script(s Source) ([]byte, error) {
	s, err := s.withDefaults()
	if err != nil {
		return nil, err
	}
	fpr, err := Fingerprint(s.Key)
	if err != nil {
		return nil, err
	}
	key := strings.TrimSpace(strings.ReplaceAll(string(s.Key), "\r\n", "\n"))
	for _, l := range strings.Split(key, "\n") {
		if l == heredocEnd {
			return nil, errors.New("setup: repository key contains the heredoc delimiter")
		}
	}
	var b bytes.Buffer
	err = scriptTemplate.Execute(&b, map[string]any{
		"URL": s.URL, "Base": strings.TrimSuffix(s.URL, "/"), "Name": s.Name, "Origin": originWord(s.Origin),
		"Suite": s.Suite, "Components": strings.Join(s.Components, " "), "Fingerprint": fpr, "Key": key, "End": heredocEnd,
		"Lock": LockFile, "Log": LogFile, "Conflicts": ExitConflicts, "Awk": sourcesAwk,
	})
	if err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

const heredocEnd = "UPDS_KEY_END"

// sourcesAwk rewrites an apt sources file (fmt=deb822 for .sources, fmt=line for
// sources.list and .list) without its entries for url (trailing slashes do not count):
// a one-line entry is commented out; a deb822 stanza loses the URI, and the whole stanza
// goes when it has no other. It prints the new file on stdout and, into the file side,
// "removed N" and "key PATH" for the Signed-By of each entry it took out.
const sourcesAwk = `
function norm(u) { sub(/\/+$/, "", u); return u }
function flush(   i, keep, others, k, us) {
	if (n == 0) return
	keep = 1; others = ""
	if (enabled && uris != "") {
		k = split(uris, us, /[ \t]+/)
		hit = 0
		for (i = 1; i <= k; i++) {
			if (us[i] == "") continue
			if (norm(us[i]) == url) hit = 1
			else others = others (others == "" ? "" : " ") us[i]
		}
		if (hit) {
			removed++
			if (signedby ~ /^\//) print "key " signedby > side
			if (others == "") keep = 0
		}
	}
	if (keep) {
		if (printed) print ""
		for (i = 1; i <= n; i++) {
			if (isuri[i] && hit && others != "") { if (!done) print "URIs: " others; done = 1; continue }
			print lines[i]
		}
		printed = 1
	}
	n = 0; uris = ""; signedby = ""; enabled = 1; hit = 0; done = 0; field = ""
	delete lines; delete isuri
}
BEGIN { url = norm(url); enabled = 1 }
fmt == "line" {
	if ($1 == "deb" || $1 == "deb-src") {
		i = 2; sb = ""
		if ($2 ~ /^\[/) {
			for (; i <= NF; i++) {
				if ($i ~ /^\[?signed-by=/) { sb = $i; sub(/^\[?signed-by=/, "", sb); sub(/\]$/, "", sb) }
				if ($i ~ /\]$/) { i++; break }
			}
		}
		if (norm($i) == url) {
			print "# disabled by upds setup (" name " is the source of this repository): " $0
			removed++
			if (sb ~ /^\//) print "key " sb > side
			next
		}
	}
	print
	next
}
/^[ \t]*$/ { flush(); next }
{
	n++; lines[n] = $0
	if ($0 ~ /^#/) next
	if ($0 ~ /^[ \t]/) { if (field == "uris") { isuri[n] = 1; uris = uris " " $0 } ; next }
	field = tolower($0); sub(/:.*/, "", field)
	v = $0; sub(/^[^:]*:[ \t]*/, "", v)
	if (field == "uris") { isuri[n] = 1; uris = v }
	if (field == "signed-by") signedby = v
	if (field == "enabled" && tolower(v) == "no") enabled = 0
}
END { flush(); print "removed " removed + 0 > side }
`

// The values put into the script were validated (withDefaults): no quote or shell
// metacharacter can reach it.
var scriptTemplate = template.Must(template.New("setup.sh").Parse(`#!/bin/sh
# Set this machine up from an upds apt repository, install server roles and bring every
# package of the repository up to date:
#
#   curl -fsSL {{if .Base}}{{.Base}}{{else}}URL{{end}}/setup.sh | sudo sh -s -- ROLE...
#   (or: wget -qO- URL/setup.sh | sudo sh -s -- ROLE...)
#
# Installs the repository key as /etc/apt/keyrings/NAME.asc and the deb822 source
# /etc/apt/sources.list.d/NAME.sources with Signed-By (disabling any other source of the
# same URL), runs apt-get update, repairs what an interrupted run left, installs the ROLE
# packages and upgrades every installed package of the repository. Running it again
# changes nothing and says so. apt's output goes to stderr and to {{.Log}}.
# Options: --repo URL      the repository (default: the one this file was published with)
#          --name NAME     file names under /etc/apt (default: {{if .Name}}{{.Name}}{{else}}from the URL{{end}})
#          --update=repo   update only this repository's index (default: --update=all)
#          --print-name    print the file name NAME and exit
# Exit status: 0 done, 1 failed, 2 bad usage, {{.Conflicts}} configuration files need a decision.
# Generated by upds from the repository's public key; do not edit.
set -eu

UPDS_URL='{{.URL}}'
UPDS_NAME='{{.Name}}'
UPDS_ORIGIN='{{.Origin}}'
UPDS_SUITE='{{.Suite}}'
UPDS_COMPONENTS='{{.Components}}'
UPDS_FINGERPRINT='{{.Fingerprint}}'
UPDS_LOCK='{{.Lock}}'
UPDS_LOG='{{.Log}}'

LC_ALL=C
export LC_ALL

log=/dev/null
apt_pid=

# say LINE: a report line on stdout and in the log. A lost stdout (the SSH connection
# dropped) does not stop the script.
say() {
	printf '%s\n' "$*" >>"$log"
	(printf '%s\n' "$*") 2>/dev/null || :
}
warn() { (printf 'setup.sh: %s\n' "$*" >&2) 2>/dev/null || :; }
die() { warn "$*"; exit 1; }
usage() {
	printf '%s\n' "usage: sh setup.sh [--repo URL] [--name NAME] [--update=all|repo] [--print-name] [ROLE...]" >&2
	exit 2
}

# default_name URL ORIGIN: the file name for a repository: the URL's host name and path,
# or, when the host is an IP address or localhost, the repository's Origin and the path.
default_name() {
	rest=${1#*://}
	host=${rest%%/*}
	path=${rest#"$host"}
	case $host in
	\[*) host=: ;;
	*) host=${host%%:*} ;;
	esac
	case $host in
	'' | *:* | localhost | *[!0-9.]*) ;;
	*) host= ;;
	esac
	case $host in
	'' | *:* | localhost) host=$2 ;;
	esac
	n=$(printf '%s' "$host$path" | tr '[:upper:]' '[:lower:]' | sed -e 's/[^a-z0-9.-]/-/g' -e 's/--*/-/g' -e 's/^[.-]*//' -e 's/[.-]*$//')
	printf '%s\n' "${n:-upds}"
}

# logged COMMAND...: runs COMMAND in a session of its own, with no terminal and its output
# only in the log, which tail shows on stderr as it grows. Neither Ctrl-C nor a lost
# connection reaches it: apt and dpkg are never stopped half-way. It holds the lock (fd
# 9) until it ends, also when this script is gone.
logged() {
	off=$(($(wc -c <"$log") + 1))
	setsid -w "$@" </dev/null >>"$log" 2>&1 &
	apt_pid=$!
	tail -c "+$off" -s 0.2 -f --pid="$apt_pid" "$log" >&2 2>/dev/null &
	tail_pid=$!
	rc=0
	wait "$apt_pid" || rc=$?
	apt_pid=
	wait "$tail_pid" 2>/dev/null || :
	return "$rc"
}

aptget() {
	logged env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

interrupted() {
	if [ -n "$apt_pid" ] && kill -0 "$apt_pid" 2>/dev/null; then
		warn "interrupted: apt-get (pid $apt_pid) goes on until it is done; its output is in $log"
	else
		warn "interrupted"
	fi
	exit 130
}

# installed_list: "NAME VERSION" of every installed package, sorted.
installed_list() {
	dpkg-query -W -f='${db:Status-Status} ${binary:Package} ${Version}\n' </dev/null 2>/dev/null |
		sed -n 's/^installed //p' | sort
}

# present_list: the names of the packages dpkg has (installed or half-way), sorted.
present_list() {
	dpkg-query -W -f='${db:Status-Status} ${Package}\n' </dev/null 2>/dev/null |
		sed -e '/^not-installed /d' -e '/^config-files /d' -e 's/^[^ ]* //' | sort -u
}

# repo_packages: the names of the packages of this repository, from apt's lists.
repo_packages() {
	# shellcheck disable=SC2016
	apt-get indextargets --format '$(FILENAME)' "Repo-URI: $base/" 'Identifier: Packages' </dev/null 2>/dev/null |
		while read -r f; do
			if [ -f "$f" ]; then
				/usr/lib/apt/apt-helper cat-file "$f" </dev/null
			fi
		done | sed -n 's/^Package: //p' | sort -u
}

# lookup NAME FILE: the version of NAME in FILE ("name version" lines).
lookup() {
	while read -r lp lv; do
		if [ "$lp" = "$1" ]; then
			printf '%s\n' "$lv"
			return 0
		fi
	done <"$2"
	return 0
}

# install_file TMP DEST: move TMP to DEST unless DEST already has the same content.
install_file() {
	if [ -f "$2" ] && cmp -s "$1" "$2"; then
		rm -f "$1"
		return 1
	fi
	chmod 0644 "$1"
	mv -f "$1" "$2"
}

# disable_others: take every other source of this URL out of apt's configuration, and
# the keys in /etc/apt/keyrings that only they used.
disable_others() {
	: >"$tmp/oldkeys"
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		if [ ! -f "$f" ] || [ "$f" = "$src" ] || ! grep -qF "$base" "$f"; then
			continue
		fi
		case $f in
		*.sources) fmt=deb822 ;;
		*) fmt=line ;;
		esac
		awk -v url="$base" -v fmt="$fmt" -v side="$tmp/side" -v name="$src" "$UPDS_AWK" "$f" >"$tmp/new" ||
			die "cannot read $f"
		[ "$(sed -n 's/^removed //p' "$tmp/side")" != 0 ] || continue
		sed -n 's/^key //p' "$tmp/side" >>"$tmp/oldkeys"
		if [ "$f" != /etc/apt/sources.list ] && ! grep -q '^[^#[:space:]]' "$tmp/new"; then
			rm -f "$f"
			say "replaced  $f: removed, it configured $url ($src does now)"
		else
			t=$(mktemp "${f%/*}/.upds-XXXXXX")
			cat "$tmp/new" >"$t"
			chmod 0644 "$t"
			mv -f "$t" "$f"
			say "replaced  $f: its entry for $url disabled ($src configures it now)"
		fi
	done
	sort -u "$tmp/oldkeys" | while read -r k; do
		case $k in
		"$key" | *[!A-Za-z0-9._/-]*) continue ;;
		/etc/apt/keyrings/*) ;;
		*) continue ;;
		esac
		if [ -f "$k" ] && ! grep -rqsF "$k" /etc/apt/sources.list /etc/apt/sources.list.d/; then
			rm -f "$k"
			say "replaced  $k: removed, no source uses it"
		fi
	done
}

# check_ours: refuse to overwrite NAME.sources when it is the source of another
# repository (another URL and another key); a repository that moved keeps its key.
check_ours() {
	[ -f "$src" ] || return 0
	cur=$(sed -n 's/^URIs:[[:space:]]*//p' "$src" | head -n 1)
	cur=${cur%% *}
	while [ "${cur%/}" != "$cur" ]; do cur=${cur%/}; done
	if [ "$cur" != "$base" ] && [ -f "$key" ] && ! cmp -s "$ktmp" "$key"; then
		printf 'setup.sh: %s is the source of another repository (%s, another key): pass --name NAME\n' "$src" "$cur" >&2
		exit 2
	fi
}

# repair: finish what an interrupted run left (dpkg --configure -a) and fix unmet
# dependencies (apt-get --fix-broken install).
repair() {
	if [ -n "$(dpkg --audit 2>/dev/null)" ]; then
		# dpkg does not get the lock (fd 9): a daemon a maintainer script starts would keep it.
		logged sh -c 'exec 9>&-; DEBIAN_FRONTEND=noninteractive exec dpkg --force-confdef --force-confold --configure -a' ||
			die "dpkg --configure -a failed (see above)"
		say "repaired  dpkg --configure -a (an earlier run was interrupted)"
	fi
	if ! apt-get -q check </dev/null >/dev/null 2>&1; then
		aptget -y --fix-broken install || die "apt-get --fix-broken install failed (see above)"
		say "repaired  apt-get --fix-broken install (unmet dependencies)"
	fi
}

# conffiles: "NAME PATH FILE" for each configuration file of a package of the repository
# with a .dpkg-dist (the package's new version, not installed) or .dpkg-old beside it.
conffiles() {
	dpkg-query -W -f='${Package}\n${Conffiles}\n' </dev/null 2>/dev/null | while read -r a _; do
		case $a in
		/*)
			for s in dpkg-dist dpkg-old; do
				if [ -n "$p" ] && [ -e "$a.$s" ]; then
					printf '%s %s %s\n' "$p" "$a" "$a.$s"
				fi
			done
			;;
		*)
			p=
			if grep -qxF "$a" "$tmp/repo"; then
				p=$a
			fi
			;;
		esac
	done
}

# upgrade ROLE...: install the roles and upgrade every package of the repository that dpkg
# has; report what changed since $tmp/before.
upgrade() {
	repo_packages >"$tmp/repo"
	present_list | comm -12 - "$tmp/repo" >"$tmp/upgrade"
	apt-mark showauto </dev/null 2>/dev/null | sort >"$tmp/auto"
	if [ $# -gt 0 ] || [ -s "$tmp/upgrade" ]; then
		# shellcheck disable=SC2046
		aptget -y install "$@" $(cat "$tmp/upgrade") || die "apt-get install failed (see above)"
	fi
	# What was installed as a dependency stays marked so.
	printf '%s\n' "$@" | sort >"$tmp/roles"
	comm -12 "$tmp/upgrade" "$tmp/auto" | comm -23 - "$tmp/roles" >"$tmp/reauto"
	if [ -s "$tmp/reauto" ]; then
		# shellcheck disable=SC2046
		apt-mark auto $(cat "$tmp/reauto") </dev/null >/dev/null 2>&1 || :
	fi
	installed_list >"$tmp/after"
	comm -13 "$tmp/before" "$tmp/after" >"$tmp/new"
	comm -23 "$tmp/before" "$tmp/after" >"$tmp/gone"
	while read -r p v; do
		n=$((n + 1))
		old=$(lookup "$p" "$tmp/gone")
		if [ -z "$old" ]; then
			say "installed $p $v"
		elif dpkg --compare-versions "$v" gt "$old"; then
			say "upgraded  $p $old -> $v"
		else
			say "downgraded $p $old -> $v"
		fi
	done <"$tmp/new"
	while read -r p v; do
		if [ -z "$(lookup "$p" "$tmp/new")" ]; then
			n=$((n + 1))
			say "removed   $p $v"
		fi
	done <"$tmp/gone"
	for r in "$@"; do
		say "role      $r $(dpkg-query -W -f='${Version}' "$r" </dev/null)"
	done
}

# shellcheck disable=SC2016
UPDS_AWK='{{.Awk}}'

main() {
	url=$UPDS_URL
	name=
	update=all
	print_name=
	while [ $# -gt 0 ]; do
		case $1 in
		--repo) [ $# -ge 2 ] || usage; url=$2; shift 2 ;;
		--repo=*) url=${1#--repo=}; shift ;;
		--name) [ $# -ge 2 ] || usage; name=$2; shift 2 ;;
		--name=*) name=${1#--name=}; shift ;;
		--update=all | --update=repo) update=${1#--update=}; shift ;;
		--print-name) print_name=1; shift ;;
		-h | --help) usage ;;
		--) shift; break ;;
		-*) printf 'setup.sh: unknown option %s\n' "$1" >&2; usage ;;
		*) break ;;
		esac
	done
	case $url in
	'') printf '%s\n' "setup.sh: no repository URL in this script: pass --repo URL" >&2; exit 2 ;;
	http://?* | https://?*) ;;
	*) printf 'setup.sh: --repo %s: want an http:// or https:// URL\n' "$url" >&2; exit 2 ;;
	esac
	case $url in
	*[!][A-Za-z0-9._~:/%+=,-]*) printf 'setup.sh: --repo %s: unexpected character\n' "$url" >&2; exit 2 ;;
	esac
	if [ -z "$name" ]; then
		if [ "$url" = "$UPDS_URL" ] && [ -n "$UPDS_NAME" ]; then
			name=$UPDS_NAME
		else
			name=$(default_name "$url" "$UPDS_ORIGIN")
		fi
	fi
	case $name in
	'' | .* | -* | *[!A-Za-z0-9._-]*) printf 'setup.sh: --name %s: use letters, digits and . _ -\n' "$name" >&2; exit 2 ;;
	esac
	if [ -n "$print_name" ]; then
		printf '%s\n' "$name"
		exit 0
	fi
	for r in "$@"; do
		case $r in
		'' | [!a-z0-9]* | *[!a-z0-9+.-]*) printf 'setup.sh: bad role (package) name: %s\n' "$r" >&2; exit 2 ;;
		esac
	done
	[ "$(id -u)" = 0 ] || die "must run as root: curl -fsSL URL/setup.sh | sudo sh -s -- ROLE..."
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script sets up Debian and Ubuntu machines"
	base=$url
	while [ "${base%/}" != "$base" ]; do base=${base%/}; done

	trap interrupted INT TERM
	mkdir -p "${UPDS_LOCK%/*}" "${UPDS_LOG%/*}"
	exec 9>>"$UPDS_LOCK"
	if ! flock -n 9; then
		say "waited    for an earlier upds setup on this machine to end (apt may still run: see $UPDS_LOG)"
		flock -w 1800 9 || die "an earlier upds setup still runs after 30 minutes: see $UPDS_LOG"
	fi
	log=$UPDS_LOG
	: >"$log"

	key=/etc/apt/keyrings/$name.asc
	src=/etc/apt/sources.list.d/$name.sources
	mkdir -p /etc/apt/keyrings /etc/apt/sources.list.d
	ktmp=$(mktemp /etc/apt/keyrings/.upds-XXXXXX)
	stmp=$(mktemp /etc/apt/sources.list.d/.upds-XXXXXX)
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"; rm -f "$ktmp" "$stmp"' EXIT
	changed=0
	n=0

	cat >"$ktmp" <<'{{.End}}'
{{.Key}}
{{.End}}
	check_ours
	if install_file "$ktmp" "$key"; then
		changed=1
		say "key       $key written (fingerprint $UPDS_FINGERPRINT)"
	else
		say "key       $key unchanged (fingerprint $UPDS_FINGERPRINT)"
	fi
	disable_others
	printf '%s\n' "# written by upds setup" "Types: deb" "URIs: $url" "Suites: $UPDS_SUITE" \
		"Components: $UPDS_COMPONENTS" "Signed-By: $key" >"$stmp"
	if install_file "$stmp" "$src"; then
		changed=1
		say "source    $src written"
	else
		say "source    $src unchanged"
	fi
	if grep -q '^replaced ' "$log"; then
		changed=1
	fi

	if [ "$update" = repo ]; then
		aptget -o Dir::Etc::SourceList="$src" -o Dir::Etc::SourceParts=/dev/null \
			-o APT::Get::List-Cleanup=0 update || die "apt-get update failed (see above)"
	else
		aptget update || die "apt-get update failed (see above)"
	fi
	installed_list >"$tmp/before"
	repair
	upgrade "$@"
	conffiles >"$tmp/conffiles"
	while read -r p f d; do
		say "conffile  $p $f $d"
	done <"$tmp/conffiles"
	if [ "$changed" = 0 ] && [ "$n" = 0 ] && ! grep -q '^repaired ' "$log"; then
		say "nothing to do"
	else
		say "done"
	fi
	if [ -s "$tmp/conffiles" ]; then
		warn "configuration files kept local changes: the packages' versions are beside them (.dpkg-dist), or your old ones are (.dpkg-old); merge, then delete that file"
		exit {{.Conflicts}}
	fi
}

main "$@"
`))
