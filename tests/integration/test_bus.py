"""test_bus — common/bus against the suite's real PostgreSQL and NATS
JetStream, through build/bin/bustool: every event takes effect exactly once
across a relay crash, a consumer crash, duplicate deliveries, broken
PostgreSQL connections and a NATS restart; a poison event ends in the
dead-letter table and subject while the consumer goes on.

Each test owns a schema and LOGIN role (bus_tN) with the bus tables from
deploy/sql/common/001_bus.sql and a table applied(event_id, n) without a
unique constraint, so a double application shows as a duplicate row. Every
process a test starts is stopped in a finally; every wait is bounded.
"""
import json
import os
import secrets
import signal
import subprocess
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIGRATION = os.path.join(ROOT, "deploy", "sql", "common", "001_bus.sql")


class BusWorld:
    """One test's schema, role, event type and bustool processes."""

    def __init__(self, suite, name):
        self.suite = suite
        self.name = name
        self.type = f"{name}.item.created"
        self.subject = f"caplat.{self.type}"
        self.procs = []
        password = secrets.token_hex(16)
        suite.psql(f"""DO $$BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN
                CREATE ROLE {name} LOGIN PASSWORD '{password}';
            ELSE
                ALTER ROLE {name} LOGIN PASSWORD '{password}';
            END IF; END$$;
            GRANT CONNECT ON DATABASE caplat TO {name};
            DROP SCHEMA IF EXISTS {name} CASCADE;
            CREATE SCHEMA {name} AUTHORIZATION {name};
            ALTER ROLE {name} SET search_path = {name}""")
        with open(MIGRATION) as f:
            migration = f.read()
        # Applied as the schema's owner, twice: the migration is idempotent.
        for _ in range(2):
            suite.psql(f"SET ROLE {name}; SET search_path TO {name};\n{migration}")
        suite.psql(f"SET ROLE {name}; CREATE TABLE {name}.applied (event_id uuid NOT NULL, n int)")
        self.env = dict(os.environ)
        self.env.update({
            "CAPLAT_DB_URL": (f"postgresql://{name}:{password}@127.0.0.1:"
                              f"{suite.ports['postgres']}/caplat?connect_timeout=3"),
            "CAPLAT_NATS_URL": f"nats://127.0.0.1:{suite.ports['nats']}",
            "CAPLAT_DB_SCHEMA": name,
            "CAPLAT_LOG_LEVEL": "info",
            "CAPLAT_BUS_ACK_WAIT_MS": "2000",
            "CAPLAT_BUS_NAK_DELAY_MS": "200",
        })
        for k in ("CAPLAT_FAULT", "CAPLAT_FAULT_ONCE"):
            self.env.pop(k, None)

    @property
    def bustool(self):
        return os.path.join(self.suite.build, "bin", "bustool")

    # ---- processes ------------------------------------------------------
    def tool(self, *args, timeout=30):
        """Runs a short bustool command and returns its stdout."""
        r = subprocess.run([self.bustool, *map(str, args)], env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"bustool {args[0]} failed ({r.returncode}): {r.stderr[-2000:]}")
        return r.stdout

    def start(self, tag, *args, extra_env=None):
        """Starts a long-running bustool (relay, consume); logs in the suite's log dir."""
        env = dict(self.env)
        env.update(extra_env or {})
        log_path = os.path.join(self.suite.log_dir, f"bustool-{self.name}-{tag}.log")
        out_path = os.path.join(self.suite.log_dir, f"bustool-{self.name}-{tag}.out")
        with open(log_path, "ab") as log, open(out_path, "wb") as out:
            p = subprocess.Popen([self.bustool, *map(str, args)], env=env, stdout=out,
                                 stderr=log, stdin=subprocess.DEVNULL, cwd=ROOT)
        p.log_path, p.out_path = log_path, out_path
        self.procs.append(p)
        return p

    def stop(self, p):
        """SIGTERM, then SIGKILL after 15 s; returns what it printed (the metrics)."""
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=15)
                raise AssertionError(f"{p.args} did not stop on SIGTERM")
        with open(p.out_path) as f:
            return f.read()

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=15)

    def logs(self):
        text = []
        for p in self.procs:
            with open(p.log_path, errors="replace") as f:
                text.append(f"--- {p.log_path}\n{f.read()[-3000:]}")
        return "\n".join(text)

    # ---- observations ---------------------------------------------------
    def scalar(self, sql):
        rows = self.suite.psql(sql)
        return int(rows[0][0])

    def unpublished(self):
        return self.scalar(f"SELECT count(*) FROM {self.name}.outbox WHERE published_at IS NULL")

    def applied(self):
        """(rows, distinct event ids) in applied."""
        rows = self.suite.psql(f"SELECT count(*), count(DISTINCT event_id) FROM {self.name}.applied")
        return int(rows[0][0]), int(rows[0][1])

    def inbox(self, consumer):
        return self.scalar(f"SELECT count(*) FROM {self.name}.inbox WHERE consumer = '{consumer}'")

    def stream_count(self, subject):
        """Messages on subject in the CAPLAT stream, read from NATS."""
        return int(self.tool("count", subject).strip())

    def wait_until(self, what, fn, timeout=30):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = fn()
            if last is True:
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last})\n"
                             + self.logs())


def metric(text, name, consumer=None):
    key = f'{name}{{consumer="{consumer}"}}' if consumer else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return int(line.split()[1])
    raise AssertionError(f"no {key} in metrics:\n{text}")


def envelope(event_id, type_, n):
    return json.dumps({"specversion": "1.0", "id": event_id, "source": "/caplat/test",
                       "type": type_, "time": "2026-11-26T09:00:00.000000Z",
                       "datacontenttype": "application/json", "data": {"n": n}})


def wait_jetstream(suite, timeout=30):
    url = f"http://127.0.0.1:{suite.ports['nats_monitor']}/healthz?js-enabled-only=true"
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("JetStream did not come back")


def test_bus_exactly_once_across_relay_crash(suite):
    """The relay dies after JetStream acked a batch but before the rows were
    marked: the next relay publishes them again, the stream keeps one copy of
    each (Nats-Msg-Id), and a consumer applies each event once."""
    w = BusWorld(suite, "bus_t1")
    n = 100
    try:
        w.tool("emit", n, w.type)
        assert w.unpublished() == n
        crashed = w.start("relay-crash", "relay",
                          extra_env={"CAPLAT_FAULT": "relay_crash_after_publish"})
        rc = crashed.wait(timeout=30)
        assert rc == 137, f"relay exited {rc}\n{w.logs()}"
        assert w.unpublished() == n, "the crash happened before the UPDATE committed"
        assert w.stream_count(w.subject) == n, "JetStream acked the whole batch"

        relay = w.start("relay", "relay")
        w.wait_until("the second relay to mark every row", lambda: w.unpublished() == 0)
        metrics = w.stop(relay)
        assert metric(metrics, "caplat_bus_published_total") == n  # acked as duplicates
        assert metric(metrics, "caplat_bus_publish_errors_total") == 0
        assert w.stream_count(w.subject) == n, "dedup by Nats-Msg-Id kept one copy"

        consumer = w.start("consumer", "consume", "bus_t1_c", w.subject, 5)
        w.wait_until("every event applied", lambda: w.applied() == (n, n) or w.applied())
        time.sleep(1.0)  # a second application would show up by now
        assert w.applied() == (n, n)
        assert w.inbox("bus_t1_c") == n
        assert w.scalar(f"SELECT count(*) FROM bus_t1.applied a JOIN bus_t1.outbox o "
                        f"ON o.id = a.event_id") == n
        metrics = w.stop(consumer)
        assert metric(metrics, "caplat_bus_consumed_total", "bus_t1_c") == n
        assert metric(metrics, "caplat_bus_duplicates_total", "bus_t1_c") == 0
    finally:
        w.close()


def test_bus_consumer_crash_before_commit(suite):
    """The consumer dies after its handler ran but before COMMIT: nothing of
    that transaction stays, JetStream redelivers, and the restarted consumer
    applies every event exactly once."""
    w = BusWorld(suite, "bus_t2")
    n = 30
    once = os.path.join(suite.base, "bus_t2.fault-once")
    fault = {"CAPLAT_FAULT": "consumer_crash_before_commit", "CAPLAT_FAULT_ONCE": once}
    try:
        w.tool("emit", n, w.type)
        crashed = w.start("consumer-crash", "consume", "bus_t2_c", w.subject, 10, extra_env=fault)
        rc = crashed.wait(timeout=30)
        assert rc == 137, f"consumer exited {rc}\n{w.logs()}"
        assert os.path.exists(once)
        assert w.applied() == (0, 0), "the handler's insert was never committed"
        assert w.inbox("bus_t2_c") == 0

        # Same environment: the once-file keeps it from crashing again.
        consumer = w.start("consumer", "consume", "bus_t2_c", w.subject, 10, extra_env=fault)
        w.wait_until("every event applied after the restart",
                     lambda: w.applied() == (n, n) or w.applied())
        time.sleep(1.0)
        assert w.applied() == (n, n)
        assert w.inbox("bus_t2_c") == n
        assert w.unpublished() == 0
        metrics = w.stop(consumer)
        assert metric(metrics, "caplat_bus_consumed_total", "bus_t2_c") == n
        assert metric(metrics, "caplat_bus_dead_letters_total", "bus_t2_c") == 0
    finally:
        w.close()


def test_bus_poison_event_dead_lettered(suite):
    """An event whose handler always fails is tried max_deliver (3) times,
    then parked in dead_letter and on caplat.dlq.<durable>, with one error
    line and a metric; the consumer applies the good events meanwhile and
    after."""
    w = BusWorld(suite, "bus_t3")
    durable = "bus_t3_c"
    try:
        poison_id = w.tool("emit-json", w.type, '{"poison": true}').strip()
        w.tool("emit", 5, w.type)
        consumer = w.start("consumer", "consume", durable, w.subject, 3)
        w.wait_until("the poison event dead-lettered and the good ones applied",
                     lambda: (w.applied() == (5, 5) and
                              w.scalar("SELECT count(*) FROM bus_t3.dead_letter") == 1)
                     or (w.applied(), w.scalar("SELECT count(*) FROM bus_t3.dead_letter")))
        rows = suite.psql("SELECT consumer, event_id, subject, deliveries, payload, error, "
                          "replayed_at IS NULL FROM bus_t3.dead_letter")
        assert len(rows) == 1
        consumer_col, event_id, subject, deliveries, payload, error, not_replayed = rows[0]
        assert (consumer_col, event_id, subject, deliveries, not_replayed) == \
            (durable, poison_id, w.subject, "3", "t")
        assert json.loads(payload)["data"] == {"poison": True}
        assert json.loads(payload)["id"] == poison_id
        assert error == "handler failed"
        assert w.stream_count(f"caplat.dlq.{durable}") == 1
        assert w.scalar(f"SELECT count(*) FROM bus_t3.inbox WHERE event_id = '{poison_id}'") == 0

        # The consumer goes on.
        w.tool("emit", 5, w.type)
        w.wait_until("the later events applied", lambda: w.applied() == (10, 10) or w.applied())
        time.sleep(0.5)
        assert w.scalar("SELECT count(*) FROM bus_t3.dead_letter") == 1
        metrics = w.stop(consumer)
        assert metric(metrics, "caplat_bus_dead_letters_total", durable) == 1
        assert metric(metrics, "caplat_bus_handler_errors_total", durable) == 3
        assert metric(metrics, "caplat_bus_consumed_total", durable) == 10
        with open(consumer.log_path) as f:
            errors = [line for line in f if "lvl=error" in line]
        assert len(errors) == 1 and "msg=bus_dead_letter " in errors[0], errors
        assert '"poison"' not in errors[0], "payloads stay out of the logs"
    finally:
        w.close()


def test_bus_duplicate_delivery_applied_once(suite):
    """The same event reaches the stream twice (two Nats-Msg-Ids, one
    envelope id): the inbox makes the second delivery a no-op."""
    w = BusWorld(suite, "bus_t4")
    durable = "bus_t4_c"
    event_id, sentinel_id = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        out = w.tool("publish", w.subject, f"a-{event_id}", envelope(event_id, w.type, 1))
        assert "duplicate=0" in out
        out = w.tool("publish", w.subject, f"b-{event_id}", envelope(event_id, w.type, 1))
        assert "duplicate=0" in out, "another Nats-Msg-Id is stored again"
        out = w.tool("publish", w.subject, f"a-{event_id}", envelope(event_id, w.type, 1))
        assert "duplicate=1" in out, "the same Nats-Msg-Id within the window is not"
        w.tool("publish", w.subject, f"a-{sentinel_id}", envelope(sentinel_id, w.type, 2))
        assert w.stream_count(w.subject) == 3

        consumer = w.start("consumer", "consume", durable, w.subject, 5)
        # The sentinel comes after both copies in the stream.
        w.wait_until("both events applied", lambda: w.applied() == (2, 2) or w.applied())
        time.sleep(0.5)
        assert w.applied() == (2, 2)
        assert w.scalar(f"SELECT count(*) FROM bus_t4.applied WHERE event_id = '{event_id}'") == 1
        assert w.inbox(durable) == 2
        metrics = w.stop(consumer)
        assert metric(metrics, "caplat_bus_consumed_total", durable) == 2
        assert metric(metrics, "caplat_bus_duplicates_total", durable) == 1
    finally:
        w.close()


def test_bus_survives_broken_pg_connections(suite):
    """The relay's and the consumer's PostgreSQL connections are killed
    (pg_terminate_backend) three times while events flow: both reconnect and
    every event is still applied exactly once."""
    w = BusWorld(suite, "bus_t5")
    durable = "bus_t5_c"
    try:
        consumer = w.start("consumer", "consume", durable, w.subject, 5)
        total = 0
        for _ in range(3):
            w.tool("emit", 20, w.type)
            total += 20
            time.sleep(0.2)
            killed = w.scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE usename = 'bus_t5'")
            assert killed >= 1
        w.wait_until("every event applied after the reconnects",
                     lambda: w.applied() == (total, total) or w.applied(), timeout=60)
        w.wait_until("the outbox drained", lambda: w.unpublished() == 0 or w.unpublished())
        time.sleep(1.0)
        assert w.applied() == (total, total)
        assert w.inbox(durable) == total
        metrics = w.stop(consumer)
        assert metric(metrics, "caplat_bus_published_total") >= total
        assert metric(metrics, "caplat_bus_dead_letters_total", durable) == 0
        with open(consumer.log_path) as f:
            assert "msg=bus_pg_ok" in f.read(), "a reconnect happened"
    finally:
        w.close()


def test_bus_survives_nats_restart(suite):
    """NATS is killed (-9) with a relay and a consumer running; events written
    meanwhile wait in the outbox; after the restart everything is published
    and applied exactly once."""
    w = BusWorld(suite, "bus_t6")
    durable = "bus_t6_c"
    try:
        consumer = w.start("consumer", "consume", durable, w.subject, 5)
        w.tool("emit", 20, w.type)
        w.wait_until("the first events applied", lambda: w.applied() == (20, 20) or w.applied())
        suite.kill("nats")
        w.tool("emit", 20, w.type)
        time.sleep(1.5)
        assert w.unpublished() == 20, "nothing can be acknowledged while NATS is down"
        suite.restart("nats")
        wait_jetstream(suite)
        w.wait_until("every event applied after the restart",
                     lambda: w.applied() == (40, 40) or w.applied(), timeout=60)
        w.wait_until("the outbox drained", lambda: w.unpublished() == 0 or w.unpublished())
        time.sleep(1.0)
        assert w.applied() == (40, 40)
        assert w.inbox(durable) == 40
        assert w.stream_count(w.subject) == 40
        metrics = w.stop(consumer)
        assert metric(metrics, "caplat_bus_nats_connected") == 1
    finally:
        w.close()


def test_bus_max_deliver_without_outcome_dead_lettered(suite):
    """With max_deliver 1 the consumer crashes on the only delivery: JetStream
    drops the events after AckWait with just an advisory, which the restarted
    consumer turns into dead_letter rows and DLQ messages, none lost silently."""
    w = BusWorld(suite, "bus_t7")
    durable = "bus_t7_c"
    once = os.path.join(suite.base, "bus_t7.fault-once")
    fault = {"CAPLAT_FAULT": "consumer_crash_before_commit", "CAPLAT_FAULT_ONCE": once}
    try:
        w.tool("emit", 3, w.type)
        crashed = w.start("consumer-crash", "consume", durable, w.subject, 1, extra_env=fault)
        rc = crashed.wait(timeout=30)
        assert rc == 137, f"consumer exited {rc}\n{w.logs()}"
        consumer = w.start("consumer", "consume", durable, w.subject, 1, extra_env=fault)
        w.wait_until("every event accounted for",
                     lambda: w.applied()[0] + w.scalar("SELECT count(*) FROM bus_t7.dead_letter") == 3
                     or (w.applied(), w.scalar("SELECT count(*) FROM bus_t7.dead_letter")))
        time.sleep(0.5)
        rows = suite.psql("SELECT d.error, d.deliveries FROM bus_t7.dead_letter d "
                          "JOIN bus_t7.outbox o ON o.id::text = d.event_id")
        dead = len(rows)
        assert dead >= 1, "the crashed batch held at least the event being handled"
        assert all(r == ["max deliveries reached without an outcome", "1"] for r in rows), rows
        assert w.applied()[0] + dead == 3 and w.applied()[0] == w.applied()[1]
        assert w.stream_count(f"caplat.dlq.{durable}") == dead
        metrics = w.stop(consumer)
        assert metric(metrics, "caplat_bus_dead_letters_total", durable) == dead
    finally:
        w.close()


def test_bus_one_relay_leads_marks_lazily_and_hands_over(suite):
    """Two relays of one schema (two processes of a service; issue 16): one
    leads and publishes, the other waits on the lead's advisory lock sending
    PostgreSQL nothing. Rows committed one transaction each while the lead
    runs are published at once and marked together (a few marking
    transactions, not one per row). When the lead is killed (-9) the other
    takes over at once and publishes only what came after: every row once
    in the stream."""
    w = BusWorld(suite, "bus_t8")
    n = 20
    emit_each = (f"DO $$BEGIN FOR i IN 1..{n} LOOP"
                 f" INSERT INTO bus_t8.outbox (id, type, data)"
                 f" VALUES (gen_random_uuid(), '{w.type}', jsonb_build_object('n', i));"
                 f" COMMIT; END LOOP; END$$")
    waiting = ("SELECT count(*) FROM pg_stat_activity WHERE usename = 'bus_t8'"
               " AND wait_event_type = 'Lock' AND query LIKE '%pg_advisory_lock%'")
    try:
        lead = w.start("lead", "relay", extra_env={"CAPLAT_BUS_RELAY_MARK_MS": "2000"})
        w.wait_until("the lead to hold its lock", lambda: w.scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND a.usename = 'bus_t8'") == 1)
        standby = w.start("standby", "relay")
        w.wait_until("the second relay to wait for the lead", lambda: w.scalar(waiting) == 1)

        suite.psql(emit_each)
        w.wait_until("every row marked", lambda: w.unpublished() == 0)
        marks = w.scalar("SELECT count(DISTINCT xmin::text) FROM bus_t8.outbox")
        assert marks < n / 2, f"{n} rows committed one by one were marked in {marks} transactions"
        assert w.stream_count(w.subject) == n

        lead.kill()
        lead.wait(timeout=15)
        w.wait_until("the standby to take the lead", lambda: w.scalar(waiting) == 0)
        suite.psql(emit_each)
        w.wait_until("the new rows marked by the new lead", lambda: w.unpublished() == 0)
        metrics = w.stop(standby)
        assert metric(metrics, "caplat_bus_published_total") == n, metrics
        assert w.stream_count(w.subject) == 2 * n
    finally:
        w.close()
