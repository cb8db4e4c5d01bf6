#!/usr/bin/env bash
# issue.sh — issues one more USB-key certificate under the test PKI's issuing
# CA (made by mkpki.sh), for tests that need fresh locks (every lock binds
# once) or certificates close to expiry (inside the renewal window).
#
# Usage: tests/ukey/issue.sh PKI_DIR NAME ALG KIND HOLDER [ENTERPRISE USCC] [DAYS]
#   ALG rsa|ec|sm2; KIND master|project_lead|agent|cost_engineer|personal;
#   DAYS of validity from now (default 30: inside the 90-day renewal window).
#   Writes PKI_DIR/NAME.key.pem and PKI_DIR/NAME.cert.pem.
set -euo pipefail
[[ $# -ge 5 ]] || { sed -n '2,10p' "$0" >&2; exit 2; }
DIR=$1 NAME=$2 ALG=$3 KIND=$4 HOLDER=$5 ENT=${6:-} USCC=${7:-} DAYS=${8:-30}
DISTID=1234567812345678
[[ -f $DIR/$ALG-ca.key.pem ]] || { echo "no $ALG issuing CA in $DIR (run mkpki.sh)" >&2; exit 1; }
case $ALG in
rsa) KEYGEN=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048) SIGN=(-sha256) VFY=() ;;
ec) KEYGEN=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256) SIGN=(-sha256) VFY=() ;;
sm2) KEYGEN=(-algorithm SM2) SIGN=(-sm3 -sigopt "distid:$DISTID") VFY=(-vfyopt "distid:$DISTID") ;;
*) echo "bad ALG $ALG" >&2; exit 2 ;;
esac
SUBJ="/C=CN"
[[ -n $ENT ]] && SUBJ="$SUBJ/O=$ENT"
SUBJ="$SUBJ/OU=$KIND/CN=$HOLDER"
[[ -n $USCC ]] && SUBJ="$SUBJ/organizationIdentifier=$USCC"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cat >"$TMP/ext.cnf" <<'CNF'
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
CNF
openssl genpkey "${KEYGEN[@]}" -out "$TMP/key.pem" 2>/dev/null
openssl req -new -utf8 -config "$TMP/ext.cnf" -key "$TMP/key.pem" -subj "$SUBJ" \
	"${SIGN[@]}" -out "$TMP/csr.pem"
openssl x509 -req -in "$TMP/csr.pem" -CA "$DIR/$ALG-ca.cert.pem" -CAkey "$DIR/$ALG-ca.key.pem" \
	-set_serial "0x$(openssl rand -hex 8)" -days "$DAYS" -extfile "$TMP/ext.cnf" -extensions leaf \
	"${SIGN[@]}" "${VFY[@]}" -out "$TMP/cert.pem" 2>/dev/null
mv "$TMP/key.pem" "$DIR/$NAME.key.pem"
mv "$TMP/cert.pem" "$DIR/$NAME.cert.pem"
