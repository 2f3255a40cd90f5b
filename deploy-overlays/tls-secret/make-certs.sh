#!/bin/sh
# A private CA and the one certificate every Shoal node serves with, for the Secret `shoal-tls`
# of deploy-overlays/tls-secret (a cluster without cert-manager). docs/deploy.md, "TLS".
set -eu

usage() {
  cat <<'EOF'
usage: make-certs.sh DIR [NAME [DAYS]]

Writes, into DIR (made if missing; files already there are never overwritten):
  ca.crt   the CA every node and client trusts (--tls-ca, SHOAL_TLS_CA)
  ca.key   the CA's key: it signs certificates, keep it off the cluster
  tls.crt  the nodes' certificate, signed by the CA, naming NAME (for server and client use)
  tls.key  its key
NAME is the DNS name in the certificate, the one peers and clients check (--tls-name,
SHOAL_TLS_NAME); default shoal-nodes.shoal.svc, the Service over the nodes. DAYS: how long
the certificates are valid (default 365). Then:
  kubectl -n shoal create secret generic shoal-tls \
    --from-file=DIR/tls.crt --from-file=DIR/tls.key --from-file=DIR/ca.crt
EOF
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  ""|-*) usage >&2; exit 2 ;;
esac
[ $# -le 3 ] || { usage >&2; exit 2; }
dir=$1
name=${2:-shoal-nodes.shoal.svc}
days=${3:-365}
command -v openssl >/dev/null || { echo "make-certs.sh: needs openssl (apt-get install openssl)" >&2; exit 1; }
# A DNS name: labels of letters, digits and inner hyphens, joined by dots.
if ! printf '%s\n' "$name" | grep -Eq '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$'; then
  echo "make-certs.sh: '$name' is not a DNS name (e.g. shoal-nodes.shoal.svc)" >&2
  exit 2
fi
case "$days" in
  ''|*[!0-9]*|0) echo "make-certs.sh: DAYS '$days' is not a positive whole number of days" >&2; exit 2 ;;
esac
mkdir -p "$dir"
for f in ca.crt ca.key tls.crt tls.key; do
  if [ -e "$dir/$f" ]; then
    echo "make-certs.sh: $dir/$f exists; refusing to overwrite it (move it away, or pick another DIR)" >&2
    exit 1
  fi
done

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {
  if ! "$@" >"$work/out" 2>&1; then
    echo "make-certs.sh: failed: $*" >&2
    cat "$work/out" >&2
    exit 1
  fi
}
run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
  -subj "/CN=Shoal CA" -keyout "$work/ca.key" -out "$work/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
run openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=$name" -keyout "$work/tls.key" -out "$work/tls.csr"
cat >"$work/ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:$name
EOF
run openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
  -days "$days" -extfile "$work/ext" -out "$work/tls.crt"
run openssl verify -CAfile "$work/ca.crt" -purpose sslserver "$work/tls.crt"
chmod 644 "$work/ca.crt" "$work/tls.crt"
for f in ca.crt ca.key tls.crt tls.key; do cp -p "$work/$f" "$dir/$f"; done
echo "made $dir/ca.crt, $dir/ca.key, $dir/tls.crt, $dir/tls.key: certificate for $name, valid $days days"
