#!/bin/sh
# A private CA and a broker certificate for the storesense TLS listener (openssl CLI only).
#
#   sh make_tls.sh OUTDIR BROKER_NAME [BROKER_IP]
#
# Writes OUTDIR/ca.crt ca.key server.crt server.key. Install ca.crt on every edge device
# (broker.tls.ca_file in edge.toml); keep ca.key offline. The server certificate carries
# subjectAltName DNS:BROKER_NAME (and IP:BROKER_IP), which clients check.
set -eu
out=${1:?usage: make_tls.sh OUTDIR BROKER_NAME [BROKER_IP]}
name=${2:?broker host name}
ip=${3:-}
days=${DAYS:-825}
mkdir -p "$out"
umask 077
san="DNS:$name"
[ -n "$ip" ] && san="$san,IP:$ip"

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -keyout "$out/ca.key" -out "$out/ca.crt" -subj "/CN=storesense private CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -sha256 \
    -keyout "$out/server.key" -out "$out/server.csr" -subj "/CN=$name" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" > "$out/server.ext"
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
    -CAcreateserial -days "$days" -sha256 -extfile "$out/server.ext" \
    -out "$out/server.crt" 2>/dev/null
rm -f "$out/server.csr" "$out/server.ext"
chmod 644 "$out/ca.crt" "$out/server.crt"
echo "CA: $out/ca.crt  server: $out/server.crt ($san)"
