#!/usr/bin/env bash
# Benchmarks building a .deb of a virtualenv-sized tree, side by side in one run (the tools take
# turns), and prints a Markdown table: wall time and CPU time (user + sys, median of the runs),
# peak RSS, output size, and the ratios to the Debian pipeline in the same mode and corpus (the
# median of the ratios of runs side by side, steadier than a ratio of medians when the load
# changes during the benchmark).
#
# The corpora: "1x" is make-venv-corpus.sh without __pycache__ (~12,600 entries, ~150 MB of
# files), "10x" ten copies of it side by side (~126,000 entries, ~1.5 GB).
# The tools:
#   debian    md5sums (find | sort | xargs md5sum, as dh_md5sums) + dpkg-deb --root-owner-group -b:
#             what a Debian build does, since upds writes md5sums too
#   dpkg-deb  dpkg-deb -b alone (no md5sums), the anchor of ../shared/bench/ANCHORS.md
#   nfpm      nfpm pkg (1x only: it holds the whole package in memory)
#   upds      stdlib/deb through bench/debbench (Package.Walk with Src files)
#   upds-run  `upds run build` of a project whose deb() has tree() of the corpus, from a cold
#             cache (.upds removed before each run): the stat cache, the key, the write
#
#   bench/deb.sh                               all corpora, tools and modes (needs root for apt-get on first use)
#   CORPORA=1x MODES=zstd RUNS=9 bench/deb.sh   (RUNS10 for the 10x corpus; MODES may add xz)
#   TOOLS="debian upds" bench/deb.sh
#
# Not a test: the machine is shared and noisy, so compare the ratios of one run, and the CPU
# time next to the wall time.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$repo/bench/out}
runs=${RUNS:-5}    # runs of each tool on the 1x corpus (xz: 1)
runs10=${RUNS10:-3} # on the 10x corpus
modes=${MODES:-gzip zstd}
corpora=${CORPORA:-1x 10x}
tools=${TOOLS:-debian dpkg-deb nfpm upds upds-run}
mkdir -p "$out"
cd "$repo"

corpus_script=${CORPUS_SCRIPT:-}
for c in "$repo/../shared/bench/make-venv-corpus.sh" /work/shared/bench/make-venv-corpus.sh; do
  [[ -z $corpus_script && -f $c ]] && corpus_script=$c
done
[[ -n $corpus_script ]] || { echo "make-venv-corpus.sh not found: set CORPUS_SCRIPT" >&2; exit 2; }

# corpus NAME: makes $out/NAME/root (the tree), $out/NAME/debian (a hard-linked copy with
# DEBIAN/control for dpkg-deb) and $out/NAME/project (BUILD.star and a hard-linked tree).
corpus() {
  local name=$1 dir=$out/$1
  [[ -d $dir/root ]] && return
  if [[ ! -d $out/venv ]]; then
    bash "$corpus_script" "$out/venv.tmp" >&2
    find "$out/venv.tmp" -name __pycache__ -type d -prune -exec rm -rf {} +
    mv "$out/venv.tmp" "$out/venv"
  fi
  mkdir -p "$dir.tmp/root/var/virtualenvs"
  if [[ $name == 1x ]]; then
    cp -a "$out/venv/var/virtualenvs/hello" "$dir.tmp/root/var/virtualenvs/hello"
  else
    for i in $(seq 0 9); do cp -a "$out/venv/var/virtualenvs/hello" "$dir.tmp/root/var/virtualenvs/hello$i"; done
  fi
  cp -al "$dir.tmp/root" "$dir.tmp/debian"
  mkdir -p "$dir.tmp/debian/DEBIAN"
  printf '%s\n' "$control" > "$dir.tmp/debian/DEBIAN/control"
  mkdir -p "$dir.tmp/project"
  cp -al "$dir.tmp/root/var/virtualenvs" "$dir.tmp/project/tree"
  echo 1.0.0 > "$dir.tmp/project/VERSION"
  mv "$dir.tmp" "$dir"
}

if [[ ! -x /usr/bin/time ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
nfpm=$(command -v nfpm || true)
if [[ -z $nfpm ]]; then
  nfpm=$(go env GOPATH)/bin/nfpm
  [[ -x $nfpm ]] || GOFLAGS='' go install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2 >&2
fi
go build -o "$out/debbench" ./bench/debbench
go build -o "$out/upds" ./cmd/upds

export SOURCE_DATE_EPOCH=1700000000
control="Package: hello-virtualenv
Version: 1.0.0
Architecture: amd64
Maintainer: Bench <bench@example.com>
Description: benchmark corpus"

nfpm_config() { # $1 = corpus, $2 = compression
  cat > "$out/nfpm-$2.yaml" <<EOF
name: hello-virtualenv
arch: amd64
platform: linux
version: 1.0.0
maintainer: Bench <bench@example.com>
description: benchmark corpus
contents:
  - src: $out/$1/root/var/virtualenvs
    dst: /var/virtualenvs
    type: tree
deb:
  compression: $2
EOF
  echo "$out/nfpm-$2.yaml"
}

# debian ROOT OUT DPKG-FLAGS...: dh_md5sums' md5sums, then dpkg-deb -b.
debian() {
  local root=$1 deb=$2
  shift 2
  (cd "$root" && find . -type f ! -regex './DEBIAN/.*' -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0r md5sum > DEBIAN/md5sums)
  dpkg-deb --root-owner-group "$@" -b "$root" "$deb"
}

# upds_run PROJECT MODE: `upds run build` from a cold cache; the package goes to dist/.
upds_run() {
  local proj=$1
  cat > "$proj/BUILD.star" <<EOF
project(name = "bench", version_file = "VERSION", arch = "amd64", maintainer = "Bench <bench@example.com>", out = "dist")
pkg = deb("hello-virtualenv", contents = [tree("tree", "/var/virtualenvs")], compression = "$2", docs = False)
task("build", deps = [pkg])
EOF
  rm -rf "$proj/.upds" "$proj/dist"
  (cd "$proj" && "$out/upds" run build)
}

# run_once KEY FILE CMD...: runs CMD once, adds its wall time, CPU time and peak RSS to KEY's.
declare -A walls cpus maxrss files
run_once() {
  local key=$1 file=$2
  shift 2
  rm -f "$file"
  # Write back what earlier runs left dirty, so that no run pays for another's writeback
  # (upds fsyncs its output; dpkg-deb and nfpm leave theirs to the kernel).
  sync
  /usr/bin/time -f '%e %U %S %M' -o "$out/time.txt" "$@" >/dev/null 2>"$out/stderr.txt" ||
    { echo "$key failed:" >&2; cat "$out/stderr.txt" >&2; exit 1; }
  read -r w u s m < <(tail -1 "$out/time.txt")
  walls[$key]+="$w "
  cpus[$key]+="$(awk -v u="$u" -v s="$s" 'BEGIN {print u + s}') "
  ((m > ${maxrss[$key]:-0})) && maxrss[$key]=$m
  files[$key]=$file
  return 0
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

export -f debian upds_run
export out
keys=()
for c in $corpora; do
  corpus "$c"
  for mode in $modes; do
    case $mode in
      gzip) dflags=(-Zgzip -z6) ;;
      zstd) dflags=(-Zzstd) ;;
      xz) dflags=(-Zxz) ;;
    esac
    n=$runs
    [[ $c == 10x ]] && n=$runs10
    [[ $mode == xz ]] && n=1
    for ((i = 0; i < n; i++)); do
      for t in $tools; do
        key="$c|$mode|$t"
        f=$out/$c-$mode-$t.deb
        case $t in
          debian) run_once "$key" "$f" bash -c 'debian "$@"' - "$out/$c/debian" "$f" "${dflags[@]}" ;;
          dpkg-deb) run_once "$key" "$f" dpkg-deb --root-owner-group "${dflags[@]}" -b "$out/$c/debian" "$f" ;;
          nfpm)
            [[ $c == 1x ]] || continue
            run_once "$key" "$f" "$nfpm" pkg --packager deb --config "$(nfpm_config "$c" "$mode")" --target "$f" ;;
          upds) run_once "$key" "$f" "$out/debbench" -root "$out/$c/root" -o "$f" -z "$mode" ;;
          upds-run)
            run_once "$key" "$f" bash -c 'upds_run "$@"' - "$out/$c/project" "$mode"
            ln -f "$out/$c/project/dist/hello-virtualenv_1.0.0_amd64.deb" "$f" ;;
        esac
        ((i == 0)) && keys+=("$key")
      done
    done
  done
done

echo
entries=$(find "$out/1x/root" -mindepth 1 | wc -l)
bytes=$(du -sb --apparent-size "$out/1x/root" | cut -f1)
echo "Corpus 1x: $((bytes / 1000000)) MB in $entries entries (10x: ten copies); $(date -u '+%Y-%m-%d %H:%M UTC');" \
  "$(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg) at the end; runs: $runs (1x), $runs10 (10x), 1 (xz)"
echo "dpkg-deb $(dpkg-query -W -f='${Version}' dpkg), nfpm $(go version -m "$nfpm" | awk '$1 == "mod" {print $3}'), upds $(git -C "$repo" rev-parse --short HEAD)"
echo
echo "| corpus | mode | tool | wall | CPU (user+sys) | wall × debian | peak RSS | output | × debian |"
echo "|---|---|---|---|---|---|---|---|---|"
declare -A base_walls base_size
for key in "${keys[@]}"; do
  IFS='|' read -r c mode t <<<"$key"
  [[ $t == debian ]] || continue
  base_walls[$c|$mode]=${walls[$key]}
  base_size[$c|$mode]=$(stat -c %s "${files[$key]}")
done
# ratio KEY: the median of the ratios of KEY's runs to the debian runs beside them.
ratio() {
  local -a a b
  read -ra a <<<"${walls[$1]}"
  read -ra b <<<"${base_walls[$2]}"
  for i in "${!a[@]}"; do awk -v x="${a[$i]}" -v y="${b[$i]}" 'BEGIN {print x / y}'; done | sort -n |
    awk '{r[NR]=$1} END {printf "%.2f", r[int((NR+1)/2)]}'
}
status=0
check() { if awk "BEGIN {exit !($2)}"; then checks+="- ok: $1"$'\n'; else checks+="- MISSED: $1"$'\n'; status=1; fi; }
checks=""
for key in "${keys[@]}"; do
  IFS='|' read -r c mode t <<<"$key"
  dpkg-deb --info "${files[$key]}" >/dev/null # every output must be a package dpkg-deb reads
  wall=$(median ${walls[$key]})
  cpu=$(median ${cpus[$key]})
  size=$(stat -c %s "${files[$key]}")
  bw=${base_walls[$c|$mode]:-}
  bs=${base_size[$c|$mode]:-}
  wr=-
  sr=-
  [[ -n $bw ]] && wr="$(ratio "$key" "$c|$mode")×"
  [[ -n $bs ]] && sr=$(awk -v a="$size" -v b="$bs" 'BEGIN {printf "%.3f×", a / b}')
  printf '| %s | %s | %s | %.2f s | %.2f s | %s | %d MiB | %.1f MB | %s |\n' "$c" "$mode" "$t" "$wall" "$cpu" "$wr" \
    $((maxrss[$key] / 1024)) "$(awk -v s="$size" 'BEGIN {print s / 1e6}')" "$sr"
  # The targets of issue #15, checked on this run.
  [[ $t == upds* && -n $bw ]] || continue
  r=${wr%×}
  case $mode in
    gzip) check "$c gzip $t wall ${r}× <= 0.35× debian" "$r <= 0.35" ;;
    zstd) check "$c zstd $t wall ${r}× <= 0.85× debian" "$r <= 0.85" ;;
  esac
  check "$c $mode $t size ${sr%×}× <= 1.03× debian" "${sr%×} <= 1.03"
  [[ $c == 10x ]] && check "$c $mode $t peak RSS $((maxrss[$key] / 1024)) MiB <= 96 MiB" "${maxrss[$key]} <= 98304"
done
echo
printf '%s' "$checks"
exit $status
