/* deliver — the SMS sender of notices. A round claims due rows of
 * sms_deliveries (FOR UPDATE SKIP LOCKED, with a lease, so several
 * processes share the work and a dead sender's rows come back once the
 * lease runs out), checks our own per-number hourly limit in Redis, sends
 * each through common/sms.h with the notice id as the provider's
 * idempotency key (OutId), and records the result: sent; a provider error
 * or throttling goes back to pending after an exponential backoff with
 * jitter; a template, signature, key or number error, or too many attempts,
 * is dead-lettered for the operators (notices.c). A crash after the send
 * and before the record sends again after the lease with the same OutId:
 * the provider keeps it one SMS. The round is a row of sweep.c's table
 * (common/sweep.h): kicked by auth_sweep_kick_sms() (a notice queued, a
 * resend), again at once after a full round, else it reads when the next
 * row falls due (a backoff, a lease) and rests until then, at most
 * CAPLAT_SMS_DELIVERY_MS (the look for what another process queued); the
 * first round, 1 s after start, finds what a crash left. */
#include "auth.h"

#include "crypto.h"
#include "db.h"
#include "fault.h"
#include "kv.h"
#include "log.h"
#include "sms.h"
#include "sweep.h"
#include "util.h"

#include "notice_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DELIVER_BATCH 16

enum deliver_fault {
	DELIVER_CRASH_AFTER_CLAIM = 1,
	DELIVER_CRASH_AFTER_SEND,
};

static const char *const deliver_fault_names[] = {
    "auth_sms_crash_after_claim",
    "auth_sms_crash_after_send",
    NULL,
};

static const char rate_lua[] =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 then redis.call('EXPIRE', KEYS[1], 3600) end "
    "return n";

struct dmsg {
	char id[37];
	char notice[132];
	char phone[16];
	char template[64];
	char attempt[12];
	char *params;
	char *text;
};

/* The round under way (one at a time: common/sweep.h). */
static struct {
	struct sweep *sweep; /* its row of the sweep table */
	int outstanding;     /* messages of the round not recorded yet */
	int claimed;
	struct fault fault;
} dl;

static void deliver_on_claimed(void *arg, const struct db_result *res);
static void deliver_on_rate(void *arg, const struct kv_reply *reply);
static void deliver_on_sent(void *arg, const struct sms_status *st);
static void deliver_on_recorded(void *arg, const struct db_result *res);

void
auth_deliver_init(void)
{
	fault_arm(&dl.fault, deliver_fault_names);
}

void
auth_deliver_round(struct sweep *s)
{
	struct db_batch *b = db_batch_new();

	dl.sweep = s;
	store_sms_claim(b, DELIVER_BATCH, auth.cfg.sms_lease_s);
	store_sms_next(b);
	db_batch_run(auth.svc.db, b, deliver_on_claimed, NULL);
}

static void
dmsg_free(struct dmsg *m)
{
	free(m->params);
	free(m->text);
	free(m);
}

/* The round is over when every message is recorded. */
static void
deliver_one_done(void)
{
	if (--dl.outstanding > 0)
		return;
	if (dl.claimed == DELIVER_BATCH)
		sweep_again(dl.sweep); /* a full round: more may be due */
	else
		sweep_done(dl.sweep, -1);
}

static void
deliver_on_claimed(void *arg, const struct db_result *res)
{
	if (res->status != DB_OK) {
		if (res->status != DB_UNAVAILABLE)
			log_error(NULL, "msg=sms_claim_failed error=\"%s\"",
			    res->message ? res->message : "-");
		sweep_done(dl.sweep, -1);
		return;
	}
	/* rest until the next row falls due (a backoff ends, a lease runs
	 * out), counted from now; what this round sends is recorded before */
	const char *next = db_value(res, 1, 0, 0);
	if (next != NULL)
		sweep_due(dl.sweep, atol(next));
	dl.claimed = db_rows(res, 0);
	dl.outstanding = dl.claimed;
	if (dl.claimed == 0) {
		sweep_done(dl.sweep, -1);
		return;
	}
	fault_point(&dl.fault, DELIVER_CRASH_AFTER_CLAIM);
	for (int i = 0; i < dl.claimed; i++) {
		struct dmsg *m = xcalloc(1, sizeof(*m));
		struct tm tm;
		time_t now = time(NULL) + 8 * 3600;
		char hour[16], key[96], limit[24];

		snprintf(m->id, sizeof(m->id), "%s", db_value(res, 0, i, 0));
		snprintf(m->notice, sizeof(m->notice), "%s",
		    db_value(res, 0, i, 1));
		snprintf(m->phone, sizeof(m->phone), "%s",
		    db_value(res, 0, i, 2));
		snprintf(m->template, sizeof(m->template), "%s",
		    db_value(res, 0, i, 3));
		m->params = xstrdup(db_value(res, 0, i, 4));
		m->text = xstrdup(db_value(res, 0, i, 5));
		snprintf(m->attempt, sizeof(m->attempt), "%s",
		    db_value(res, 0, i, 6));
		gmtime_r(&now, &tm);
		strftime(hour, sizeof(hour), "%Y%m%d%H", &tm);
		store_sms_rate_key(key, sizeof(key), m->phone, hour);
		snprintf(limit, sizeof(limit), "%ld",
		    auth.cfg.sms_number_hourly);
		const char *argv[] = {"EVAL", rate_lua, "1", key};
		kv_command(auth.svc.kv, deliver_on_rate, m,
		    (int)ARRAY_LEN(argv), argv, NULL);
	}
}

static void
record(struct dmsg *m, struct db_batch *b)
{
	db_batch_run(auth.svc.db, b, deliver_on_recorded, m);
}

static void
deliver_on_rate(void *arg, const struct kv_reply *reply)
{
	struct dmsg *m = arg;

	if (reply == NULL || kv_reply_type(reply) != KV_INT) {
		/* Redis down: our limit cannot be checked; try again soon */
		struct db_batch *b = db_batch_new();
		store_sms_retry(b, m->id, m->attempt,
		    auth.cfg.sms_retry_base_ms, "rate_limit_unavailable", 0);
		record(m, b);
		return;
	}
	if (kv_reply_int(reply) > auth.cfg.sms_number_hourly) {
		time_t now = time(NULL);
		struct db_batch *b = db_batch_new();
		char masked[16];

		log_mask_id(m->phone, masked, sizeof(masked));
		log_warn(NULL, "msg=sms_number_limited notice=%s phone=%s",
		    m->notice, masked);
		store_sms_retry(b, m->id, m->attempt,
		    (long)(3600 - now % 3600) * 1000 + 1000,
		    "number_hourly_limit", 0);
		record(m, b);
		return;
	}
	const struct sms_message msg = {m->phone, m->template, m->params,
	    m->text, m->notice};
	sms_deliver(&msg, deliver_on_sent, m);
}

static void
deliver_on_sent(void *arg, const struct sms_status *st)
{
	struct dmsg *m = arg;
	struct db_batch *b = db_batch_new();
	int attempt = atoi(m->attempt);
	unsigned r;
	char err[128];

	fault_point(&dl.fault, DELIVER_CRASH_AFTER_SEND);
	crypto_random_bytes(&r, sizeof(r));
	snprintf(err, sizeof(err), "%s", st->code ? st->code : "unknown");
	switch (st->outcome) {
	case SMS_SENT:
		store_sms_sent(b, m->id, m->attempt, st->biz_id);
		log_info(NULL, "msg=sms_sent notice=%s attempt=%d", m->notice,
		    attempt);
		break;
	case SMS_PERMANENT:
		store_sms_dead(b, m->id, m->attempt, err);
		log_error(NULL, "msg=sms_dead_letter notice=%s code=%s",
		    m->notice, err);
		break;
	case SMS_RETRY:
	case SMS_THROTTLED:
		if (attempt >= auth.cfg.sms_max_attempts) {
			char why[160];
			snprintf(why, sizeof(why), "max_attempts:%s", err);
			store_sms_dead(b, m->id, m->attempt, why);
			log_error(NULL, "msg=sms_dead_letter notice=%s code=%s",
			    m->notice, why);
			break;
		}
		long delay = notice_backoff_ms(attempt,
		    st->outcome == SMS_THROTTLED ? auth.cfg.sms_throttle_ms
		                                 : auth.cfg.sms_retry_base_ms,
		    auth.cfg.sms_retry_max_ms, r);
		store_sms_retry(b, m->id, m->attempt, delay, err, 1);
		log_warn(NULL,
		    "msg=sms_retry notice=%s code=%s attempt=%d delay_ms=%ld",
		    m->notice, err, attempt, delay);
		break;
	}
	record(m, b);
}

static void
deliver_on_recorded(void *arg, const struct db_result *res)
{
	struct dmsg *m = arg;

	/* Unrecorded: the row stays claimed and is taken again after its
	 * lease (at least once; the OutId keeps it one SMS). */
	if (res->status != DB_OK && res->status != DB_UNAVAILABLE)
		log_error(NULL, "msg=sms_record_failed notice=%s error=\"%s\"",
		    m->notice, res->message ? res->message : "-");
	dmsg_free(m);
	deliver_one_done();
}
