#!/usr/bin/env bash
# mkpki.sh — builds the test PKI of the USB-key simulator, unit and end-to-end
# tests with the openssl CLI: for each of rsa (2048), ec (P-256) and sm2 (SM3,
# distid 1234567812345678) a root, an issuing CA, leaves in the API.md default
# profile, one expired leaf and one leaf under a root that nobody trusts.
# The roots and CAs are made here; every leaf by issue.sh, beside it.
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

cat >"$WORK/openssl.cnf" <<'EOF'
[req]
distinguished_name = req_dn
string_mask = utf8only
utf8 = yes
[req_dn]

[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

EOF

# Per-algorithm key generation and signing options.
keygen_args() {
	case $1 in
	rsa) echo "-algorithm RSA -pkeyopt rsa_keygen_bits:2048" ;;
	ec) echo "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" ;;
	sm2) echo "-algorithm SM2" ;;
	esac
}
sign_args() { # digest and signature options for req/x509
	case $1 in
	rsa | ec) echo "-sha256" ;;
	sm2) echo "-sm3 -sigopt distid:$DISTID" ;;
	esac
}
vfy_args() { # how a CSR's self-signature is checked
	case $1 in
	rsa | ec) echo "" ;;
	sm2) echo "-vfyopt distid:$DISTID" ;;
	esac
}

serial() { echo "0x$(openssl rand -hex 8)"; }

# mkkey ALG NAME
mkkey() {
	# shellcheck disable=SC2046
	openssl genpkey $(keygen_args "$1") -out "$WORK/$2.key.pem" 2>/dev/null
}

# mkroot ALG NAME SUBJECT
mkroot() {
	mkkey "$1" "$2"
	# shellcheck disable=SC2046
	openssl req -new -x509 -utf8 -config "$WORK/openssl.cnf" -extensions root \
		-key "$WORK/$2.key.pem" -subj "$3" -days 3650 -set_serial "$(serial)" \
		$(sign_args "$1") -out "$WORK/$2.cert.pem"
}

# mkcsr ALG NAME SUBJECT
mkcsr() {
	mkkey "$1" "$2"
	# shellcheck disable=SC2046
	openssl req -new -utf8 -config "$WORK/openssl.cnf" -key "$WORK/$2.key.pem" \
		-subj "$3" $(sign_args "$1") -out "$WORK/$2.csr.pem"
}

# mkca ALG NAME SUBJECT ROOT: an issuing CA under ROOT
mkca() {
	mkcsr "$1" "$2" "$3"
	# shellcheck disable=SC2046
	openssl x509 -req -in "$WORK/$2.csr.pem" -CA "$WORK/$4.cert.pem" \
		-CAkey "$WORK/$4.key.pem" -set_serial "$(serial)" -days 3650 \
		-extfile "$WORK/openssl.cnf" -extensions ca \
		$(sign_args "$1") $(vfy_args "$1") -out "$WORK/$2.cert.pem" 2>/dev/null
	rm -f "$WORK/$2.csr.pem"
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
	mkroot "$alg" "$alg-root" "/C=CN/O=caplat test/CN=caplat test $up root"
	mkca "$alg" "$alg-ca" "/C=CN/O=caplat test/CN=caplat test $up issuing CA" "$alg-root"
	leaf "$alg-master" "$alg" master 张三 "$ENT_A" "$USCC_A"
	leaf "$alg-project_lead" "$alg" project_lead 李四 "$ENT_A" "$USCC_A"
	leaf "$alg-agent" "$alg" agent 王五 "$ENT_B" "$USCC_B"
	leaf "$alg-personal" "$alg" personal 赵六
	leaf --from 200101000000Z --until 210101000000Z \
		"$alg-expired" "$alg" master 张三 "$ENT_A" "$USCC_A"
	mkroot "$alg" "$alg-rogue-root" "/C=CN/O=caplat rogue/CN=caplat rogue $up root"
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
