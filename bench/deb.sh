#!/usr/bin/env bash
# Benchmarks building a .deb of a virtualenv-sized tree (make-venv-corpus.sh: ~250 MB, ~17,500
# entries) with dpkg-deb, nfpm and upds (stdlib/deb through bench/debbench), side by side in one
# run (taking turns), and prints a Markdown table: wall time (median of 3 for gzip and zstd, 1 run for xz),
# peak RSS, output size, and the ratios to dpkg-deb in the same mode.
#
#   bench/deb.sh              (from anywhere; needs root for apt-get on first use)
#   RUNS=5 bench/deb.sh       more runs for gzip/zstd
#   MODES="gzip zstd" bench/deb.sh
#
# Not a test: the machine is shared and noisy, so compare the ratios of one run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/bench/out
runs=${RUNS:-3}
modes=${MODES:-gzip zstd xz}
mkdir -p "$out"
cd "$repo"

corpus_script=${CORPUS_SCRIPT:-}
for c in "$repo/../shared/bench/make-venv-corpus.sh" /work/shared/bench/make-venv-corpus.sh; do
  [[ -z $corpus_script && -f $c ]] && corpus_script=$c
done
[[ -n $corpus_script ]] || { echo "make-venv-corpus.sh not found: set CORPUS_SCRIPT" >&2; exit 2; }
bash "$corpus_script" "$out/corpus" >&2

if [[ ! -x /usr/bin/time ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
nfpm=$(command -v nfpm || true)
if [[ -z $nfpm ]]; then
  nfpm=$(go env GOPATH)/bin/nfpm
  [[ -x $nfpm ]] || GOFLAGS='' go install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2 >&2
fi
go build -o "$out/debbench" ./bench/debbench

export SOURCE_DATE_EPOCH=1700000000
control="Package: hello-virtualenv
Version: 1.0.0
Architecture: amd64
Maintainer: Bench <bench@example.com>
Description: benchmark corpus"

# dpkg-deb wants DEBIAN/ inside the tree: a hard-linked copy of the corpus costs no space.
rm -rf "$out/dpkgroot"
cp -al "$out/corpus" "$out/dpkgroot"
mkdir -p "$out/dpkgroot/DEBIAN"
printf '%s\n' "$control" > "$out/dpkgroot/DEBIAN/control"

nfpm_config() { # $1 = compression
  cat > "$out/nfpm-$1.yaml" <<EOF
name: hello-virtualenv
arch: amd64
platform: linux
version: 1.0.0
maintainer: Bench <bench@example.com>
description: benchmark corpus
contents:
  - src: $out/corpus/var/virtualenvs/hello
    dst: /var/virtualenvs/hello
    type: tree
deb:
  compression: $1
EOF
  echo "$out/nfpm-$1.yaml"
}

# run_once NAME MODE FILE CMD...: runs CMD once, adds its wall time and peak RSS to NAME's.
declare -A walls maxrss
run_once() {
  local name=$1 mode=$2 file=$3; shift 3
  rm -f "$file"
  # Write back what earlier runs left dirty, so that no run pays for another's writeback
  # (upds fsyncs its output; dpkg-deb and nfpm leave theirs to the kernel).
  sync
  /usr/bin/time -f '%e %M' -o "$out/time.txt" "$@" >/dev/null 2>"$out/stderr.txt" ||
    { echo "$name $mode failed:" >&2; cat "$out/stderr.txt" >&2; exit 1; }
  read -r w m < <(tail -1 "$out/time.txt")
  walls[$name|$mode]+="$w "
  ((m > ${maxrss[$name|$mode]:-0})) && maxrss[$name|$mode]=$m
  return 0
}

# record NAME MODE N FILE: the median wall time of NAME's runs, its peak RSS, the output's size.
results=()
record() {
  local name=$1 mode=$2 n=$3 file=$4 med
  med=$(printf '%s\n' ${walls[$name|$mode]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  dpkg-deb --info "$file" >/dev/null # every output must be a package dpkg-deb reads
  results+=("$name|$mode|$n|$med|${maxrss[$name|$mode]}|$(stat -c %s "$file")")
  echo "$name $mode: ${walls[$name|$mode]}-> median ${med}s, ${maxrss[$name|$mode]}KiB, $(stat -c %s "$file")B" >&2
}

# The tools take turns (dpkg-deb, nfpm, upds, dpkg-deb, ...), so that a noisy minute on this
# shared machine hits all three alike.
for mode in $modes; do
  n=$runs
  [[ $mode == xz ]] && n=1
  case $mode in
    gzip) dflags=(-Zgzip -z6) ;;
    zstd) dflags=(-Zzstd) ;;
    xz) dflags=(-Zxz) ;;
  esac
  cfg=$(nfpm_config "$mode")
  for ((i = 0; i < n; i++)); do
    run_once dpkg-deb "$mode" "$out/dpkg-$mode.deb" dpkg-deb --root-owner-group "${dflags[@]}" -b "$out/dpkgroot" "$out/dpkg-$mode.deb"
    run_once nfpm "$mode" "$out/nfpm-$mode.deb" "$nfpm" pkg --packager deb --config "$cfg" --target "$out/nfpm-$mode.deb"
    run_once upds "$mode" "$out/upds-$mode.deb" "$out/debbench" -root "$out/corpus" -o "$out/upds-$mode.deb" -z "$mode"
  done
  record dpkg-deb "$mode" "$n" "$out/dpkg-$mode.deb"
  record nfpm "$mode" "$n" "$out/nfpm-$mode.deb"
  record upds "$mode" "$n" "$out/upds-$mode.deb"
done

entries=$(find "$out/corpus" -mindepth 1 | wc -l)
bytes=$(du -sb "$out/corpus" | cut -f1)
echo
echo "Corpus: $((bytes / 1000000)) MB in $entries entries; $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "dpkg-deb $(dpkg-query -W -f='${Version}' dpkg), nfpm $(go version -m "$nfpm" | awk '$1 == "mod" {print $3}'), upds $(git -C "$repo" rev-parse --short HEAD)"
echo
echo "| tool | mode | wall (median of runs) | × dpkg-deb | peak RSS | output | × dpkg-deb |"
echo "|---|---|---|---|---|---|---|"
declare -A base_wall base_size
for r in "${results[@]}"; do
  IFS='|' read -r name mode n wall rss size <<<"$r"
  if [[ $name == dpkg-deb ]]; then base_wall[$mode]=$wall; base_size[$mode]=$size; fi
done
status=0
for r in "${results[@]}"; do
  IFS='|' read -r name mode n wall rss size <<<"$r"
  wr=$(awk -v a="$wall" -v b="${base_wall[$mode]}" 'BEGIN {printf "%.2f", a / b}')
  sr=$(awk -v a="$size" -v b="${base_size[$mode]}" 'BEGIN {printf "%.3f", a / b}')
  printf '| %s | %s | %.2f s (%s) | %s× | %d MiB | %.1f MB | %s× |\n' "$name" "$mode" "$wall" "$n" "$wr" $((rss / 1024)) \
    "$(awk -v s="$size" 'BEGIN {print s / 1e6}')" "$sr"
done
echo
# The targets of ANCHORS.md, checked on this run.
for r in "${results[@]}"; do
  IFS='|' read -r name mode n wall rss size <<<"$r"
  [[ $name == upds ]] || continue
  wr=$(awk -v a="$wall" -v b="${base_wall[$mode]}" 'BEGIN {print a / b}')
  sr=$(awk -v a="$size" -v b="${base_size[$mode]}" 'BEGIN {print a / b}')
  check() { if awk "BEGIN {exit !($2)}"; then echo "- ok: $1"; else echo "- MISSED: $1"; status=1; fi; }
  check "upds $mode peak RSS $((rss / 1024)) MiB <= 64 MiB" "$rss <= 65536"
  case $mode in
    gzip) check "upds gzip wall ${wr}x <= 0.6x dpkg-deb -z6" "$wr <= 0.6"
          check "upds gzip size ${sr}x <= 1.03x dpkg-deb -z6" "$sr <= 1.03" ;;
    zstd) check "upds zstd wall ${wr}x <= 1.0x dpkg-deb -Zzstd" "$wr <= 1.0" ;;
    xz)
      for r2 in "${results[@]}"; do
        IFS='|' read -r n2 m2 _ w2 _ _ <<<"$r2"
        [[ $n2 == nfpm && $m2 == xz ]] && check "upds xz wall ${wall}s <= nfpm xz ${w2}s" "$wall <= $w2"
      done ;;
  esac
done
rm -rf "$out/dpkgroot"
exit $status
