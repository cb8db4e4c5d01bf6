#!/usr/bin/env bash
# mkpki.sh — builds the test PKI of the USB-key simulator, unit and end-to-end
# tests with the openssl CLI: for each of rsa (2048), ec (P-256) and sm2 (SM3,
# distid 1234567812345678) a root, an issuing CA, leaves in the API.md default
# profile, one expired leaf and one leaf under a root that nobody trusts.
# Every root and CA is made by ca.sh, every leaf by issue.sh, beside it.
#
# Usage: tests/ukey/mkpki.sh DIR
#   DIR/roots.pem            every trusted root and issuing CA (not the rogue roots)
#   DIR/<name>.key.pem       private key (PKCS#8, unencrypted)
#   DIR/<name>.cert.pem      certificate
# Names, for alg in rsa ec sm2: <alg>-root <alg>-ca <alg>-master
# <alg>-project_lead <alg>-agent <alg>-personal <alg>-expired <alg>-rogue-root
# <alg>-rogue. Running it again on a complete DIR does nothing.
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
DIR=$1
HERE=$(cd "$(dirname "$0")" && pwd)
LAYOUT=1 # bump when the set of files or profiles changes
STAMP=$DIR/.mkpki-complete

mkdir -p "$DIR"
# Test runs in parallel may share DIR: one builds, the others wait and reuse.
exec 9>"$DIR/.mkpki.lock"
flock 9
if [[ -f $STAMP && $(<"$STAMP") == "$LAYOUT" ]]; then
	exit 0
fi
rm -f "$STAMP"
WORK=$(mktemp -d "$DIR/.mkpki.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

DISTID=1234567812345678
ENT_A=福州某某建设工程有限公司
USCC_A=91350100M000100Y43
ENT_B=深圳某某科技有限公司
USCC_B=91440300708461136T

vfy_args() { # how an SM2 signature is checked
	case $1 in
	rsa | ec) echo "" ;;
	sm2) echo "-vfyopt distid:$DISTID" ;;
	esac
}

# leaf [issue.sh options] NAME ALG KIND HOLDER [ENTERPRISE USCC]: 825 days
leaf() {
	local opts=()
	while [[ $1 == --* ]]; do
		opts+=("$1" "$2")
		shift 2
	done
	bash "$HERE/issue.sh" "${opts[@]}" "$WORK" "$1" "$2" "$3" "$4" "${5:-}" "${6:-}" 825
}

# verify_link ALG ISSUER CERT: checks one signature the way DOMAIN.md says
# (openssl verify cannot check a three-level SM2 chain in one call).
verify_link() {
	local partial=""
	[[ $2 == *-root ]] || partial=-partial_chain
	# shellcheck disable=SC2046
	openssl verify $partial $(vfy_args "$1") -CAfile "$WORK/$2.cert.pem" \
		"$WORK/$3.cert.pem" >/dev/null
}

mkpki_alg() {
	local alg=$1 up
	up=$(tr '[:lower:]' '[:upper:]' <<<"$alg")
	bash "$HERE/ca.sh" "$WORK" "$alg-root" "$alg" "/C=CN/O=caplat test/CN=caplat test $up root"
	bash "$HERE/ca.sh" "$WORK" "$alg-ca" "$alg" \
		"/C=CN/O=caplat test/CN=caplat test $up issuing CA" "$alg-root"
	leaf "$alg-master" "$alg" master 张三 "$ENT_A" "$USCC_A"
	leaf "$alg-project_lead" "$alg" project_lead 李四 "$ENT_A" "$USCC_A"
	leaf "$alg-agent" "$alg" agent 王五 "$ENT_B" "$USCC_B"
	leaf "$alg-personal" "$alg" personal 赵六
	leaf --from 200101000000Z --until 210101000000Z \
		"$alg-expired" "$alg" master 张三 "$ENT_A" "$USCC_A"
	bash "$HERE/ca.sh" "$WORK" "$alg-rogue-root" "$alg" \
		"/C=CN/O=caplat rogue/CN=caplat rogue $up root"
	leaf --ca "$alg-rogue-root" "$alg-rogue" "$alg" master 张三 "$ENT_A" "$USCC_A"

	verify_link "$alg" "$alg-root" "$alg-ca"
	for who in master project_lead agent personal; do
		verify_link "$alg" "$alg-ca" "$alg-$who"
	done
	verify_link "$alg" "$alg-rogue-root" "$alg-rogue"
}

# The three algorithms are independent: build them side by side.
pids=()
for alg in rsa ec sm2; do
	mkpki_alg "$alg" &
	pids+=($!)
done
for pid in "${pids[@]}"; do
	wait "$pid"
done

cat "$WORK"/{rsa,ec,sm2}-root.cert.pem "$WORK"/{rsa,ec,sm2}-ca.cert.pem >"$WORK/roots.pem"
chmod 600 "$WORK"/*.key.pem
mv -f "$WORK"/*.pem "$DIR"/
echo "$LAYOUT" >"$STAMP"
