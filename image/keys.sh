#!/usr/bin/env bash
# Makes a DEVELOPMENT signing key pair for RAUC bundles (never for boxes in the field):
#   image/keys/dev/ca.key.pem      the CA's private key (signs the signing certificate)
#   image/keys/dev/ca.cert.pem     the CA certificate: the keyring baked into the image
#   image/keys/dev/signing.key.pem the key that signs bundles
#   image/keys/dev/signing.cert.pem its certificate, issued by the CA
#
# Usage: image/keys.sh [DIR]   (default image/keys/dev; image/keys/ is git-ignored)
#        image/keys.sh --other DIR   same, with another subject: a key the box must refuse
#
# Production keys: docs/updates.md ("Keys"). The operator makes their own CA and signing key
# the same way on an offline machine, keeps the CA key off the build machine, and points
# build.sh (RAUC_KEYRING) and bundle.sh (RAUC_CERT, RAUC_KEY) at them. Nothing under
# image/keys/ may ever be committed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
subject="lanbox development"
if [ "${1:-}" = --other ]; then subject="someone else"; shift; fi
dir="${1:-$here/keys/dev}"

if [ -f "$dir/signing.cert.pem" ]; then
    echo "keys: $dir already holds a key pair; remove it first to make a new one" >&2
    exit 0
fi
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
umask 077
days=3650
cat >openssl.cnf <<CNF
[ req ]
distinguished_name = dn
[ dn ]
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_signing ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
# codeSigning for the box (system.conf: check-purpose=codesign); emailProtection because
# RAUC's default purpose check (smimesign, e.g. Debian 12's RAUC 1.8 on the build host) wants it.
extendedKeyUsage = codeSigning, emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout ca.key.pem -out ca.cert.pem -days "$days" \
    -subj "/O=$subject/CN=$subject update CA" -config openssl.cnf -extensions v3_ca 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout signing.key.pem -out signing.csr.pem \
    -subj "/O=$subject/CN=$subject bundle signing" -config openssl.cnf 2>/dev/null
openssl x509 -req -in signing.csr.pem -CA ca.cert.pem -CAkey ca.key.pem -CAcreateserial \
    -out signing.cert.pem -days "$days" -extfile openssl.cnf -extensions v3_signing 2>/dev/null
rm -f signing.csr.pem ca.cert.srl
chmod 644 ca.cert.pem signing.cert.pem
echo "keys: made $dir (CA: $(openssl x509 -in ca.cert.pem -noout -subject))"
