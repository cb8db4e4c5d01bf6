#!/usr/bin/env bash
# issue.sh — issues one USB-key certificate (the API.md leaf profile) under a
# CA of a test PKI (made by ca.sh): the one way the tests make leaves.
# mkpki.sh uses it for the PKI's own leaves; tests/client.py (issue_cert) and
# tests/issuance/kit.py (make_leaf) for fresh locks (every lock binds once)
# and for certificates close to expiry, expired or not yet due;
# tests/issuance/vendor_sim.py to sign the CSRs it receives.
#
# Usage: tests/ukey/issue.sh [OPTIONS] PKI_DIR NAME ALG KIND HOLDER [ENTERPRISE USCC] [DAYS]
#        tests/ukey/issue.sh [OPTIONS] --csr FILE PKI_DIR NAME ALG
#   ALG rsa|ec|sm2; KIND master|project_lead|agent|cost_engineer|personal;
#   --ca NAME   the issuer, PKI_DIR/NAME.{cert,key}.pem (default ALG-ca);
#   --out DIR   where NAME.key.pem and NAME.cert.pem go (default PKI_DIR);
#   --from, --until  validity bounds as YYYYMMDDHHMMSSZ (default now, and
#               DAYS from now; DAYS defaults to 30: inside the renewal window);
#   --csr FILE  certify this request's key and subject (no key is made);
#   --serial HEX  the serial (default 8 random bytes).
set -euo pipefail
usage() {
	sed -n '2,17p' "$0" >&2
	exit 2
}
CA='' OUT='' FROM='' UNTIL='' CSR='' SERIAL=''
while [[ $# -gt 0 && $1 == --* ]]; do
	[[ $# -ge 2 ]] || usage
	case $1 in
	--ca) CA=$2 ;;
	--out) OUT=$2 ;;
	--from) FROM=$2 ;;
	--until) UNTIL=$2 ;;
	--csr) CSR=$2 ;;
	--serial) SERIAL=$2 ;;
	*) usage ;;
	esac
	shift 2
done
[[ $# -ge 5 || ( -n $CSR && $# -ge 3 ) ]] || usage
DIR=$1 NAME=$2 ALG=$3 KIND=${4:-} HOLDER=${5:-} ENT=${6:-} USCC=${7:-} DAYS=${8:-30}
CA=${CA:-$ALG-ca} OUT=${OUT:-$DIR}
DISTID=1234567812345678
[[ -f $DIR/$CA.key.pem ]] || { echo "no issuing CA $CA in $DIR (run mkpki.sh)" >&2; exit 1; }
case $ALG in
rsa) KEYGEN=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048) MD=sha256 SM2=() ;;
ec) KEYGEN=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256) MD=sha256 SM2=() ;;
sm2) KEYGEN=(-algorithm SM2) MD=sm3 SM2=(-sigopt "distid:$DISTID") ;;
*) echo "bad ALG $ALG" >&2; exit 2 ;;
esac
SUBJ="/C=CN"
[[ -n $ENT ]] && SUBJ="$SUBJ/O=$ENT"
SUBJ="$SUBJ/OU=$KIND/CN=$HOLDER"
[[ -n $USCC ]] && SUBJ="$SUBJ/organizationIdentifier=$USCC"
VALIDITY=(-days "$DAYS")
[[ -n $FROM ]] && VALIDITY+=(-startdate "$FROM")
[[ -n $UNTIL ]] && VALIDITY=(-startdate "${FROM:-$(date -u +%Y%m%d%H%M%SZ)}" -enddate "$UNTIL")

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# "openssl ca" rather than "x509 -req": only it sets a validity in the past.
cat >"$TMP/ca.cnf" <<CNF
[req]
distinguished_name = dn
string_mask = utf8only
utf8 = yes
[dn]
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ca_test]
database = $TMP/index.txt
new_certs_dir = $TMP
serial = $TMP/serial
default_md = $MD
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
organizationIdentifier = optional
CNF
: >"$TMP/index.txt"
# 8 bytes, first in 0x10-0x7f: positive, never padded, unique enough per run.
[[ -n $SERIAL ]] || SERIAL=$(printf '%02X%s' $((RANDOM % 0x70 + 0x10)) "$(openssl rand -hex 7)")
echo "$SERIAL" >"$TMP/serial"
if [[ -n $CSR ]]; then
	cp "$CSR" "$TMP/csr.pem"
else
	openssl genpkey "${KEYGEN[@]}" -out "$TMP/key.pem" 2>/dev/null
	openssl req -new -utf8 -config "$TMP/ca.cnf" -key "$TMP/key.pem" -subj "$SUBJ" \
		-"$MD" "${SM2[@]}" -out "$TMP/csr.pem"
fi
# shellcheck disable=SC2046
openssl ca -batch -config "$TMP/ca.cnf" -name ca_test -in "$TMP/csr.pem" \
	-cert "$DIR/$CA.cert.pem" -keyfile "$DIR/$CA.key.pem" "${VALIDITY[@]}" -md "$MD" \
	"${SM2[@]}" $([[ $ALG == sm2 ]] && echo "-vfyopt distid:$DISTID") \
	-extfile "$TMP/ca.cnf" -extensions leaf -preserveDN -utf8 -notext \
	-out "$TMP/cert.pem" 2>"$TMP/ca.log" || { cat "$TMP/ca.log" >&2; exit 1; }
mkdir -p "$OUT"
if [[ -z $CSR ]]; then
	chmod 600 "$TMP/key.pem"
	mv "$TMP/key.pem" "$OUT/$NAME.key.pem"
fi
mv "$TMP/cert.pem" "$OUT/$NAME.cert.pem"
