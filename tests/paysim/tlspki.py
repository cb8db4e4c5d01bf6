"""tlspki — the suite's TLS test PKI and the simulators' TLS listener.

make(dir) creates (once) dir/ca.pem (the test CA the services trust through
CAPLAT_TLS_CA_FILE) and dir/server.{pem,key} (127.0.0.1 and localhost,
signed by it); leaf(...) makes further leaves (wrong name, expired,
untrusted) for the tests. serve_tls(server, cert, key) makes a socketserver
answer TLS on its port, while a client that opens in plain text (the
tests' control calls) still gets plain HTTP: the first byte decides.
"""
import datetime
import ipaddress
import os
import socket
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "caplat test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path, key, cert):
    with open(path + ".key", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(path + ".pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def _load(path):
    with open(path + ".key", "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    with open(path + ".pem", "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    return key, cert


def ca(path, cn="caplat test TLS CA"):
    """A self-signed CA at path.{pem,key}."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                           critical=True)
            .sign(key, hashes.SHA256()))
    _write(path, key, cert)


def leaf(path, ca_path, names=("127.0.0.1", "localhost"), days_from=-1, days_to=365):
    """A TLS server leaf at path.{pem,key} for names, issued by ca_path's CA,
    valid from now+days_from to now+days_to (negative: in the past)."""
    ca_key, ca_cert = _load(ca_path)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=days_from))
            .not_valid_after(now + datetime.timedelta(days=days_to))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write(path, key, cert)


def make(d):
    """The suite's TLS PKI in d (kept when already there)."""
    os.makedirs(d, exist_ok=True)
    if not os.path.exists(os.path.join(d, "server.pem")):
        ca(os.path.join(d, "ca"))
        leaf(os.path.join(d, "server"), os.path.join(d, "ca"))
    return d


def serve_tls(server, cert, key):
    """Makes socketserver server speak TLS with cert/key to clients whose
    first byte is a TLS handshake record, plain HTTP to the others."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    plain_finish = server.finish_request

    def finish_request(request, client_address):
        try:
            request.settimeout(10)
            first = request.recv(1, socket.MSG_PEEK)
            request.settimeout(None)
        except OSError:
            return
        if first[:1] != b"\x16":
            return plain_finish(request, client_address)
        try:
            tls = ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            plain_finish(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    server.finish_request = finish_request
    return server
