#!/bin/bash
# Publishing real Debian packages: upds repo publish next to reprepro includedeb and
# apt-ftparchive, in one run on the same files (the list in ../shared/bench/real-debs.txt,
# fetched once with apt-get download and kept in a cache outside the repository).
#
#   bash bench/realdebs.sh                  # median of RUNS=3
#   RUNS=5 DEBS=/var/cache/upds-bench-debs LIST=../shared/bench/real-debs.txt bash bench/realdebs.sh
#
# Installs reprepro and apt-utils (apt-ftparchive) when missing. Prints a Markdown table of
# wall and CPU (user + system) seconds, median of RUNS runs each, and each tool's wall time
# over reprepro's. (Adding one package to a big repository: bench/repo.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
# The list sits next to the main checkout (../shared), also when this is a worktree.
LIST=${LIST:-$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null || echo .git)/../../shared/bench/real-debs.txt}
DEBS=${DEBS:-/var/cache/upds-bench-debs}

missing=()
command -v reprepro >/dev/null || missing+=(reprepro)
command -v apt-ftparchive >/dev/null || missing+=(apt-utils)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
	apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "bench/realdebs.sh: go not installed" >&2; exit 1; }
[ -r "$LIST" ] || { echo "bench/realdebs.sh: no package list $LIST" >&2; exit 1; }

# The packages: fetched once (apt-get download picks the candidate version of each name).
mkdir -p "$DEBS"
want=$(grep -v '^#' "$LIST" | awk 'NF {print $1}')
need=()
for p in $want; do
	compgen -G "$DEBS/${p}_*.deb" >/dev/null || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "fetching ${#need[@]} packages into $DEBS" >&2
	(cd "$DEBS" && apt-get download "${need[@]}" >/dev/null 2>&1) || {
		echo "bench/realdebs.sh: apt-get download failed (run apt-get update?)" >&2; exit 1; }
fi
files=()
for p in $want; do
	f=$(compgen -G "$DEBS/${p}_*.deb" | sort -V | tail -1)
	files+=("$f")
done
count=${#files[@]}
mb=$(du -cm "${files[@]}" | tail -1 | cut -f1)

WORK=$(mktemp -d /var/tmp/upds-realdebs.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
go build -o "$WORK/upds" ./cmd/upds
go build -o "$WORK/repo" ./bench/repo
mkdir "$WORK/debs"
ln "${files[@]}" "$WORK/debs/" 2>/dev/null || cp "${files[@]}" "$WORK/debs/"

# measure CMD...: "wall cpu" in seconds (CPU = user + system of CMD and its children).
measure() {
	/usr/bin/time -f '%e %U %S' -o "$WORK/time" "$@" >"$WORK/out" 2>&1 || {
		echo "bench/realdebs.sh: failed: $*" >&2; cat "$WORK/out" >&2; exit 1; }
	awk '{printf "%.2f %.2f\n", $1, $2 + $3}' "$WORK/time"
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

reprepro_conf() {
	mkdir -p "$1/conf"
	printf 'Origin: bench\nLabel: bench\nCodename: stable\nArchitectures: amd64\nComponents: main\n' >"$1/conf/distributions"
}

# upds_fresh DIR: a fresh repository with every package in incoming/.
upds_fresh() {
	rm -rf "$1"
	"$WORK/upds" repo init "$1" --arch amd64,all >/dev/null
	ln "$WORK"/debs/*.deb "$1/incoming/"
	sync
}

declare -A W C
add() { W[$1]+="${2%% *} "; C[$1]+="${2##* } "; }
for _ in $(seq "$RUNS"); do
	upds_fresh "$WORK/u"
	add upds "$(measure "$WORK/upds" repo publish "$WORK/u")"
	upds_fresh "$WORK/u"
	add updsfull "$(measure "$WORK/upds" repo publish --verify=full "$WORK/u")"
	rm -rf "$WORK/rr"; reprepro_conf "$WORK/rr"; sync
	add rr "$(measure reprepro -b "$WORK/rr" includedeb stable "$WORK"/debs/*.deb)"
	rm -rf "$WORK/aft"; mkdir -p "$WORK/aft/dists/stable/main/binary-amd64"; sync
	add aft "$(measure sh -c "cd '$WORK' && apt-ftparchive packages debs > aft/dists/stable/main/binary-amd64/Packages &&
		gzip -9kf aft/dists/stable/main/binary-amd64/Packages &&
		apt-ftparchive release aft/dists/stable > aft/Release && mv aft/Release aft/dists/stable/Release")"
	# Reading the packages alone, as much as each --verify level does (and walking
	# data.tar's tar headers without md5sums).
	for m in control head walk full; do
		add "read$m" "$(measure "$WORK/repo" read "$m" "$WORK/debs")"
	done
done

med() { median ${1}; }
rrw=$(med "${W[rr]}")
row() { # NAME KEY BASE
	local w c
	w=$(med "${W[$2]}") c=$(med "${C[$2]}")
	echo "| $1 | $w s | $c s | $(awk -v a="$w" -v b="$3" 'BEGIN {printf "%.2fx", a / b}') |"
}
echo
echo "Publishing $count real Debian packages ($mb MB; $(date -u +%Y-%m-%d), $(nproc) cores; median of $RUNS runs)"
echo
echo "| work | wall | CPU (user+sys) | wall / reprepro |"
echo "|---|---|---|---|"
row "upds repo publish (validate, move to pool, index, sign)" upds "$rrw"
row "upds repo publish --verify=full (also every data.tar)" updsfull "$rrw"
row "reprepro includedeb (copy to pool, index; no signing)" rr "$rrw"
row "apt-ftparchive packages + gzip + release (index only; no signing)" aft "$rrw"
echo
echo "Reading the $count packages (bench/repo read MODE, every core; no repository)"
echo
echo "| read | wall | CPU (user+sys) | wall / reprepro includedeb |"
echo "|---|---|---|---|"
row "control.tar and the hashes of the file" readcontrol "$rrw"
row "the same and data.tar's magic number (--verify=basic)" readhead "$rrw"
row "the same and data.tar decompressed, tar headers walked (no md5)" readwalk "$rrw"
row "the same and md5sums compared (--verify=full)" readfull "$rrw"
