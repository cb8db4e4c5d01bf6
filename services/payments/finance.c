/* finance — staff with the finance role: refunds (Idempotency-Key; the
 * provider's refund, then payments.payment.refunded and the red-letter
 * invoice) and the daily reconciliation against the providers' bill files. */
#include "payments.h"

#include "audit.h"
#include "crypto.h"
#include "db.h"
#include "domain.h"
#include "json.h"
#include "log.h"
#include "session.h"
#include "util.h"
#include "work.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- POST /api/v1/finance/refunds --------------------------------------- */

struct refund {
	struct http_req *req;
	json_t *body;
	struct idem idem;
	const char *payment_id, *reason;
	long long amount_fen;
	char id[37], out_refund_no[33], created[48];
	char *channel, *out_trade_no, *order_id;
	int64_t total_fen;
};

static void
refund_free(void *p)
{
	struct refund *st = p;

	json_decref(st->body);
	free(st->channel);
	free(st->out_trade_no);
	free(st->order_id);
	free(st);
}

static void refund_on_claimed(void *arg, const struct db_result *res);
static void refund_on_created(void *arg, const struct db_result *res);
static void refund_on_provider(void *arg, const struct provider_answer *a);
static void refund_on_done(void *arg, const struct db_result *res);

static void
refund_start(struct http_req *req)
{
	struct json_field_err err;
	json_t *body;

	if (session_require_staff(req, "finance") != 0)
		return;
	if (http_read_json(req, &body) != 0)
		return;
	struct refund *st = xcalloc(1, sizeof(*st));
	st->req = req;
	st->body = body;
	http_req_attach(req, st, refund_free);
	if (idem_read(req, req->session->staff_id, &st->idem) != 0)
		return;
	idem_hash(&st->idem, req, body);
	if (json_field_str(body, "payment_id", JSON_FIELD_REQUIRED, 64,
	        &st->payment_id, &err) != 0 ||
	    json_field_str(body, "reason", JSON_FIELD_REQUIRED, 256,
	        &st->reason, &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	if (json_field_int(body, "amount_fen", JSON_FIELD_REQUIRED, 1,
	        MONEY_MAX_FEN, &st->amount_fen, NULL, &err) != 0) {
		if (err.status == 422 && strcmp(err.code, "FIELD_INVALID") == 0)
			http_reply_error(req, 422, "REFUND_AMOUNT_INVALID",
			    "amount_fen", "退款金额须为正整数（分）");
		else
			http_reply_field_error(req, &err);
		return;
	}
	if (!uuid_valid(st->payment_id)) {
		http_reply_error(req, 404, "PAYMENT_NOT_FOUND", "payment_id",
		    "支付记录不存在");
		return;
	}
	struct db_batch *b = db_batch_new();
	idem_claim_add(b, &st->idem, pay.cfg.idem.lock_seconds);
	db_batch_run(pay.svc.db, b, refund_on_claimed, st);
}

static void
refund_on_claimed(void *arg, const struct db_result *res)
{
	struct refund *st = arg;
	char amount[24];

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	if (idem_claim_result(st->req, res, 0, &st->idem) != IDEM_CLAIMED)
		return;
	uuid_v4(st->id);
	for (size_t s = 0, d = 0; st->id[s]; s++)
		if (st->id[s] != '-')
			st->out_refund_no[d++] = st->id[s];
	snprintf(amount, sizeof(amount), "%lld", st->amount_fen);
	/* The refund and its audit entry: one statement. */
	char *audit =
	    pay_audit_text(st->req, "refund.requested", "refund", st->id);
	const char *p[] = {st->id, st->payment_id, amount, st->reason,
	    st->req->session->staff_id, st->out_refund_no, audit};
	db_query(pay.svc.db, store_refund_create_sql, 7, p, refund_on_created,
	    st);
	free(audit);
}

static void
refund_on_created(void *arg, const struct db_result *res)
{
	struct refund *st = arg;
	struct http_req *req = st->req;

	if (res->status == DB_REFUSED) {
		const struct pay_refusal *r =
		    pay_refusal(res->message, "PAYMENT_NOT_REFUNDABLE");
		idem_finish_error(pay.svc.db, req, &st->idem, r->status,
		    r->rule, r->field, r->message);
		return;
	}
	if (res->status != DB_OK) {
		idem_release_db_error(pay.svc.db, req, &st->idem, res);
		return;
	}
	st->channel = xstrdup(db_value(res, 0, 0, 0));
	st->out_trade_no = xstrdup(db_value(res, 0, 0, 1));
	st->total_fen = strtoll(db_value(res, 0, 0, 2), NULL, 10);
	st->order_id = xstrdup(db_value(res, 0, 0, 3));
	time_rfc3339(now_wall_ms(), st->created);
	provider_refund(st->channel, st->out_trade_no, st->out_refund_no,
	    st->amount_fen, st->total_fen, st->reason, refund_on_provider, st);
}

static json_t *
refund_json(const struct refund *st, const char *status)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "id", st->id,
	    "payment_id", st->payment_id, "order_id", st->order_id,
	    "amount_fen", (json_int_t)st->amount_fen, "reason", st->reason,
	    "status", status, "created_at", st->created);
}

struct refund_done {
	struct refund *st;
	const char *status;
};

static void
refund_on_provider(void *arg, const struct provider_answer *a)
{
	struct refund *st = arg;
	char tax[24];

	if (a->status == PROVIDER_UNAVAILABLE) {
		/* It may have happened: the sweeper asks again with the same
		 * out_refund_no, which the providers treat idempotently. */
		log_warn(st->req->id, "msg=refund_pending refund=%s", st->id);
		idem_finish(pay.svc.db, st->req, &st->idem, 201,
		    refund_json(st, "pending"));
		return;
	}
	struct db_batch *b = db_batch_new();
	char *audit;
	if (a->status == PROVIDER_REFUSED) {
		audit =
		    pay_audit_text(st->req, "refund.failed", "refund", st->id);
		const char *p[] = {st->id, audit};
		db_batch_add(b, store_refund_fail_sql, 2, p);
	} else {
		snprintf(tax, sizeof(tax), "%lld",
		    (long long)money_vat_tax(st->amount_fen,
		        pay.cfg.vat_rate_bp));
		audit = pay_audit_text(st->req, "refund.succeeded", "refund",
		    st->id);
		const char *p[] = {st->id, a->trade_no, tax, audit};
		db_batch_add(b, store_refund_succeed_sql, 4, p);
	}
	free(audit);
	struct refund_done *d = xcalloc(1, sizeof(*d));
	d->st = st;
	d->status = a->status == PROVIDER_OK ? "succeeded" : "failed";
	db_batch_run(pay.svc.db, b, refund_on_done, d);
}

static void
refund_on_done(void *arg, const struct db_result *res)
{
	struct refund_done *d = arg;
	struct refund *st = d->st;
	const char *status = d->status;

	free(d);
	if (res->status != DB_OK) {
		/* The provider refunded; the sweeper's retry records it. */
		log_error(st->req->id, "msg=refund_not_recorded refund=%s",
		    st->id);
		status = "pending";
	} else if (strcmp(status, "succeeded") == 0) {
		log_info(st->req->id,
		    "msg=refund_succeeded refund=%s payment=%s amount_fen=%lld",
		    st->id, st->payment_id, st->amount_fen);
		pay_sweep_kick(); /* the red-letter invoice */
	}
	idem_finish(pay.svc.db, st->req, &st->idem, 201,
	    refund_json(st, status));
}

void
pay_finance_refund(struct http_req *req)
{
	session_require(req, refund_start);
}

/* ---- POST /api/v1/finance/bills/{channel}/{date} -----------------------
 * Daily bills of up to 10⁶ lines (issue 18 part 8). On a worker thread, with
 * its own blocking connection (db_sync): the bill is parsed as a stream
 * (bill_stream_*: one line in memory at a time, an Alipay bill converted
 * from GBK line by line) and every line goes by COPY into recon_bill
 * (truncated first; a line whose number's hash was seen before is flagged
 * as a possible repeat, recon_seen); then one set-based statement
 * (recon_run_fast: one hash FULL JOIN that writes only the differences)
 * compares the staged lines with the day's payments and refunds, records
 * the reconciliation, its differences (reconciliation_items, paged by GET
 * …/items) and its audit entry, and truncates recon_bill — all one
 * transaction (a refused
 * bill leaves nothing), on the worker's connection (the loop's pool has a
 * per-batch timeout of seconds). The loop then reads the report, which
 * inlines the first RECON_INLINE differences. */

#define RECON_INLINE 1000
#define RECON_COPY_CHUNK (256 * 1024)
#define RECON_AHEAD 16

struct recon {
	struct http_req *req;
	int wechat;
	char date[11];
	int parse_rc, db_failed;
	char err[256];
	char sha[CRYPTO_SHA256_HEX_SIZE];
	/* over the body: an upload's by the worker as it reads, a download's
	 * by the loop as it arrives (fetch_body: the worker, the busier
	 * thread, parses meanwhile) */
	struct crypto_sha256_ctx *hash;
	char id[37];
	size_t lines;
	long stream_ms, compare_ms; /* hash + parse + COPY; recon_run */
	/* the worker's COPY */
	struct db_sync *tx;
	char
	    *audit; /* the audit entry's data (pay_audit_text), from the loop */
	const char *staff;
	char *buf;
	size_t used;
	long seq;
	/* the numbers seen so far, as 64-bit hashes (open addressing, 0 is
	 * empty): a line whose hash was seen is flagged as possibly repeated,
	 * recon_run_fast checks the flags exactly (8 bytes a line at most 50 %
	 * full, no copy of the numbers themselves) */
	uint64_t *seen;
	size_t seen_cap, seen_used;
	long flagged;
	/* the last lines' hashes not yet looked up (their slots prefetched),
	 * with where their dup flag is in buf: a lookup waits RECON_AHEAD lines
	 * for its cache line instead of stalling on it (recon_settle) */
	uint64_t ahead_h[RECON_AHEAD];
	size_t ahead_at[RECON_AHEAD];
	unsigned ahead_first, ahead_n;
	/* POST …/fetch: the provider's download, between the loop (fetch_body
	 * adds, holding the download above RECON_PIPE_HIGH bytes) and the
	 * worker (recon_pipe_read takes, resuming it below RECON_PIPE_LOW) */
	int fetch;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct evbuffer *pipe;
	struct event *resume; /* activated by the worker, runs on the loop */
	int dl_done, dl_failed, held, worker_done; /* under mu */
	int dl_finished, staged;                   /* the loop's */
};

#define RECON_PIPE_HIGH (4 * 1024 * 1024)
#define RECON_PIPE_LOW (1024 * 1024)
/* the worker is woken when a piece of this much is there (or the end):
 * not once per TLS record (12 000 wake-ups at 10⁶ lines) */
#define RECON_PIPE_WAKE (256 * 1024)

static void
recon_free(void *p)
{
	struct recon *st = p;

	if (st->hash != NULL)
		crypto_sha256_end_hex(st->hash, st->sha);
	free(st->buf);
	free(st->seen);
	free(st->audit);
	if (st->fetch) {
		event_free(st->resume);
		evbuffer_free(st->pipe);
		pthread_mutex_destroy(&st->mu);
		pthread_cond_destroy(&st->cv);
	}
	free(st);
}

static int
date_ok(const char *s)
{
	struct tm tm = {0}, norm;
	char back[11];

	if (strlen(s) != 10 || strptime(s, "%Y-%m-%d", &tm) == NULL)
		return 0;
	strftime(back, sizeof(back), "%Y-%m-%d", &tm);
	norm = tm; /* timegm normalises: 02-30 becomes 03-02 */
	return strcmp(back, s) == 0 && timegm(&norm) != -1 &&
	    norm.tm_year == tm.tm_year && norm.tm_mon == tm.tm_mon &&
	    norm.tm_mday == tm.tm_mday;
}

static void recon_stage(void *arg);
static void bill_start(struct http_req *req);
static void recon_on_staged(void *arg);
static void recon_on_saved(void *arg, const struct db_result *res);

/* COPY text: a value with \, TAB, LF and CR escaped; NULL as \N. The runs
 * without any of them (all of them, in practice) are copied whole. */
static void
copy_value(struct recon *st, const char *v, int last)
{
	if (v == NULL) {
		memcpy(st->buf + st->used, "\\N", 2);
		st->used += 2;
	}
	while (v != NULL && *v) {
		size_t plain = strcspn(v, "\\\t\n\r");
		memcpy(st->buf + st->used, v, plain);
		st->used += plain;
		v += plain;
		if (*v == '\0')
			break;
		st->buf[st->used++] = '\\';
		st->buf[st->used++] = *v == '\t' ? 't'
		    : *v == '\n'                 ? 'n'
		    : *v == '\r'                 ? 'r'
		                                 : '\\';
		v++;
	}
	st->buf[st->used++] = last ? '\n' : '\t';
}

/* A number in COPY text, without printf. */
static void
copy_int(struct recon *st, long long n, int last)
{
	char tmp[24];
	size_t i = sizeof(tmp);
	unsigned long long u =
	    n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;

	do
		tmp[--i] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (n < 0)
		tmp[--i] = '-';
	memcpy(st->buf + st->used, tmp + i, sizeof(tmp) - i);
	st->used += sizeof(tmp) - i;
	st->buf[st->used++] = last ? '\n' : '\t';
}

static void recon_settle(struct recon *st, unsigned n);

static int
recon_flush(struct recon *st)
{
	recon_settle(st, st->ahead_n);
	if (st->used == 0)
		return 0;
	if (db_copy_put(st->tx, st->buf, st->used, st->err, sizeof(st->err)) !=
	    0) {
		st->db_failed = 1;
		return -1;
	}
	st->used = 0;
	return 0;
}

/* The 64-bit hash of a line's kind and number (never 0, the empty slot). */
static uint64_t
recon_hash(int refund, const char *no)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)refund;

	for (const unsigned char *c = (const unsigned char *)no; *c; c++)
		h = (h ^ *c) * 1099511628211ULL;
	h ^= h >> 29;
	return h + (h == 0);
}

/* 1 when h was seen before (the line is probably a repeat), then
 * remembers it. */
static int
recon_seen(struct recon *st, uint64_t h)
{
	if (2 * (st->seen_used + 1) > st->seen_cap) {
		size_t cap = st->seen_cap ? 2 * st->seen_cap : 65536;
		uint64_t *t = xcalloc(cap, sizeof(*t));
		for (size_t i = 0; i < st->seen_cap; i++) {
			size_t j = st->seen[i] & (cap - 1);
			if (st->seen[i] == 0)
				continue;
			while (t[j] != 0)
				j = (j + 1) & (cap - 1);
			t[j] = st->seen[i];
		}
		free(st->seen);
		st->seen = t;
		st->seen_cap = cap;
	}
	for (size_t j = h & (st->seen_cap - 1);;
	     j = (j + 1) & (st->seen_cap - 1)) {
		if (st->seen[j] == h)
			return 1;
		if (st->seen[j] == 0) {
			st->seen[j] = h;
			st->seen_used++;
			return 0;
		}
	}
}

/* Looks up the n oldest lines waiting (in the bill's order, so the first
 * of a number is never the flagged one) and writes their dup flags. At 10⁶
 * lines the set is 16 MB: a lookup done at once waits for memory on
 * nearly every line (a quarter of the parse's time, perf). */
static void
recon_settle(struct recon *st, unsigned n)
{
	for (; n > 0; n--) {
		unsigned k = st->ahead_first;
		int dup = recon_seen(st, st->ahead_h[k]);
		st->buf[st->ahead_at[k]] = dup ? 't' : 'f';
		st->flagged += dup;
		st->ahead_first = (k + 1) % RECON_AHEAD;
		st->ahead_n--;
	}
}

/* One parsed line → one COPY row of recon_bill (worker thread); its dup
 * flag is written RECON_AHEAD lines later (recon_settle). */
static int
recon_emit(void *arg, const struct bill_line *l)
{
	struct recon *st = arg;
	int refund = l->kind == BILL_REFUND;
	const char *no = refund ? l->out_refund_no : l->out_trade_no;
	size_t need =
	    2 * (strlen(no) + (l->provider_no ? strlen(l->provider_no) : 0)) +
	    96;
	uint64_t h;

	if (st->used + need > RECON_COPY_CHUNK && recon_flush(st) != 0)
		return -1;
	if (need > RECON_COPY_CHUNK) {
		snprintf(st->err, sizeof(st->err), "第%ld条记录过长",
		    st->seq + 1);
		return -1;
	}
	h = recon_hash(refund, no);
	if (st->seen_cap > 0)
		__builtin_prefetch(&st->seen[h & (st->seen_cap - 1)]);
	if (st->ahead_n == RECON_AHEAD)
		recon_settle(st, 1);
	copy_int(st, ++st->seq, 0);
	copy_value(st, refund ? "t" : "f", 0);
	copy_value(st, no, 0);
	copy_value(st, l->provider_no, 0);
	copy_int(st, (long long)l->amount_fen, 0);
	unsigned k = (st->ahead_first + st->ahead_n) % RECON_AHEAD;
	st->ahead_h[k] = h;
	st->ahead_at[k] = st->used;
	st->ahead_n++;
	copy_value(st, "f", 1); /* the dup flag, settled later */
	return 0;
}

/* bill_read_fn: the next piece of the body (the route's HTTP_BODY_STREAM
 * evbuffer, drained, so freed, as it is read), hashed on the way. */
static long
recon_read(void *arg, char *buf, size_t size)
{
	struct recon *st = arg;
	int n = evbuffer_remove(st->req->body_buf, buf, size);

	if (n > 0)
		crypto_sha256_update(st->hash, buf, (size_t)n);
	return n;
}

/* bill_read_fn of a fetch: the next piece of the download as the loop
 * passes it on (waiting for it; the loop hashes it); -1 when the download
 * failed, so a cut bill is never recorded. */
static long
recon_pipe_read(void *arg, char *buf, size_t size)
{
	struct recon *st = arg;
	long n;

	pthread_mutex_lock(&st->mu);
	while (evbuffer_get_length(st->pipe) < RECON_PIPE_WAKE && !st->dl_done)
		pthread_cond_wait(&st->cv, &st->mu);
	n = evbuffer_remove(st->pipe, buf, size);
	if (n <= 0 && st->dl_failed)
		n = -1;
	if (st->held && evbuffer_get_length(st->pipe) < RECON_PIPE_LOW) {
		st->held = 0;
		event_active(st->resume, EV_TIMEOUT, 1);
	}
	pthread_mutex_unlock(&st->mu);
	return n;
}

/* The worker: parse the body as a stream, a piece at a time, hashing it on
 * the way, COPY into recon_bill. */
static void
recon_stage(void *arg)
{
	struct recon *st = arg;
	char dberr[256];

	int64_t t0 = now_mono_us(), t1, t2;

	if (!st->fetch)
		st->hash = crypto_sha256_begin();
	st->buf = xmalloc(RECON_COPY_CHUNK);
	if (db_sync_open(&st->tx, pay.svc.db_url, st->err, sizeof(st->err)) !=
	        0 ||
	    db_sync_exec(st->tx, "BEGIN", 0, NULL, NULL, st->err,
	        sizeof(st->err)) != 0 ||
	    db_sync_exec(st->tx, store_recon_bill_sql, 0, NULL, NULL, st->err,
	        sizeof(st->err)) != 0 ||
	    db_copy_begin(st->tx, store_recon_copy_sql, st->err,
	        sizeof(st->err)) != 0) {
		st->db_failed = 1;
		db_sync_close(st->tx);
		st->tx = NULL;
		return;
	}
	bill_read_fn rd = st->fetch ? recon_pipe_read : recon_read;
	st->parse_rc = st->wechat ? bill_read_wechat(rd, st, recon_emit, st,
	                                &st->lines, st->err, sizeof(st->err))
	                          : bill_read_alipay(rd, st, recon_emit, st,
	                                &st->lines, st->err, sizeof(st->err));
	/* a parse that succeeded has read (and hashed) the whole body; a
	 * download's hash was ended by fetch_done before its end was seen */
	if (!st->fetch) {
		crypto_sha256_end_hex(st->hash, st->sha);
		st->hash = NULL;
	}
	if (st->parse_rc == 0 && recon_flush(st) != 0)
		st->parse_rc = -1;
	if (db_copy_end(st->tx, NULL, dberr, sizeof(dberr)) != 0 &&
	    st->parse_rc == 0) {
		st->db_failed = 1;
		snprintf(st->err, sizeof(st->err), "%s", dberr);
	}
	/* The set-based compare, the report, its items and its audit entry,
	 * in the COPY's transaction (seconds at 10⁶ lines: here, never on a
	 * pool connection of the loop). */
	t1 = now_mono_us();
	if (st->parse_rc == 0 && !st->db_failed) {
		char lines[24], flagged[24], inline_max[24];
		snprintf(lines, sizeof(lines), "%zu", st->lines);
		snprintf(flagged, sizeof(flagged), "%ld", st->flagged);
		snprintf(inline_max, sizeof(inline_max), "%d", RECON_INLINE);
		const char *p[] = {st->id, st->wechat ? "wechat" : "alipay",
		    st->date, st->sha, st->staff, lines, flagged, inline_max,
		    st->audit};
		if (db_sync_exec(st->tx, store_recon_run_sql, 9, p, NULL,
		        st->err, sizeof(st->err)) != 0)
			st->db_failed = 1;
	}
	t2 = now_mono_us();
	st->stream_ms = (long)((t1 - t0) / 1000);
	st->compare_ms = (long)((t2 - t1) / 1000);
	const char *end =
	    st->parse_rc == 0 && !st->db_failed ? "COMMIT" : "ROLLBACK";
	if (db_sync_exec(st->tx, end, 0, NULL, NULL, dberr, sizeof(dberr)) !=
	        0 &&
	    !st->db_failed && st->parse_rc == 0) {
		st->db_failed = 1;
		snprintf(st->err, sizeof(st->err), "%s", dberr);
	}
	db_sync_close(st->tx);
	st->tx = NULL;
	free(st->buf);
	st->buf = NULL;
	free(st->seen);
	st->seen = NULL;
	if (st->fetch) { /* the rest of the download is dropped */
		pthread_mutex_lock(&st->mu);
		st->worker_done = 1;
		if (st->held) {
			st->held = 0;
			event_active(st->resume, EV_TIMEOUT, 1);
		}
		pthread_mutex_unlock(&st->mu);
	}
}

static void
recon_on_staged(void *arg)
{
	struct recon *st = arg;

	if (st->fetch) {
		st->staged = 1;
		if (!st->dl_finished)
			return;      /* fetch_done answers */
		if (st->dl_failed) { /* cut or refused: nothing recorded */
			http_reply_unavailable(st->req,
			    st->wechat ? "wechat" : "alipay");
			return;
		}
	}
	if (st->db_failed) {
		log_warn(st->req->id, "msg=recon_failed error=\"%s\"", st->err);
		http_reply_unavailable(st->req, "postgres");
		return;
	}
	if (st->parse_rc != 0) {
		http_reply_error(st->req, 422, "BILL_INVALID", NULL, st->err);
		return;
	}
	const char *g[] = {st->id};
	db_query(pay.svc.db, store_recon_get_sql, 1, g, recon_on_saved, st);
}

static json_t *
recon_json(const struct db_result *res, int stmt)
{
	const char *total = db_value(res, stmt, 0, 9);

	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:s, s:o}",
	    "id", db_value(res, stmt, 0, 0), "channel",
	    db_value(res, stmt, 0, 1), "date", db_value(res, stmt, 0, 2),
	    "matched", (json_int_t)atoll(db_value(res, stmt, 0, 3)),
	    "missing_local", (json_int_t)atoll(db_value(res, stmt, 0, 4)),
	    "missing_remote", (json_int_t)atoll(db_value(res, stmt, 0, 5)),
	    "amount_mismatch", (json_int_t)atoll(db_value(res, stmt, 0, 6)),
	    "items", json_loads(db_value(res, stmt, 0, 7), 0, NULL),
	    "created_at", db_value(res, stmt, 0, 8), "items_total",
	    total ? json_integer(atoll(total)) : json_null());
}

static void
recon_on_saved(void *arg, const struct db_result *res)
{
	struct recon *st = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_unavailable(st->req, "postgres");
		return;
	}
	log_info(st->req->id,
	    "msg=reconciled channel=%s date=%s lines=%zu stream_ms=%ld"
	    " compare_ms=%ld matched=%s missing_local=%s missing_remote=%s"
	    " amount_mismatch=%s",
	    st->wechat ? "wechat" : "alipay", st->date, st->lines,
	    st->stream_ms, st->compare_ms, db_value(res, 0, 0, 3),
	    db_value(res, 0, 0, 4), db_value(res, 0, 0, 5),
	    db_value(res, 0, 0, 6));
	http_reply_json(st->req, 201, recon_json(res, 0));
}

void
pay_finance_bill(struct http_req *req)
{
	session_require(req, bill_start);
}

/* ---- POST /api/v1/finance/bills/{channel}/{date}/fetch -----------------
 * The same reconciliation with the bill fetched from the provider: its
 * download URL asked for (provider_bill_url), the download read by httpc a
 * piece at a time (provider_bill_download, never collected) and passed to
 * the worker through a pipe of at most RECON_PIPE_HIGH bytes (the download
 * is held while the worker catches up), parsed and COPYed as an upload is.
 * The answer waits for both the download and the worker. */

static void fetch_on_url(void *arg, const struct provider_answer *a);
static void fetch_done(void *arg, const struct provider_answer *a);

/* httpc_body_fn of the download (loop): hashed, into the pipe. */
static int
fetch_body(void *arg, int status, const char *data, size_t len)
{
	struct recon *st = arg;
	int rc = 0;

	(void)status;
	if (st->hash != NULL)
		crypto_sha256_update(st->hash, data, len);
	pthread_mutex_lock(&st->mu);
	if (st->worker_done) {
		rc = HTTPC_BODY_DROP;
	} else {
		evbuffer_add(st->pipe, data, len);
		if (evbuffer_get_length(st->pipe) >= RECON_PIPE_WAKE)
			pthread_cond_signal(&st->cv);
		if (evbuffer_get_length(st->pipe) > RECON_PIPE_HIGH) {
			st->held = 1;
			rc = HTTPC_BODY_HOLD;
		}
	}
	pthread_mutex_unlock(&st->mu);
	return rc;
}

static void
fetch_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	provider_bill_resume(arg);
}

/* The reconciliation a finance request for /finance/bills/{channel}/{date}
 * starts (fetch: downloaded, else uploaded), attached to the request; or
 * NULL with the request answered (not finance, an unknown channel, a
 * date that is not one). */
static struct recon *
recon_new(struct http_req *req, int fetch)
{
	struct recon *st;

	if (session_require_staff(req, "finance") != 0)
		return NULL;
	if (strcmp(req->params[0], "alipay") != 0 &&
	    strcmp(req->params[0], "wechat") != 0) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "支付渠道不存在");
		return NULL;
	}
	if (!date_ok(req->params[1])) {
		http_reply_error(req, 400, "BAD_PATH", NULL,
		    "日期须为 YYYY-MM-DD");
		return NULL;
	}
	st = xcalloc(1, sizeof(*st));
	st->req = req;
	st->fetch = fetch;
	st->wechat = strcmp(req->params[0], "wechat") == 0;
	snprintf(st->date, sizeof(st->date), "%s", req->params[1]);
	uuid_v4(st->id);
	st->audit = pay_audit_text(req, "reconciliation.recorded",
	    "reconciliation", st->id);
	st->staff = req->session->staff_id;
	if (fetch) {
		pthread_mutex_init(&st->mu, NULL);
		pthread_cond_init(&st->cv, NULL);
		st->pipe = evbuffer_new();
		st->resume = event_new(pay.svc.base, -1, 0, fetch_resume, st);
	}
	http_req_attach(req, st, recon_free);
	return st;
}

static void
bill_start(struct http_req *req)
{
	struct recon *st = recon_new(req, 0);

	if (st != NULL)
		work_submit(recon_stage, recon_on_staged, st);
}

static void
fetch_start(struct http_req *req)
{
	struct recon *st = recon_new(req, 1);

	if (st != NULL)
		provider_bill_url(req->params[0], st->date, fetch_on_url, st);
}

static void
fetch_on_url(void *arg, const struct provider_answer *a)
{
	struct recon *st = arg;

	if (a->status == PROVIDER_REFUSED) {
		http_reply_error(st->req, 404, "BILL_NOT_FOUND", NULL,
		    "服务商未提供该日账单");
		return;
	}
	if (a->status != PROVIDER_OK) {
		http_reply_unavailable(st->req,
		    st->wechat ? "wechat" : "alipay");
		return;
	}
	st->hash = crypto_sha256_begin();
	provider_bill_download(st->wechat ? "wechat" : "alipay", a->url,
	    fetch_body, fetch_done, st);
	work_submit(recon_stage, recon_on_staged, st);
}

static void
fetch_done(void *arg, const struct provider_answer *a)
{
	struct recon *st = arg;

	if (a->status != PROVIDER_OK)
		log_warn(st->req->id, "msg=bill_download_failed detail=\"%s\"",
		    a->message ? a->message : "");
	pthread_mutex_lock(&st->mu);
	if (a->status == PROVIDER_OK) { /* the whole body: its hash is final */
		crypto_sha256_end_hex(st->hash, st->sha);
		st->hash = NULL;
	}
	st->dl_done = 1;
	st->dl_failed = a->status != PROVIDER_OK;
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
	st->dl_finished = 1;
	if (st->staged)
		recon_on_staged(st);
}

void
pay_finance_bill_fetch(struct http_req *req)
{
	session_require(req, fetch_start);
}

/* ---- GET /api/v1/finance/reconciliations/{id}/items --------------------
 * Every difference, in pages (?after=<seq>&limit=, at most 1000) or as CSV
 * (?format=csv: 10000 a page, X-Next-Cursor). */

/* One difference as the API shows it (the columns of store_recon_items_sql
 * at row i of statement stmt): decision null while finance has not
 * decided. */
static json_t *
item_json(const struct db_result *res, int stmt, int i)
{
	const char *la = db_value(res, stmt, i, 5),
	           *ra = db_value(res, stmt, i, 6);
	const char *d = db_value(res, stmt, i, 7);
	json_t *decision = d == NULL
	    ? json_null()
	    : json_pack("{s:s, s:s?, s:s?, s:s}", "decision", d, "note",
	          db_value(res, stmt, i, 8), "decided_by",
	          db_value(res, stmt, i, 9), "decided_at",
	          db_value(res, stmt, i, 10));

	return json_pack("{s:I, s:s, s:s, s:s?, s:s?, s:o, s:o, s:o}", "seq",
	    (json_int_t)atoll(db_value(res, stmt, i, 0)), "kind",
	    db_value(res, stmt, i, 1), "type", db_value(res, stmt, i, 2),
	    "out_trade_no", db_value(res, stmt, i, 3), "provider_trade_no",
	    db_value(res, stmt, i, 4), "local_amount_fen",
	    la ? json_integer(atoll(la)) : json_null(), "remote_amount_fen",
	    ra ? json_integer(atoll(ra)) : json_null(), "decision", decision);
}

static void
items_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	long limit = (long)(intptr_t)req->data;
	int csv = limit < 0;
	int n;

	if (csv)
		limit = -limit;
	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "对账记录不存在");
		return;
	}
	n = db_rows(res, 1);
	const char *next =
	    n > limit ? db_value(res, 1, (int)limit - 1, 0) : NULL;
	if (n > limit)
		n = (int)limit;
	if (csv) {
		struct evbuffer *out = evbuffer_new();
		evbuffer_add_printf(out,
		    "seq,kind,type,out_trade_no,provider_trade_no,"
		    "local_amount_fen,remote_amount_fen,decision,"
		    "decision_note,decided_by,decided_at\r\n");
		for (int i = 0; i < n; i++) {
			for (int c = 0; c < 11; c++) {
				const char *v = db_value(res, 1, i, c);
				int text =
				    (c >= 3 && c <= 4) || c == 8 || c == 9;
				if (v != NULL && text) {
					evbuffer_add(out, "\"", 1);
					if (v[0] && strchr("=+-@", v[0]))
						evbuffer_add(out, "'", 1);
					for (; *v; v++)
						evbuffer_add(out, v,
						    1 + (*v == '"'));
					evbuffer_add(out, "\"", 1);
				} else if (v != NULL) {
					evbuffer_add(out, v, strlen(v));
				}
				evbuffer_add(out, c == 10 ? "\r\n" : ",",
				    c == 10 ? 2 : 1);
			}
		}
		if (next != NULL)
			http_add_header(req, "X-Next-Cursor", next);
		size_t len = evbuffer_get_length(out);
		const void *data = evbuffer_pullup(out, -1);
		http_reply_raw(req, 200, "text/csv; charset=utf-8",
		    data ? data : "", len);
		evbuffer_free(out);
		return;
	}
	json_t *items = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(items, item_json(res, 1, i));
	http_reply_json(req, 200,
	    json_pack("{s:o, s:o, s:I}", "items", items, "next_cursor",
	        next ? json_string(next) : json_null(), "total",
	        (json_int_t)atoll(db_value(res, 0, 0, 0))));
}

static void
items_start(struct http_req *req)
{
	char *after, *limit_s, *format;
	long limit, max;
	char lim[24], aft[24];
	int csv = 0;

	if (session_require_staff(req, "finance") != 0)
		return;
	format = http_query_param(req, "format");
	if (format != NULL) {
		csv = strcmp(format, "csv") == 0;
		int bad = !csv && strcmp(format, "json") != 0;
		free(format);
		if (bad) {
			http_reply_error(req, 400, "BAD_REQUEST", "format",
			    "format 须为 json 或 csv");
			return;
		}
	}
	max = csv ? 10000 : 1000;
	limit = csv ? max : 100;
	limit_s = http_query_param(req, "limit");
	if (limit_s != NULL) {
		char *end;
		limit = strtol(limit_s, &end, 10);
		int bad = *limit_s == '\0' || *end != '\0' || limit < 1 ||
		    limit > max;
		free(limit_s);
		if (bad) {
			http_reply_error(req, 400, "BAD_REQUEST", "limit",
			    csv ? "limit 须为 1 至 10000"
			        : "limit 须为 1 至 1000");
			return;
		}
	}
	long from = 0;
	after = http_query_param(req, "cursor");
	if (after != NULL) {
		char *end;
		from = strtol(after, &end, 10);
		int bad = *after == '\0' || *end != '\0' || from < 0;
		free(after);
		if (bad) {
			http_reply_error(req, 400, "BAD_REQUEST", "cursor",
			    "cursor 不正确");
			return;
		}
	}
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "对账记录不存在");
		return;
	}
	req->data = (void *)(intptr_t)(csv ? -limit : limit);
	snprintf(lim, sizeof(lim), "%ld", limit + 1);
	snprintf(aft, sizeof(aft), "%ld", from);
	const char *p[] = {req->params[0]};
	const char *q[] = {req->params[0], aft, lim};
	struct db_batch *b = db_batch_new();
	db_batch_add(b, store_recon_total_sql, 1, p);
	db_batch_add(b, store_recon_items_sql, 3, q);
	db_batch_run(pay.svc.db, b, items_on_loaded, req);
}

void
pay_finance_reconciliation_items(struct http_req *req)
{
	session_require(req, items_start);
}

/* ---- POST /api/v1/finance/reconciliations/{id}/items/{seq}/decision -----
 * Finance's decision on one difference, with a note; a later decision
 * replaces the earlier one (both stay in the audit trail). */

static const char *const decisions[] = {"refund_payer", "write_off",
    "provider_claim", "ignore"};

static void
decision_on_saved(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status == DB_REFUSED) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "对账差异不存在");
		return;
	}
	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_unavailable(req, "postgres");
		return;
	}
	log_info(req->id, "msg=recon_decided recon=%s seq=%s decision=%s",
	    req->params[0], req->params[1], db_value(res, 0, 0, 7));
	json_t *item = item_json(res, 0, 0);
	const char *prev = db_value(res, 0, 0, 11);
	json_object_set_new(item, "replaced",
	    prev ? json_string(prev) : json_null());
	http_reply_json(req, 200, item);
}

static void
decision_start(struct http_req *req)
{
	struct json_field_err err;
	const char *decision = NULL, *note = NULL;
	json_t *body;
	char *end, object[80];
	int known = 0;

	if (session_require_staff(req, "finance") != 0)
		return;
	if (http_read_json(req, &body) != 0)
		return;
	if (json_field_str(body, "decision", JSON_FIELD_REQUIRED, 32, &decision,
	        &err) != 0 ||
	    json_field_str(body, "note", JSON_FIELD_OPTIONAL, 500, &note,
	        &err) != 0) {
		http_reply_field_error(req, &err);
		json_decref(body);
		return;
	}
	for (size_t i = 0; i < sizeof(decisions) / sizeof(decisions[0]); i++)
		known |= strcmp(decision, decisions[i]) == 0;
	if (!known) {
		http_reply_error(req, 422, "FIELD_INVALID", "decision",
		    "decision 须为 refund_payer、write_off、provider_claim "
		    "或 ignore");
		json_decref(body);
		return;
	}
	long long seq = strtoll(req->params[1], &end, 10);
	if (!uuid_valid(req->params[0]) || req->params[1][0] == '\0' ||
	    *end != '\0' || seq < 1) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "对账差异不存在");
		json_decref(body);
		return;
	}
	snprintf(object, sizeof(object), "%s/%lld", req->params[0], seq);
	char seq_s[24];
	snprintf(seq_s, sizeof(seq_s), "%lld", seq);
	const char *p[] = {req->params[0], seq_s, decision, note,
	    req->session->staff_id};
	json_t *after =
	    json_pack("{s:s, s:s?}", "decision", decision, "note", note);
	const struct audit_entry e = {.action = "reconciliation.decided",
	    .object_type = "reconciliation_item",
	    .object_id = object,
	    .after = after};
	struct db_batch *b = db_batch_new();
	db_batch_add(b, store_recon_decide_sql, 5, p);
	audit_add(b, req, &e);
	db_batch_run(pay.svc.db, b, decision_on_saved, req);
	json_decref(after);
	json_decref(body);
}

void
pay_finance_reconciliation_decision(struct http_req *req)
{
	session_require(req, decision_start);
}

/* ---- GET /api/v1/finance/reconciliations/{id} --------------------------- */

static void
recon_get_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "对账记录不存在");
		return;
	}
	http_reply_json(req, 200, recon_json(res, 0));
}

static void
recon_get(struct http_req *req)
{
	if (session_require_staff(req, "finance") != 0)
		return;
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "对账记录不存在");
		return;
	}
	const char *p[] = {req->params[0]};
	db_query(pay.svc.db, store_recon_get_sql, 1, p, recon_get_on_loaded,
	    req);
}

void
pay_finance_reconciliation(struct http_req *req)
{
	session_require(req, recon_get);
}
