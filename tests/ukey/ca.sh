#!/usr/bin/env bash
# ca.sh — makes one CA of a test PKI: a self-signed root, or an issuing CA
# (pathlen 0) under a root; ten years, openssl CLI. mkpki.sh makes the
# USB-key vendors' roots and CAs with it, tests/issuance/vendor_sim.py its
# own; issue.sh issues the leaves under them.
#
# Usage: tests/ukey/ca.sh DIR NAME ALG SUBJECT [ROOT]
#   ALG rsa|ec|sm2; ROOT: DIR/ROOT.{cert,key}.pem signs it (none: self-signed).
#   Writes DIR/NAME.key.pem and DIR/NAME.cert.pem.
set -euo pipefail
[[ $# -ge 4 ]] || { sed -n '2,9p' "$0" >&2; exit 2; }
DIR=$1 NAME=$2 ALG=$3 SUBJ=$4 ROOT=${5:-}
DISTID=1234567812345678
case $ALG in
rsa) KEYGEN=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048) SIGN=(-sha256) VFY=() ;;
ec) KEYGEN=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256) SIGN=(-sha256) VFY=() ;;
sm2) KEYGEN=(-algorithm SM2) SIGN=(-sm3 -sigopt "distid:$DISTID") VFY=(-vfyopt "distid:$DISTID") ;;
*) echo "bad ALG $ALG" >&2; exit 2 ;;
esac
[[ -z $ROOT || -f $DIR/$ROOT.key.pem ]] || { echo "no CA $ROOT in $DIR" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cat >"$TMP/ca.cnf" <<'CNF'
[req]
distinguished_name = dn
string_mask = utf8only
utf8 = yes
[dn]
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF
SERIAL="0x$(openssl rand -hex 8)"
openssl genpkey "${KEYGEN[@]}" -out "$TMP/key.pem" 2>/dev/null
if [[ -z $ROOT ]]; then
	openssl req -new -x509 -utf8 -config "$TMP/ca.cnf" -extensions root -key "$TMP/key.pem" \
		-subj "$SUBJ" -days 3650 -set_serial "$SERIAL" "${SIGN[@]}" -out "$TMP/cert.pem"
else
	openssl req -new -utf8 -config "$TMP/ca.cnf" -key "$TMP/key.pem" -subj "$SUBJ" \
		"${SIGN[@]}" -out "$TMP/csr.pem"
	openssl x509 -req -in "$TMP/csr.pem" -CA "$DIR/$ROOT.cert.pem" -CAkey "$DIR/$ROOT.key.pem" \
		-set_serial "$SERIAL" -days 3650 -extfile "$TMP/ca.cnf" -extensions ca \
		"${SIGN[@]}" "${VFY[@]}" -out "$TMP/cert.pem" 2>/dev/null
fi
chmod 600 "$TMP/key.pem"
mv "$TMP/key.pem" "$DIR/$NAME.key.pem"
mv "$TMP/cert.pem" "$DIR/$NAME.cert.pem"
