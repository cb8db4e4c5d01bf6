#!/usr/bin/env python3
"""suite — starts and stops the whole caplat suite on loopback.

One piece of code for both uses:
  * `make run` / `make stop`: a persistent suite under var/ on fixed ports,
    processes detached, pids in var/run/, safe to run again;
  * the test harness (tests/run.py): a throw-away suite in a temporary
    directory on free ports, stopped afterwards; tests may kill -9 and
    restart any process through Suite.kill()/Suite.restart().

PostgreSQL refuses to run as root, so as root its processes run as the
`postgres` system user that Debian's package creates. That user cannot reach
a checkout under a private directory (/root, `mktemp -d`): then the data
directory lives in /var/lib/caplat/<hash of the suite directory>/ (owned by
postgres, mode 0700) and <suite>/pgdata is a symlink to it. As another user
PostgreSQL runs as that user, in <suite>/pgdata.

`make run` also starts a supervisor (`suite.py supervise`, a detached
process with its pid in var/run/supervisor.pid): it restarts any process of
the suite that dies, with exponential backoff (0 s, then 0.5 s doubling up
to 30 s; back to 0 after 10 s up), logs each restart to var/log/supervisor.log
and keeps var/run/status.json for `make status`. A process stopped on
purpose (Suite.kill, `make stop`) carries a <name>.down marker and is left
alone. The test harness runs without a supervisor unless a test starts one
(Suite.start_supervisor).

A failing step raises SuiteError, which names the command and carries its
own error output; `suite.py run` prints it (no traceback) and exits 1.
"""
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

SUPERVISED_BACKOFF = (0.0, 0.5, 30.0, 10.0)  # first delay, second, cap, seconds up to reset


class SuiteError(RuntimeError):
    """A step of the suite failed: the message names the command and holds
    its own error output. A RuntimeError, as psql failures always were (tests
    catch them)."""


def run_step(argv, what=None, **kw):
    """subprocess.run with its output captured; a failure raises SuiteError
    with the command line and what it printed."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    try:
        r = subprocess.run(argv, text=True, **kw)
    except OSError as e:
        raise SuiteError(f"{what or argv[0]} failed: {' '.join(argv)}\n{e}") from None
    if r.returncode != 0:
        out = "\n".join(x.strip() for x in (r.stderr, r.stdout) if x and x.strip())
        raise SuiteError(f"{what or argv[0]} failed (exit {r.returncode}): {' '.join(argv)}\n{out}")
    return r


def log_tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_BIN = "/usr/lib/postgresql/15/bin"
# Every service of the suite: name -> default port for `make run`, and the
# gateway locations it owns. A service counts once services/<name>/ exists.
ALL_SERVICES = {
    "auth": (18081, ["/api/v1/auth/"]),
    "enterprise": (18082, ["/api/v1/files", "/api/v1/profile", "/api/v1/enterprise", "/api/v1/review/"]),
    "orders": (18083, ["/api/v1/platforms", "/api/v1/orders"]),
    "payments": (18084, ["/api/v1/payments", "/api/v1/invoices", "/api/v1/finance/", "/notify/",
                         "/api/v1/finance/bills/"]),
    "issuance": (18085, ["/api/v1/certs", "/api/v1/cert-imports", "/api/v1/interop/"]),
}
# Directives of a location beyond proxy_pass: the certificate import takes
# files of 10^5 rows (issuance's ISSUANCE_IMPORT_MAX_BODY) and a dry run
# answers when it is done. A bill goes on to payments as it arrives (not
# first into a temporary file of nginx's: 200 MB written and read again).
LOCATION_EXTRA = {"/api/v1/finance/bills/": "client_max_body_size 512m; proxy_read_timeout 600s; "
                                           "proxy_request_buffering off; ",
                  "/api/v1/cert-imports": "client_max_body_size 256m; proxy_read_timeout 600s; "}
SERVICES = {name: port for name, (port, _) in ALL_SERVICES.items()
            if os.path.isdir(os.path.join(ROOT, "services", name))}
# CAPLAT_SERVICES=auth,orders limits a local run to some services.
if os.environ.get("CAPLAT_SERVICES"):
    SERVICES = {n: p for n, p in SERVICES.items() if n in os.environ["CAPLAT_SERVICES"].split(",")}
# CAPLAT_INSTANCES=orders=3,auth=2 runs that many processes of a service,
# each on its own port ("orders.2", "orders.3" in ports.json) behind the
# same nginx upstream, the way several pods sit behind a Service
# (docs/SCALING.md); 1 when not named.
INSTANCES = {k: int(v) for k, v in (x.split("=") for x in
             os.environ.get("CAPLAT_INSTANCES", "").split(",") if "=" in x)}


def instance_names(svc):
    """The extra processes of svc beyond the first: ["orders.2", …]."""
    return [f"{svc}.{i}" for i in range(2, INSTANCES.get(svc, 1) + 1)]


# Staff accounts `make run` seeds: username -> roles.
STAFF = {"reviewer": "reviewer", "finance": "finance", "operator": "operator"}
# What `make run` always sets for a service, whatever the environment says.
WIRING = {"CAPLAT_HTTP_PORT", "CAPLAT_DB_URL", "CAPLAT_DB_SCHEMA", "CAPLAT_REDIS_URL",
          "CAPLAT_NATS_URL", "CAPLAT_MIGRATIONS_DIR", "CAPLAT_VAR_DIR"}
# Below Linux's ephemeral range (32768-60999): an outgoing connection's
# port can never hold one of them in TIME-WAIT when make run starts.
FIXED_PORTS = {"gateway": 8080, "postgres": 15432, "redis": 16379,
               "nats": 14222, "nats_monitor": 18222, "paysim": 18094}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0, proc=None, name=""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SuiteError(f"{name} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SuiteError(f"{name} did not listen on port {port} within {timeout}s")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


class Suite:
    def __init__(self, base, persistent=False, build="build", fixed_ports=None):
        self.base = os.path.abspath(base)
        self.persistent = persistent
        # make run: the documented fixed ports; tests and benchmarks: free ones
        self.fixed_ports = persistent if fixed_ports is None else fixed_ports
        self.build = os.path.join(ROOT, build) if not os.path.isabs(build) else build
        self.procs = {}      # name -> Popen (this process's children)
        self.cmds = {}       # name -> (argv, env, port, log path, user)
        os.makedirs(self.run_dir, exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)
        self.ports = self._ports()
        self.secrets = self._secrets()

    # ---- layout -------------------------------------------------------
    run_dir = property(lambda self: os.path.join(self.base, "run"))
    log_dir = property(lambda self: os.path.join(self.base, "log"))
    sms_dir = property(lambda self: os.path.join(self.base, "sms"))

    @property
    def pg_data(self):
        """<suite>/pgdata, or — as root when postgres cannot reach the suite
        directory — /var/lib/caplat/<hash>/pgdata (symlinked from <suite>/pgdata)."""
        link = os.path.join(self.base, "pgdata")
        if os.path.islink(link):
            return os.path.realpath(link)
        if getattr(self, "_pg_data", None) is None:
            user = self._pg_user()
            if user is None or self._reachable_by(user, self.base):
                self._pg_data = link
            else:
                h = hashlib.sha256(self.base.encode()).hexdigest()[:16]
                self._pg_data = os.path.join("/var/lib/caplat", h, "pgdata")
        return self._pg_data

    @staticmethod
    def _reachable_by(user, path):
        # root creates <suite>/pgdata and hands it over: postgres only needs
        # to get through every directory on the way (search permission)
        r = subprocess.run(["test", "-x", path], cwd="/",
                           preexec_fn=lambda: (os.setgid(user.pw_gid), os.setuid(user.pw_uid)))
        return r.returncode == 0

    def destroy(self):
        """Removes the suite directory and a data directory kept outside it
        (the test harness, after stop_all)."""
        data = self.pg_data
        if not data.startswith(self.base + os.sep):
            shutil.rmtree(os.path.dirname(data), ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)

    def _state_file(self, name):
        return os.path.join(self.base, name)

    def _ports(self):
        path = self._state_file("ports.json")
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        if self.fixed_ports:
            ports = dict(FIXED_PORTS)
            ports.update(SERVICES)
        else:
            # Hold every socket until all are chosen: no two parts of the
            # suite get the same port.
            socks = []
            for _ in list(FIXED_PORTS) + list(SERVICES):
                sock = socket.socket()
                sock.bind(("127.0.0.1", 0))
                socks.append(sock)
            ports = {k: sock.getsockname()[1]
                     for k, sock in zip(list(FIXED_PORTS) + list(SERVICES), socks)}
            for sock in socks:
                sock.close()
        with open(path, "w") as f:
            json.dump(ports, f)
        return ports

    def _secrets(self):
        path = self._state_file("secrets.json")
        s = {}
        if os.path.exists(path):
            with open(path) as f:
                s = json.load(f)
        fresh = {f"db_{svc}": secrets.token_hex(16) for svc in ALL_SERVICES}
        fresh["db_admin"] = secrets.token_hex(16)
        fresh["sms_secret"] = secrets.token_hex(32)
        fresh["id_hash_key"] = secrets.token_hex(32)
        fresh.update({f"staff_{u}": secrets.token_urlsafe(12) for u in STAFF})
        if all(k in s for k in fresh):
            return s
        s = dict(fresh, **s)  # keep what an older var/ already has
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(s, f)
        return s

    @property
    def gateway(self):
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def service_url(self, svc):
        return f"http://127.0.0.1:{self.ports[svc]}"

    def db_url(self, role):
        pw = self.secrets[f"db_{role}"]
        return (f"postgresql://{role}:{pw}@127.0.0.1:{self.ports['postgres']}/caplat"
                "?connect_timeout=3")

    @property
    def admin_db_url(self):
        return self.db_url("admin")

    # ---- processes ----------------------------------------------------
    def _pg_user(self):
        if os.getuid() != 0:
            return None
        return pwd.getpwnam("postgres")

    def _spawn(self, name, argv, env=None, port=None, user=None, wait=True):
        pidfile = os.path.join(self.run_dir, f"{name}.pid")
        if self.persistent and os.path.exists(pidfile):
            pid = int(open(pidfile).read().strip() or 0)
            if pid and pid_alive(pid):
                self._save_cmd(name, argv, env, port, user)
                self._mark_up(name)
                return
        if port and wait:
            self._wait_port_free(name, port, argv)
        p = self._popen(name, argv, env, user)
        self.procs[name] = p
        self._save_cmd(name, argv, env, port, user)
        self._mark_up(name)
        if wait and port:
            try:
                wait_port(port, proc=p, name=name)
            except SuiteError as e:
                log = os.path.join(self.log_dir, f"{name}.log")
                raise SuiteError(f"{e}: {' '.join(argv)}\n--- {log}:\n{log_tail(log)}") from None

    @staticmethod
    def _wait_port_free(name, port, argv, timeout=3.0):
        """A port someone else listens on is an error naming it. A process
        just killed may hold its socket a moment after its pid looks dead
        (its other threads still exiting): that one gets a few seconds."""
        deadline = time.time() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    pass
            except OSError:
                return
            if time.time() > deadline:
                raise SuiteError(f"{name}: port {port} is already taken by another process "
                                 f"(ss -ltnp 'sport = :{port}' names it); not starting {' '.join(argv)}")
            time.sleep(0.05)

    def _popen(self, name, argv, env, user):
        """Starts one process of the suite, detached, output to log/<name>.log,
        and writes its pidfile. Also the supervisor's way to restart it."""
        log = open(os.path.join(self.log_dir, f"{name}.log"), "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        preexec = None
        if user is not None:
            def preexec(uid=user.pw_uid, gid=user.pw_gid):
                os.setgid(gid)
                os.setuid(uid)
        try:
            # another user's process starts in / (it may not reach the checkout)
            p = subprocess.Popen(argv, env=full_env, stdout=log, stderr=log,
                                 stdin=subprocess.DEVNULL, start_new_session=True,
                                 preexec_fn=preexec, cwd="/" if user is not None else ROOT)
        except OSError as e:
            raise SuiteError(f"{name} could not start: {' '.join(argv)}\n{e}") from None
        finally:
            log.close()
        with open(os.path.join(self.run_dir, f"{name}.pid"), "w") as f:
            f.write(str(p.pid))
        return p

    def _save_cmd(self, name, argv, env, port, user):
        """What it takes to start `name` again (for restart() and the
        supervisor): run/<name>.cmd.json, mode 0600 (the env holds secrets)."""
        self.cmds[name] = (argv, env, port, user)
        path = os.path.join(self.run_dir, f"{name}.cmd.json")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump({"argv": argv, "env": env or {}, "port": port,
                       "user": user.pw_name if user else None}, f)

    def _mark_down(self, name):
        """Stopped on purpose: the supervisor leaves it alone."""
        open(os.path.join(self.run_dir, f"{name}.down"), "w").close()

    def _mark_up(self, name):
        try:
            os.unlink(os.path.join(self.run_dir, f"{name}.down"))
        except FileNotFoundError:
            pass

    def pid(self, name):
        try:
            return int(open(os.path.join(self.run_dir, f"{name}.pid")).read())
        except (OSError, ValueError):
            return None

    def kill(self, name, sig=signal.SIGKILL):
        """Sends sig to the process `name` and waits for it to exit. It stays
        down (a supervisor does not restart it) until _spawn/restart."""
        pid = self.pid(name)
        if not pid:
            return
        self._mark_down(name)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.time() + 15
        while pid_alive(pid) and time.time() < deadline:
            if name in self.procs and self.procs[name].pid == pid:
                try:
                    self.procs[name].wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    pass
            else:
                time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        try:
            os.unlink(os.path.join(self.run_dir, f"{name}.pid"))
        except FileNotFoundError:
            pass

    def restart(self, name):
        """Starts `name` again with the command line it was first started with."""
        argv, env, port, user = self.cmds[name]
        self._spawn(name, argv, env, port, user)

    # ---- supervision ----------------------------------------------------
    @property
    def supervisor_pidfile(self):
        return os.path.join(self.run_dir, "supervisor.pid")

    def start_supervisor(self):
        """Starts the supervisor of this suite (a detached process) unless
        one runs already."""
        pid = self.pid("supervisor")
        if pid and pid_alive(pid):
            return pid
        log = open(os.path.join(self.log_dir, "supervisor.log"), "ab")
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "supervise", self.base],
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                             start_new_session=True, cwd=ROOT)
        log.close()
        self.procs["supervisor"] = p
        with open(self.supervisor_pidfile, "w") as f:
            f.write(str(p.pid))
        return p.pid

    def stop_supervisor(self):
        pid = self.pid("supervisor")
        if not pid:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.time() + 5
        while pid_alive(pid) and time.time() < deadline:
            p = self.procs.get("supervisor")
            if p is not None and p.pid == pid:
                try:
                    p.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    pass
            else:
                time.sleep(0.05)
        try:
            os.unlink(self.supervisor_pidfile)
        except FileNotFoundError:
            pass

    def status(self):
        """[(name, pid, up, restarts, since)] of every process of the suite."""
        try:
            with open(os.path.join(self.run_dir, "status.json")) as f:
                sup = json.load(f)
        except (OSError, ValueError):
            sup = {}
        rows = []
        names = sorted(f[:-len(".cmd.json")] for f in os.listdir(self.run_dir) if f.endswith(".cmd.json"))
        order = ["postgres", "redis", "nats"] + list(ALL_SERVICES) + ["paysim", "nginx"]
        names.sort(key=lambda n: order.index(n) if n in order else len(order))
        for name in names:
            pid = self.pid(name)
            up = bool(pid and pid_alive(pid))
            st = sup.get(name, {})
            state = "up" if up else ("stopped" if os.path.exists(os.path.join(self.run_dir, f"{name}.down"))
                                     else "down")
            rows.append((name, pid if up else None, state, st.get("restarts", 0), st.get("last_restart")))
        return rows

    # ---- the parts ----------------------------------------------------
    def start_postgres(self):
        user = self._pg_user()
        data = self.pg_data
        self._set_aside_orphaned_pgdata(data)
        fresh = not os.path.exists(os.path.join(data, "PG_VERSION"))
        if fresh:
            link = os.path.join(self.base, "pgdata")
            if data != link:
                # postgres cannot reach the suite directory: its own 0700
                # directory under /var/lib/caplat, <suite>/pgdata points there
                os.makedirs(os.path.dirname(data), mode=0o700, exist_ok=True)
                os.chown(os.path.dirname(data), user.pw_uid, user.pw_gid)
                if not os.path.islink(link):
                    os.symlink(data, link)
            os.makedirs(data, mode=0o700, exist_ok=True)
            pwfile = os.path.join(os.path.dirname(data), "pg.pw")
            with open(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(self.secrets["db_admin"])
            if user:
                os.chown(data, user.pw_uid, user.pw_gid)
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            try:
                run_step([f"{PG_BIN}/initdb", "-D", data, "-U", "admin", "-E", "UTF8",
                          "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
                          f"--pwfile={pwfile}"], what="initdb" + (f" (as {user.pw_name})" if user else ""),
                         cwd="/" if user else None,
                         preexec_fn=(lambda: (os.setgid(user.pw_gid), os.setuid(user.pw_uid))) if user else None)
            finally:
                os.unlink(pwfile)
        self._spawn("postgres", [
            f"{PG_BIN}/postgres", "-D", data, "-p", str(self.ports["postgres"]),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data}",
            "-c", "max_connections=200", "-c", "shared_buffers=128MB",
            "-c", "log_min_messages=warning"]
            # CAPLAT_PG_OPTS: extra "name=value" settings, space separated
            # (benchmarks: pg_stat_statements, track_functions)
            + [a for kv in os.environ.get("CAPLAT_PG_OPTS", "").split() for a in ("-c", kv)],
            port=self.ports["postgres"], user=user)
        self._wait_pg_ready()
        if fresh:
            self.psql("CREATE DATABASE caplat", db="postgres")
        self._bootstrap_roles()

    def _set_aside_orphaned_pgdata(self, data):
        """A data directory under /var/lib/caplat whose checkout was removed
        without `make stop` (rm -rf, then a new clone at the same path): the
        new var/ has no pgdata link and new passwords, so the old cluster
        would refuse them. It is moved aside (kept, not deleted) and a new
        one made; a PostgreSQL still running on it is an error."""
        link = os.path.join(self.base, "pgdata")
        if data == link or os.path.lexists(link) or \
                not os.path.exists(os.path.join(data, "PG_VERSION")):
            return
        try:
            with open(os.path.join(data, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
            os.kill(pid, 0)
            raise SuiteError(f"a PostgreSQL of a removed checkout at this path still runs on {data}"
                             f" (pid {pid}): stop it first")
        except (OSError, ValueError):
            pass
        aside = f"{data}.orphaned-{int(time.time())}"
        os.rename(data, aside)
        print(f"make run: {data} was left by a removed checkout at this path; moved to {aside}",
              file=sys.stderr)

    def _wait_pg_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = subprocess.run([f"{PG_BIN}/pg_isready", "-h", "127.0.0.1", "-p",
                                str(self.ports["postgres"])], stdout=subprocess.DEVNULL)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise SuiteError(f"postgres not ready within {timeout}s\n--- {self.log_dir}/postgres.log:\n"
                         + log_tail(os.path.join(self.log_dir, "postgres.log")))

    def psql(self, sql, db="caplat", role="admin"):
        """Runs SQL as `role` and returns the output rows (tab-separated)."""
        env = dict(os.environ, PGPASSWORD=self.secrets[f"db_{role}"])
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", "127.0.0.1", "-p", str(self.ports["postgres"]),
                            "-U", role, "-d", db, "-F", "\t", "-c", sql],
                           env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SuiteError(f"psql failed: {r.stderr.strip()}")
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def _bootstrap_roles(self):
        # One role per service, owning its schema and nothing else.
        stmts = ["REVOKE ALL ON SCHEMA public FROM PUBLIC",
                 "REVOKE ALL ON DATABASE caplat FROM PUBLIC"]
        for svc in SERVICES:
            pw = self.secrets[f"db_{svc}"]
            stmts.append(f"""DO $$BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{svc}') THEN
                    CREATE ROLE {svc} LOGIN PASSWORD '{pw}';
                ELSE
                    ALTER ROLE {svc} LOGIN PASSWORD '{pw}';
                END IF; END$$""")
            stmts.append(f"GRANT CONNECT ON DATABASE caplat TO {svc}")
            stmts.append(f"CREATE SCHEMA IF NOT EXISTS {svc} AUTHORIZATION {svc}")
            stmts.append(f"ALTER ROLE {svc} SET search_path = {svc}")
        self.psql(";\n".join(stmts))

    def start_redis(self):
        d = os.path.join(self.base, "redis")
        os.makedirs(d, exist_ok=True)
        # Sessions must survive a Redis restart: an append-only file, fsync
        # once a second (at most the last second of writes is lost).
        self._spawn("redis", ["redis-server", "--port", str(self.ports["redis"]),
                              "--bind", "127.0.0.1", "--dir", d, "--save", "",
                              "--appendonly", "yes", "--appendfsync", "everysec",
                              "--protected-mode", "yes"],
                    port=self.ports["redis"])

    def start_nats(self):
        d = os.path.join(self.base, "nats")
        os.makedirs(d, exist_ok=True)
        self._spawn("nats", ["nats-server", "-js", "-sd", d, "-a", "127.0.0.1",
                             "-p", str(self.ports["nats"]), "-m", str(self.ports["nats_monitor"])],
                    port=self.ports["nats"])
        # JetStream is ready a moment after the port opens.
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.ports['nats_monitor']}/healthz?js-enabled-only=true",
                        timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise SuiteError("nats JetStream not ready within 20s\n--- nats.log:\n"
                         + log_tail(os.path.join(self.log_dir, "nats.log")))

    def service_env(self, svc):
        return {
            "CAPLAT_HTTP_PORT": str(self.ports[svc]),
            "CAPLAT_DB_URL": self.db_url(svc),
            "CAPLAT_DB_SCHEMA": svc,
            "CAPLAT_REDIS_URL": f"redis://127.0.0.1:{self.ports['redis']}",
            "CAPLAT_NATS_URL": f"nats://127.0.0.1:{self.ports['nats']}",
            "CAPLAT_MIGRATIONS_DIR": os.path.join(ROOT, "deploy", "sql", svc),
            "CAPLAT_VAR_DIR": self.base,
            "CAPLAT_SMS_PROVIDER": f"local:{self.sms_dir}",
            "CAPLAT_LOG_LEVEL": os.environ.get("CAPLAT_LOG_LEVEL", "info"),
        }

    @property
    def pki_dir(self):
        return os.path.join(self.base, "pki")

    def make_pki(self):
        """The demo/test vendor PKI (tests/ukey/mkpki.sh): roots and USB-key
        certificates for RSA, ECDSA P-256 and SM2."""
        run_step(["bash", os.path.join(ROOT, "tests", "ukey", "mkpki.sh"), self.pki_dir],
                 what="the demo PKI")

    def extra_env(self, svc):
        """The service's own configuration beyond service_env()."""
        env = {
            # Every test and demo client is 127.0.0.1: the per-address daily
            # SMS cap (100 in production) would stop a run; tests prove it
            # with a preset counter instead.
            "auth": lambda: {"CAPLAT_SMS_SECRET": self.secrets["sms_secret"],
                             "CAPLAT_VENDOR_ROOTS": self.vendor_roots_bundle(),
                             "CAPLAT_SMS_DAILY_IP": "100000",
                             # notices' SMS: a quick sender (issue 17)
                             "CAPLAT_SMS_DELIVERY_MS": "60000" if self.persistent else "200"},
            "enterprise": lambda: {"CAPLAT_ID_HASH_KEY": self.secrets["id_hash_key"]},
            "issuance": lambda: dict(self.issuance_env(),
                                     CAPLAT_VENDOR_ROOTS=self.vendor_roots_bundle()),
            # tests move expires_at behind the service's back: it looks
            # every second there (its own orders bring the sweep forward)
            "orders": lambda: {"CAPLAT_ORDER_SWEEP_SECONDS": "1",
                               "CAPLAT_ORDER_SWEEP_IDLE_SECONDS": "60" if self.persistent else "1",
                               "CAPLAT_DIGEST_GATHER_SECONDS": "600" if self.persistent else "1",
                               "CAPLAT_IDEMPOTENCY_PURGE_SECONDS": "3600" if self.persistent else "1"},
            "payments": lambda: dict(self.start_paysim(), **self.start_taxsim()),
        }
        return env[svc]()

    def issuance_env(self):
        """issuance's own configuration: the downstream platforms' interop
        secrets (derived from the suite's secrets, so tests can sign), the
        CRL distribution point on the gateway, a quick resumer for tests."""
        import hashlib
        codes = ["LN_JSGC", "LN_ZTB", "LN_ZFCG", "LN_GGZY", "SY_GGZY", "DL_GGZY", "DL_ZFCG",
                 "AS_GGZY", "JZ_GGZY", "CY_GGZY", "HC_DZCG", "SF_JSXM"]
        seed = self.secrets["db_admin"]
        secrets_ = ",".join(f"{c}={hashlib.sha256(f'interop:{c}:{seed}'.encode()).hexdigest()[:32]}"
                            for c in codes)
        return {"CAPLAT_INTEROP_SECRETS": secrets_,
                "CAPLAT_CA_CRL_BASE_URL": self.gateway + "/api/v1/certs/crl/",
                "CAPLAT_TLS_CA_FILE": os.path.join(self.tls_ca(), "ca.pem"),
                "CAPLAT_ISSUANCE_RESUME_MS": "1000" if self.persistent else "200",
                "CAPLAT_ISSUANCE_RETRY_SECONDS": "5" if self.persistent else "1",
                # tests move the reminder pass's clock by writing this file;
                # the pass is off but in the tests that turn it on
                # (tests/integration/test_reminders.py), so that it never
                # adds outbox rows under another test's feet
                **({} if self.persistent else {
                    "CAPLAT_TEST_CLOCK_FILE": os.path.join(self.base, "test_clock"),
                    "CAPLAT_REMINDER_PASS_MS": "0"})}

    def local_ca_roots(self):
        """Creates issuance's local CA if missing (caplat-issuance ca-init)
        and returns the path of its roots bundle ($CAPLAT_VAR_DIR/ca/roots.pem),
        for auth's CAPLAT_VENDOR_ROOTS: certificates it renews must log in."""
        env = dict(os.environ, **self.service_env("issuance"), **self.issuance_env())
        out = run_step([os.path.join(self.build, "bin", "caplat-issuance"), "ca-init"],
                       what="issuance's local CA", env=env, cwd=ROOT)
        return out.stdout.strip()

    def vendor_roots_bundle(self):
        """The test vendors' roots (pki/roots.pem) and, when issuance is
        built, its local CA's: a bundle for auth's CAPLAT_VENDOR_ROOTS."""
        path = os.path.join(self.base, "vendor-roots.pem")
        parts = [os.path.join(self.pki_dir, "roots.pem")]
        if "issuance" in self.ports and os.path.exists(os.path.join(self.build, "bin", "caplat-issuance")):
            parts.append(self.local_ca_roots())
        with open(path, "w") as f:
            for part in parts:
                f.write(open(part).read())
        return path

    def tls_ca(self):
        """The test TLS PKI (tests/paysim/tlspki.py): the CA the services
        trust (CAPLAT_TLS_CA_FILE) and the simulators' server certificate
        for 127.0.0.1; returns its directory."""
        sys.path.insert(0, os.path.join(ROOT, "tests", "paysim"))
        import tlspki
        return tlspki.make(os.path.join(self.base, "tls"))

    def start_paysim(self):
        """The Alipay / WeChat Pay simulator (tests/paysim/) as the default
        provider of payments; returns payments' provider configuration."""
        d = os.path.join(self.base, "paysim")
        port = self.ports.setdefault("paysim", FIXED_PORTS["paysim"] if self.persistent else free_port())
        p = self.procs.get("paysim")
        if p is None or p.poll() is not None:
            self._spawn("paysim", [sys.executable, os.path.join(ROOT, "tests", "paysim", "paysim.py"),
                                   "--dir", d, "--port", str(port),
                                   "--time-scale", "1" if self.persistent else "0.002",
                                   "--watch-pidfile", os.path.join(self.run_dir, "payments.pid"),
                                   "--tls-cert", os.path.join(self.tls_ca(), "server.pem"),
                                   "--tls-key", os.path.join(self.tls_ca(), "server.key")],
                        port=port)
        sim = f"https://127.0.0.1:{port}"
        return {"CAPLAT_PAY_NOTIFY_BASE": self.gateway,
                "CAPLAT_TLS_CA_FILE": os.path.join(self.tls_ca(), "ca.pem"),
                "CAPLAT_PAY_QUERY_DELAY": "60" if self.persistent else "3",
                "CAPLAT_PAY_SWEEP_MS": "2000" if self.persistent else "300",
                # tests move times behind the service's back: look every second
                "CAPLAT_PAY_IDLE_MS": "60000" if self.persistent else "1000",
                "CAPLAT_IDEMPOTENCY_PURGE_SECONDS": "3600" if self.persistent else "1",
                "CAPLAT_ALIPAY_GATEWAY": sim + "/gateway.do", "CAPLAT_ALIPAY_APP_ID": "2021000000000001",
                "CAPLAT_ALIPAY_SELLER_ID": "2088101117955611",
                "CAPLAT_ALIPAY_PRIVATE_KEY": os.path.join(d, "alipay_merchant.key"),
                "CAPLAT_ALIPAY_PUBLIC_KEY": os.path.join(d, "alipay.pub"),
                "CAPLAT_WECHAT_API": sim, "CAPLAT_WECHAT_MCHID": "1900000001",
                "CAPLAT_WECHAT_APPID": "wx8888888888888888",
                "CAPLAT_WECHAT_SERIAL": "3775B6A45ACD588826D15E583A95F5DD2A4D4DB1",
                "CAPLAT_WECHAT_PRIVATE_KEY": os.path.join(d, "wechat_merchant.key"),
                "CAPLAT_WECHAT_PLATFORM_CERTS": os.path.join(d, "wechat_platform.pem"),
                "CAPLAT_WECHAT_APIV3_KEY_FILE": os.path.join(d, "wechat_apiv3.key")}

    def start_taxsim(self):
        """Tests only (`make run` keeps payments' local invoice provider):
        the 数电票 platform simulator (tests/taxsim/) and the SMTP sink
        (tests/smtpsink/, python3-aiosmtpd); returns payments' tax platform
        and e-mail configuration (issue 18)."""
        if self.persistent:
            return {}
        d = os.path.join(self.base, "taxsim")
        os.makedirs(d, exist_ok=True)
        key = os.path.join(d, "api.key")
        if not os.path.exists(key):
            with open(key, "w") as f:
                f.write(self.secrets["db_admin"][:16] + "taxsim\n")
        port = self.ports.setdefault("taxsim", free_port())
        p = self.procs.get("taxsim")
        if p is None or p.poll() is not None:
            self._spawn("taxsim", [sys.executable, os.path.join(ROOT, "tests", "taxsim", "taxsim.py"),
                                   "--port", str(port), "--key-file", key, "--dir", d,
                                   "--watch-pidfile", os.path.join(self.run_dir, "payments.pid"),
                                   "--tls-cert", os.path.join(self.tls_ca(), "server.pem"),
                                   "--tls-key", os.path.join(self.tls_ca(), "server.key")],
                        port=port)
        self.smtp_dir = os.path.join(self.base, "smtpsink")
        # The relay as a real one is: STARTTLS required, then AUTH.
        self.smtp_auth = os.path.join(d, "smtp_auth")
        smtp_password = os.path.join(d, "smtp_password")
        if not os.path.exists(smtp_password):
            with open(smtp_password, "w") as f:
                f.write(self.secrets["db_admin"][:12] + "smtp\n")
            with open(self.smtp_auth, "w") as f:
                f.write("caplat-mail:" + open(smtp_password).read())
        smtp_port = self.ports.setdefault("smtpsink", free_port())
        p = self.procs.get("smtpsink")
        if p is None or p.poll() is not None:
            self._spawn("smtpsink", [sys.executable, os.path.join(ROOT, "tests", "smtpsink", "smtpsink.py"),
                                     "--dir", self.smtp_dir, "--port", str(smtp_port),
                                     "--tls-cert", os.path.join(self.tls_ca(), "server.pem"),
                                     "--tls-key", os.path.join(self.tls_ca(), "server.key"),
                                     "--auth-file", self.smtp_auth,
                                     "--watch-pidfile", os.path.join(self.run_dir, "payments.pid")],
                        port=smtp_port)
        return {"CAPLAT_TAXPLAT_URL": f"https://127.0.0.1:{port}", "CAPLAT_TAXPLAT_KEY": key,
                "CAPLAT_INVOICE_RETRY_SECONDS": "1",
                "CAPLAT_SMTP_HOST": "127.0.0.1", "CAPLAT_SMTP_PORT": str(smtp_port),
                "CAPLAT_SMTP_TLS": "starttls", "CAPLAT_SMTP_USER": "caplat-mail",
                "CAPLAT_SMTP_PASSWORD_FILE": smtp_password,
                "CAPLAT_EMAIL_RETRY_SECONDS": "1", "CAPLAT_EMAIL_MAX_ATTEMPTS": "3"}

    def seed_staff(self):
        binary = os.path.join(self.build, "bin", "caplat-auth")
        for user, roles in STAFF.items():
            env = dict(os.environ, **self.service_env("auth"),
                       CAPLAT_STAFF_PASSWORD=self.secrets[f"staff_{user}"])
            run_step([binary, "staff-add", user, roles], what="seeding staff", env=env)

    def start_service(self, svc, extra_env=None):
        env = {}
        for k, v in dict(self.service_env(svc), **self.extra_env(svc)).items():
            # make run's defaults yield to what the operator set; the wiring
            # (each service's port, database, Redis, NATS, migrations, var
            # directory) does not
            if self.persistent and k in os.environ and k not in WIRING:
                if os.environ[k] != v:
                    print(f"{svc}: {k} from the environment", file=sys.stderr)
                continue
            env[k] = v
        env.update(extra_env or {})
        binary = os.path.join(self.build, "bin", f"caplat-{svc}")
        self._spawn(svc, [binary], env=env, port=self.ports[svc])
        self.wait_ready(svc)
        for name in instance_names(svc):
            if name not in self.ports:
                self.ports[name] = free_port()
                with open(self._state_file("ports.json"), "w") as f:
                    json.dump(self.ports, f)
            self._spawn(name, [binary], env=dict(env, CAPLAT_HTTP_PORT=str(self.ports[name])),
                        port=self.ports[name])

    def wait_ready(self, svc, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.service_url(svc) + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise SuiteError(f"{svc} not ready within {timeout}s (GET /readyz)\n--- {svc}.log:\n"
                         + log_tail(os.path.join(self.log_dir, f"{svc}.log")))

    def start_nginx(self):
        d = os.path.join(self.base, "nginx")
        os.makedirs(os.path.join(d, "logs"), exist_ok=True)
        with open(os.path.join(ROOT, "deploy", "gateway", "nginx.conf.in")) as f:
            conf = f.read()
        upstreams, locations = [], []
        for svc in SERVICES:
            if svc == "auth":
                continue
            servers = " ".join(f"server 127.0.0.1:{self.ports[n]};" for n in [svc] + instance_names(svc))
            upstreams.append(f"\tupstream {svc} {{ {servers} keepalive 64; }}")
            for loc in ALL_SERVICES[svc][1]:
                locations.append(f"\t\tlocation {loc} {{ {LOCATION_EXTRA.get(loc, '')}proxy_pass http://{svc}; }}")
        subst = {"GATEWAY_PORT": self.ports["gateway"], "PREFIX": d,
                 "UPSTREAMS": "\n".join(upstreams), "LOCATIONS": "\n".join(locations),
                 "RATE": os.environ.get("CAPLAT_GATEWAY_RATE", "200"),
                 "BURST": os.environ.get("CAPLAT_GATEWAY_BURST", "400")}
        subst.update({f"{svc.upper()}_PORT": self.ports[svc] for svc in SERVICES})
        for k, v in subst.items():
            conf = conf.replace("@" + k + "@", str(v))
        if instance_names("auth"):
            conf = conf.replace(f"server 127.0.0.1:{self.ports['auth']};",
                                " ".join(f"server 127.0.0.1:{self.ports[n]};"
                                         for n in ["auth"] + instance_names("auth")), 1)
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        self._spawn("nginx", ["nginx", "-p", d, "-c", path, "-e", os.path.join(d, "logs", "error.log"),
                              "-g", "daemon off;"], port=self.ports["gateway"])

    def start_all(self, services=None):
        self.make_pki()
        self.start_postgres()
        self.start_redis()
        self.start_nats()
        if "auth" in SERVICES:
            self.seed_staff()
        for svc in services or SERVICES:
            self.start_service(svc)
        self.start_nginx()

    def stop_all(self):
        self.stop_supervisor()
        extra = [n for n in self.ports if "." in n and n.split(".")[0] in SERVICES]
        for name in ["nginx"] + list(SERVICES) + extra + ["paysim", "taxsim", "smtpsink", "nats", "redis"]:
            self.kill(name, signal.SIGTERM)
        # postgres: fast shutdown on SIGINT
        self.kill("postgres", signal.SIGINT)


class Supervisor:
    """Restarts any process of the suite at `base` that dies: polls the
    pidfiles every 0.1 s; a dead process's group is killed (nginx workers,
    PostgreSQL backends, service workers left behind) and it is started
    again with its saved command (run/<name>.cmd.json) after a backoff —
    0 s for the first death, then 0.5 s doubling up to 30 s, back to 0 once
    it has stayed up 10 s. Each death and restart is a line on stdout
    (log/supervisor.log); run/status.json holds restarts per process."""

    def __init__(self, base):
        self.suite = Suite(base, persistent=True)
        self.state = {}     # name -> {"restarts", "fails", "next_try", "started", "last_restart"}
        self.children = []  # Popen of what we restarted (reaped here)
        self.stopping = False

    def log(self, msg):
        print(time.strftime("%Y-%m-%dT%H:%M:%S") + f" supervisor: {msg}", flush=True)

    def _down(self, name):
        return os.path.exists(os.path.join(self.suite.run_dir, f"{name}.down"))

    def tick(self):
        run_dir = self.suite.run_dir
        now = time.time()
        first, second, cap, reset = SUPERVISED_BACKOFF
        for f in sorted(os.listdir(run_dir)):
            if not f.endswith(".cmd.json"):
                continue
            name = f[:-len(".cmd.json")]
            st = self.state.setdefault(name, {"restarts": 0, "fails": 0, "next_try": None,
                                              "started": None, "last_restart": None})
            if self._down(name):
                st["next_try"] = None
                continue
            pid = self.suite.pid(name)
            if pid and pid_alive(pid):
                if st["started"] and now - st["started"] > reset:
                    st["fails"], st["started"] = 0, None
                continue
            if st["next_try"] is None:
                delay = first if st["fails"] == 0 else min(cap, second * 2 ** (st["fails"] - 1))
                st["next_try"] = now + delay
                self.log(f"{name} (pid {pid}) is down; restart in {delay:.1f}s")
                if pid:
                    try:
                        os.killpg(pid, signal.SIGKILL)  # what it left behind
                    except (ProcessLookupError, PermissionError):
                        pass
            if now < st["next_try"] or self._down(name):
                continue
            try:
                with open(os.path.join(run_dir, f)) as fh:
                    cmd = json.load(fh)
                user = pwd.getpwnam(cmd["user"]) if cmd.get("user") else None
                p = self.suite._popen(name, cmd["argv"], cmd["env"], user)
                self.children.append(p)
                st["restarts"] += 1
                st["fails"] += 1
                st["started"] = now
                st["last_restart"] = time.strftime("%Y-%m-%dT%H:%M:%S")
                self.log(f"{name} restarted as pid {p.pid} (restart {st['restarts']})")
            except Exception as e:  # noqa: BLE001 — logged, retried after the backoff
                st["fails"] += 1
                self.log(f"{name} could not be restarted: {e}")
            st["next_try"] = None
        self.children = [p for p in self.children if p.poll() is None]
        tmp = os.path.join(run_dir, "status.json.tmp")
        with open(tmp, "w") as fh:
            json.dump({n: {"restarts": v["restarts"], "last_restart": v["last_restart"]}
                       for n, v in self.state.items()}, fh)
        os.replace(tmp, os.path.join(run_dir, "status.json"))

    def run(self):
        def stop(*_):
            self.stopping = True
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.log(f"watching {self.suite.base} (pid {os.getpid()})")
        while not self.stopping:
            self.tick()
            time.sleep(0.1)
        self.log("stopped")


def print_status(s):
    rows = s.status()
    sup = s.pid("supervisor")
    print(f"supervisor: {'up, pid ' + str(sup) if sup and pid_alive(sup) else 'down'}")
    print(f"{'process':12} {'pid':>8}  {'state':8} {'restarts':>8}  last restart")
    for name, pid, state, restarts, last in rows:
        print(f"{name:12} {pid or '-':>8}  {state:8} {restarts:>8}  {last or '-'}")


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else "run"
    base = os.path.join(ROOT, "var")
    if cmd == "supervise":
        Supervisor(sys.argv[2] if len(sys.argv) > 2 else base).run()
        return
    if cmd == "stop":
        if os.path.exists(os.path.join(base, "ports.json")):
            s = Suite(base, persistent=True)
            s.stop_supervisor()
            s.stop_all()
        print("caplat stopped")
        return
    if cmd == "status":
        if not os.path.exists(os.path.join(base, "ports.json")):
            print("caplat is not running here (no var/ports.json): make run")
            return
        print_status(Suite(base, persistent=True))
        return
    try:
        s = Suite(base, persistent=True)
        s.stop_supervisor()  # a running one would fight the start-up
        s.start_all()
        s.start_supervisor()
    except SuiteError as e:
        print(f"make run: {e}", file=sys.stderr)
        print("make run: what started is still running; make stop stops it", file=sys.stderr)
        sys.exit(1)
    print(f"caplat is up: gateway {s.gateway}")
    print(f"  try:   curl -s -X POST {s.gateway}/api/v1/auth/ca/challenge -d '{{}}'")
    print(f"  staff: " + ", ".join(f"{u} / {s.secrets['staff_' + u]}" for u in STAFF))
    print(f"  demo USB keys (certificates and keys): {s.pki_dir}")
    print(f"  SMS codes (local provider): {s.sms_dir}/<phone>.log")
    print(f"  logs: {s.log_dir}   supervised (restarts on death): make status   stop: make stop")


if __name__ == "__main__":
    main()
