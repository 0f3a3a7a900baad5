#!/bin/bash
# Publishing tiny packages: upds (stdlib/repo, signed) next to apt-ftparchive packages (index
# only, unsigned) and reprepro includedeb (unsigned), in one run on the same generated packages.
#
#   bash bench/repo.sh            # 2,000 and 20,000 packages, then adding one to 20,000
#   SIZES="2000" bash bench/repo.sh
#
# Prints a Markdown table of wall times (bash `time`, median of RUNS runs for the full
# publishes, median of ADDS (default 5) for adding one package and for a new version of the
# first package). Needs apt-utils and reprepro.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"2000 20000"}
RUNS=${RUNS:-1}
for tool in apt-ftparchive reprepro go; do
	command -v "$tool" >/dev/null || { echo "bench/repo.sh: $tool not installed" >&2; exit 1; }
done

WORK=$(mktemp -d /var/tmp/upds-repo-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
go build -o "$WORK/repo" ./bench/repo
TIMEFORMAT=%R

# secs CMD...: wall time of CMD in seconds (its output discarded).
secs() { { time "$@" >/dev/null 2>&1; } 2>&1; }

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

reprepro_conf() {
	mkdir -p "$1/conf"
	cat >"$1/conf/distributions" <<-EOF
	Origin: bench
	Label: bench
	Codename: stable
	Architectures: amd64
	Components: main
	EOF
}

declare -A T
for n in $SIZES; do
	"$WORK/repo" gen "$n" "$WORK/debs-$n"
	a=() r=() u=() x=()
	for _ in $(seq "$RUNS"); do
		# upds: the packages in incoming/, one publish (validate, move to pool, index, sign).
		d="$WORK/upds"; rm -rf "$d"; "$WORK/repo" init "$d"
		cp -l "$WORK/debs-$n"/*.deb "$d/incoming/"
		sync
		u+=("$(secs "$WORK/repo" publish "$d")")
		# upds again over the same pool with its caches deleted: every pool file is read
		# and Packages.gz compressed again, as apt-ftparchive does (plus signing and by-hash).
		rm -rf "$d/private/index.cache" "$d/private/state.json" "$d/private/packages-gz"
		sync
		x+=("$(secs "$WORK/repo" publish "$d")")
		# apt-ftparchive over the same Debian pool (pool/main/b/benchNNNNNN/...): index only.
		sync
		a+=("$(secs sh -c "cd '$d/public' && apt-ftparchive packages pool > '$WORK/Packages' && gzip -1f '$WORK/Packages'")")
		# reprepro includedeb of every package (moves them into its own pool, no signing).
		d="$WORK/rr"; rm -rf "$d"; reprepro_conf "$d"
		sync
		r+=("$(secs sh -c "reprepro -b '$d' includedeb stable '$WORK/debs-$n'/*.deb")")
	done
	T[aft,$n]=$(median "${a[@]}") T[rr,$n]=$(median "${r[@]}") T[upds,$n]=$(median "${u[@]}") T[reidx,$n]=$(median "${x[@]}")
done

# add_one DEB: times reprepro and upds adding DEB to the biggest repository (the state left
# by the last runs above), into the arrays r and u.
add_one() {
	sync
	r+=("$(secs reprepro -b "$WORK/rr" includedeb stable "$1")")
	cp "$1" "$WORK/upds/incoming/"
	sync
	u+=("$(secs "$WORK/repo" publish "$WORK/upds")")
}

# Adding one new package.
big=${SIZES##* }
"$WORK/repo" gen "${ADDS:-5}" "$WORK/extra" 900000
r=() u=()
for f in "$WORK/extra"/*.deb; do add_one "$f"; done
T[rr,add]=$(median "${r[@]}") T[upds,add]=$(median "${u[@]}")

# A new version of the first package (bench000000): its entry goes to the start of the index,
# the worst case for upds, which hashes Packages again from the first segment that changed.
r=() u=()
for i in $(seq "${ADDS:-5}"); do
	"$WORK/repo" gen 1 "$WORK/first-$i" 0 "1.$i-1"
	add_one "$WORK/first-$i/bench000000_1.$i-1_amd64.deb"
done
T[rr,first]=$(median "${r[@]}") T[upds,first]=$(median "${u[@]}")

echo
echo "Publishing tiny packages ($(date -u +%Y-%m-%d), $(nproc) cores; wall seconds)"
echo
header="| tool |"
sep="|---|"
for n in $SIZES; do header+=" $n debs |"; sep+="---|"; done
echo "$header add one to $big | new version of the first of $big |"
echo "$sep---|---|"
row() {
	local name=$1 key=$2 add=$3 first=$4 line="| $1 |"
	for n in $SIZES; do line+=" ${T[$key,$n]} s |"; done
	echo "$line $add | $first |"
}
row "apt-ftparchive packages + gzip -1 over the pool (index only, no signing)" aft "–" "–"
row "reprepro includedeb (no signing)" rr "${T[rr,add]} s" "${T[rr,first]} s"
row "upds repo publish: uploads from incoming/ (validate, move to pool, index, sign)" upds "${T[upds,add]} s" "${T[upds,first]} s"
row "upds repo publish: existing pool, no index cache (read all, index, sign)" reidx "–" "–"
