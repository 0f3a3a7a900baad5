#!/bin/bash
# Publishing tiny packages to S3-compatible storage: upds repo publish into a bucket, next to
# the same publish on disk and to aptly's S3 publish, all on one SeaweedFS server on
# 127.0.0.1 (the one the tests use, interp/storage/s3test; bench/s3 runs it).
#
#   bash bench/s3.sh              # 2,000 and 20,000 packages, then adding one to 20,000
#   SIZES="2000" bash bench/s3.sh
#
# Prints a Markdown table of wall times (bash `time`, one run each). upds and aptly both
# sign (upds: its ed25519 key; aptly: gpg with an ed25519 key). Needs aptly and gpg for the
# aptly rows (apt-get install aptly); without aptly they are left out.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"2000 20000"}
command -v go >/dev/null || { echo "bench/s3.sh: go not installed" >&2; exit 1; }
have_aptly=0
if command -v aptly >/dev/null && command -v gpg >/dev/null; then have_aptly=1; fi

WORK=$(mktemp -d /var/tmp/upds-s3-bench.XXXXXX)
server=""
cleanup() {
	if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT
go build -o "$WORK/repo" ./bench/repo
go build -o "$WORK/s3" ./bench/s3
"$WORK/s3" serve "$WORK/weed" "$WORK/env" 2>"$WORK/s3.log" &
server=$!
for _ in $(seq 600); do [ -s "$WORK/env" ] && break; sleep 0.5; done
[ -s "$WORK/env" ] || { echo "bench/s3.sh: the S3 server did not start:" >&2; cat "$WORK/s3.log" >&2; exit 1; }
# shellcheck disable=SC1091
. "$WORK/env"
TIMEFORMAT=%R

# secs CMD...: wall time of CMD in seconds (its output discarded).
secs() { { time "$@" >/dev/null 2>&1; } 2>&1; }

export GNUPGHOME="$WORK/gnupg"
if [ "$have_aptly" = 1 ]; then
	mkdir -m 0700 "$GNUPGHOME"
	gpg --batch --quiet --passphrase '' --quick-gen-key "bench <bench@example.com>" ed25519 sign never
fi

# aptly_conf N: an aptly configuration with its own root and an S3 endpoint "bench" that
# publishes under the prefix aptly-N of the same bucket.
aptly_conf() {
	cat >"$WORK/aptly-$1.conf" <<-EOF
	{
	  "rootDir": "$WORK/aptly-$1",
	  "gpgProvider": "gpg2",
	  "architectures": ["amd64", "all"],
	  "S3PublishEndpoints": {"bench": {"region": "$AWS_REGION", "bucket": "upds", "prefix": "aptly-$1",
	    "endpoint": "$AWS_ENDPOINT_URL_S3", "awsAccessKeyID": "$AWS_ACCESS_KEY_ID", "awsSecretAccessKey": "$AWS_SECRET_ACCESS_KEY"}}
	}
	EOF
	echo "aptly -config=$WORK/aptly-$1.conf"
}

declare -A T
for n in $SIZES; do
	"$WORK/repo" gen "$n" "$WORK/debs-$n"
	# upds on disk: the packages in incoming/, one publish (validate, move to pool, index, sign).
	d="$WORK/disk-$n"; "$WORK/repo" init "$d"
	cp -l "$WORK/debs-$n"/*.deb "$d/incoming/"; sync
	T[disk,$n]=$(secs "$WORK/repo" publish "$d")
	# upds into the bucket: the same, the pool uploaded (16 PUTs at a time), indexes after it.
	d="$WORK/s3-$n"; "$WORK/repo" init "$d" "s3://upds/upds-$n"
	cp -l "$WORK/debs-$n"/*.deb "$d/incoming/"; sync
	T[s3,$n]=$(secs "$WORK/repo" publish "$d")
	# The index cache lost (a machine's first publish to the bucket): the pool is listed and
	# every package read back from the bucket.
	rm -f "$d/private/index.cache"
	T[s3scan,$n]=$(secs "$WORK/repo" publish "$d")
	if [ "$have_aptly" = 1 ]; then
		A=$(aptly_conf "$n")
		$A repo create -distribution=stable -component=main bench >/dev/null
		T[aadd,$n]=$(secs $A repo add bench "$WORK/debs-$n")
		T[apub,$n]=$(secs $A publish repo -batch -passphrase= -architectures=amd64,all bench s3:bench:)
	fi
done

# Adding one package to the biggest repositories.
big=${SIZES##* }
"$WORK/repo" gen 1 "$WORK/extra" 900000
f=$(echo "$WORK/extra"/*.deb)
cp "$f" "$WORK/disk-$big/incoming/"; sync
T[disk,add]=$(secs "$WORK/repo" publish "$WORK/disk-$big")
cp "$f" "$WORK/s3-$big/incoming/"; sync
T[s3,add]=$(secs "$WORK/repo" publish "$WORK/s3-$big")
if [ "$have_aptly" = 1 ]; then
	A="aptly -config=$WORK/aptly-$big.conf"
	T[aptly,add]=$(secs sh -c "$A repo add bench '$f' && $A publish update -batch -passphrase= stable s3:bench:")
fi

echo
echo "Publishing tiny packages to SeaweedFS on 127.0.0.1 ($(date -u +%Y-%m-%d), $(nproc) cores; wall seconds)"
echo
header="| tool |"
sep="|---|"
for n in $SIZES; do header+=" $n debs |"; sep+="---|"; done
echo "$header add one to $big |"
echo "$sep---|"
row() {
	local key=$1 add=$2 line="| $3 |"
	for n in $SIZES; do line+=" ${T[$key,$n]} s |"; done
	echo "$line $add |"
}
row disk "${T[disk,add]} s" "upds repo publish, on disk (DIR/public)"
row s3 "${T[s3,add]} s" "upds repo publish, into the bucket"
row s3scan "–" "upds repo publish, into the bucket, no index cache (pool listed and read back)"
if [ "$have_aptly" = 1 ]; then
	row aadd "–" "aptly repo add (into aptly's local pool)"
	row apub "${T[aptly,add]} s (repo add + publish update)" "aptly publish repo to S3 (upload, index, sign)"
fi
