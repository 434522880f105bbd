#!/bin/sh
# Test certificates for the TLS tests (tests/proxy_tls.rs and the e2e labs): a CA, a
# server certificate for localhost/127.0.0.1 signed by it, and a second CA that signed
# nothing here (a server "not verified" against it). Valid for 100 years so the
# committed files do not expire under the tests. Re-run to renew:
#   sh tests/data/tls/make.sh
set -eu
cd "$(dirname "$0")"
days=36500
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
    -subj "/CN=ftpwatch test CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
    -subj "/CN=ftpwatch other CA" -keyout other-ca.key -out other-ca.pem 2>/dev/null
rm -f other-ca.key
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days $days \
    -extfile ext.cnf -out server.pem 2>/dev/null
rm -f server.csr ext.cnf ca.srl ca.key
