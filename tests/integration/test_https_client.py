"""Outgoing HTTPS (issue 15 part 6), black-box: payments talks to the
provider simulator over TLS trusting the suite's test CA
(CAPLAT_TLS_CA_FILE); a provider endpoint with an untrusted certificate, a
certificate for another name or an expired one is refused (the payment
answers the usual 503 PROVIDER_UNAVAILABLE and the log names the TLS
reason); a correctly signed WeChat Pay answer whose Wechatpay-Timestamp is
an hour off is refused like a stale notification; a notify base URL or a
provider URL that is plain http to a non-loopback host stops the service
with a message naming the variable."""
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from client import call, wait_until
from test_payments import new_order, pay, register, sim_url

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "paysim"))
import tlspki  # noqa: E402

INVOICE = {"type": "e_normal", "email": "buyer@example.com"}


@contextlib.contextmanager
def bad_tls_server(cert, key):
    """A TLS listener on 127.0.0.1 with cert/key that never answers HTTP:
    only the handshake matters. Yields its port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            try:
                conn.settimeout(5)
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join(timeout=5)
        srv.close()


def restart_payments(suite, env=None):
    suite.kill("payments", signal.SIGTERM)
    suite.start_service("payments", env or {})


def log_text(suite):
    with open(os.path.join(suite.log_dir, "payments.log"), errors="replace") as f:
        return f.read()


def new_payment(suite, channel):
    token, account = register(suite)
    order = new_order(suite, account, 10000)
    return pay(suite, token, order, channel, INVOICE)


def test_https_client_providers_over_tls(suite):
    """The suite's simulator serves TLS with a certificate from the test CA:
    payments is configured with https:// URLs and that CA, and both
    channels create payments through it."""
    env = suite.extra_env("payments")
    assert env["CAPLAT_WECHAT_API"].startswith("https://127.0.0.1:"), env
    assert env["CAPLAT_ALIPAY_GATEWAY"].startswith("https://127.0.0.1:"), env
    assert env["CAPLAT_TLS_CA_FILE"].endswith("ca.pem")
    for channel in ("alipay", "wechat"):
        r = new_payment(suite, channel)
        assert r.status == 201, r
        assert r.json["status"] == "pending" and r.json["qr_code"], r


def test_https_client_refuses_untrusted_wrong_name_and_expired(suite):
    """Each bad certificate is refused before a byte of the request leaves:
    503 PROVIDER_UNAVAILABLE, and payments' log names the TLS reason."""
    ca_dir = suite.tls_ca()
    d = tempfile.mkdtemp(prefix="badtls-", dir=suite.base)
    tlspki.ca(os.path.join(d, "rogue-ca"), cn="rogue CA")
    tlspki.leaf(os.path.join(d, "untrusted"), os.path.join(d, "rogue-ca"))
    tlspki.leaf(os.path.join(d, "wrongname"), os.path.join(ca_dir, "ca"), names=("pay.example.com",))
    tlspki.leaf(os.path.join(d, "expired"), os.path.join(ca_dir, "ca"), days_from=-30, days_to=-1)
    cases = [("untrusted", "alipay", "127.0.0.1", "tls: unable to get local issuer certificate"),
             ("wrongname", "wechat", "localhost", "tls: hostname mismatch"),
             ("wrongname", "alipay", "127.0.0.1", "tls: IP address mismatch"),
             ("expired", "wechat", "127.0.0.1", "tls: certificate has expired")]
    try:
        for name, channel, host, reason in cases:
            p = os.path.join(d, name)
            with bad_tls_server(p + ".pem", p + ".key") as port:
                url = f"https://{host}:{port}"
                restart_payments(suite, {"CAPLAT_WECHAT_API": url,
                                         "CAPLAT_ALIPAY_GATEWAY": url + "/gateway.do"})
                before = len(log_text(suite))
                r = new_payment(suite, channel)
                assert r.status == 503 and r.code == "PROVIDER_UNAVAILABLE", (name, r)
                log = wait_until(lambda: reason in log_text(suite)[before:] and log_text(suite)[before:],
                                 what=f"log line naming {reason!r}")
                assert "msg=httpc_no_answer" in log and f"port={port}" in log, log
                # A verification failure is final: not retried.
                assert log.count("msg=httpc_no_answer") == 1, log
    finally:
        restart_payments(suite)
    assert new_payment(suite, "wechat").status == 201


def test_https_client_refuses_stale_signed_wechat_answer(suite):
    """The simulator signs its WeChat answers correctly but with a
    Wechatpay-Timestamp an hour old (and an hour ahead): refused like a
    stale notification; a fresh answer is accepted again."""
    try:
        for skew in (-3600, 3600, -301):
            assert call(sim_url(suite), "POST", "/sim/answer-skew", body={"seconds": skew}).status == 200
            before = len(log_text(suite))
            r = new_payment(suite, "wechat")
            assert r.status == 503 and r.code == "PROVIDER_UNAVAILABLE", (skew, r)
            wait_until(lambda: "answer timestamp outside 300 s" in log_text(suite)[before:],
                       what="stale answer logged")
    finally:
        call(sim_url(suite), "POST", "/sim/answer-skew", body={"seconds": 0})
    assert call(sim_url(suite), "POST", "/sim/answer-skew", body={"seconds": -200}).status == 200
    try:
        assert new_payment(suite, "wechat").status == 201
    finally:
        call(sim_url(suite), "POST", "/sim/answer-skew", body={"seconds": 0})


def start_fails(suite, **override):
    env = dict(os.environ)
    env.update(suite.service_env("payments"))
    env.update(suite.extra_env("payments"))
    env.update(override)
    binary = os.path.join(suite.build, "bin", "caplat-payments")
    p = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, p
    return p.stdout + p.stderr


def test_https_client_plain_http_outside_loopback_refuses_to_start(suite):
    """A notify base that is not https (WeChat Pay refuses plain http
    notify URLs) or a provider URL with plain http to a real host stops
    payments at start with a fatal message naming the variable; loopback
    http (the suite's gateway) stays allowed."""
    out = start_fails(suite, CAPLAT_PAY_NOTIFY_BASE="http://pay.example.com")
    assert "CAPLAT_PAY_NOTIFY_BASE" in out and "https://" in out, out
    out = start_fails(suite, CAPLAT_WECHAT_API="http://api.mch.weixin.qq.com")
    assert "CAPLAT_WECHAT_API" in out and "https://" in out, out
    out = start_fails(suite, CAPLAT_ALIPAY_GATEWAY="ftp://openapi.alipay.com/gateway.do")
    assert "CAPLAT_ALIPAY_GATEWAY" in out, out
    out = start_fails(suite, CAPLAT_TLS_CA_FILE="/nonexistent/ca.pem")
    assert "CAPLAT_TLS_CA_FILE" in out, out
    assert suite.service_env("payments") is not None and suite.gateway.startswith("http://127.0.0.1:")


@contextlib.contextmanager
def connect_proxy(refuse=False):
    """A tiny HTTP CONNECT proxy on 127.0.0.1 recording its targets
    (refuse: answers 403). Yields (port, targets)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    stop, targets = threading.Event(), []

    def pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle(conn):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                conn.close()
                return
            head += chunk
        line = head.split(b"\r\n")[0].decode()
        targets.append(line)
        method, target, _ = line.split(" ", 2)
        if refuse or method != "CONNECT":
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            conn.close()
            return
        host, port = target.rsplit(":", 1)
        up = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        up.settimeout(None)
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        rest = head.split(b"\r\n\r\n", 1)[1]
        if rest:
            up.sendall(rest)
        threading.Thread(target=pipe, args=(conn, up), daemon=True).start()
        threading.Thread(target=pipe, args=(up, conn), daemon=True).start()

    def loop():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conn.settimeout(None)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1], targets
    finally:
        stop.set()
        t.join(timeout=5)
        srv.close()


def test_https_client_egress_proxy(suite):
    """With CAPLAT_EGRESS_PROXY every https call is tunnelled with CONNECT
    to the real host (TLS inside, still verified); a proxy that refuses the
    tunnel gives the usual 503 and a log line naming the proxy."""
    sim_port = suite.ports["paysim"]
    try:
        with connect_proxy() as (port, targets):
            restart_payments(suite, {"CAPLAT_EGRESS_PROXY": f"http://127.0.0.1:{port}"})
            for channel in ("wechat", "alipay", "wechat"):
                r = new_payment(suite, channel)
                assert r.status == 201, (channel, r)
            assert targets and all(t == f"CONNECT 127.0.0.1:{sim_port} HTTP/1.1" for t in targets), targets
            # one host: the kept-alive connection is reused, not one per call
            assert len(targets) < 3, targets
        with connect_proxy(refuse=True) as (port, targets):
            restart_payments(suite, {"CAPLAT_EGRESS_PROXY": f"http://127.0.0.1:{port}"})
            before = len(log_text(suite))
            r = new_payment(suite, "wechat")
            assert r.status == 503 and r.code == "PROVIDER_UNAVAILABLE", r
            assert targets == [f"CONNECT 127.0.0.1:{sim_port} HTTP/1.1"], targets
            wait_until(lambda: "egress proxy refused CONNECT: HTTP/1.1 403" in log_text(suite)[before:],
                       what="proxy refusal logged")
    finally:
        restart_payments(suite)
