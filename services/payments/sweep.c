/* sweep — the periodic work that needs no request: asks the provider about
 * payments still pending after CAPLAT_PAY_QUERY_DELAY (so a lost
 * notification never leaves a paid order unpaid) and closes the ones unpaid
 * after CAPLAT_PAY_EXPIRE; issues pending invoices through the invoice
 * provider; retries refunds whose provider answer was lost; purges old
 * Idempotency-Keys (common/idem.h). One row each in the sweep table at the
 * end, each on its own timer, one round at a time per process. Rows are
 * claimed with FOR UPDATE SKIP LOCKED, so any number of processes sweep.
 * Also pay_succeed(), the one way a paid trade is recorded (notify.c and the
 * trade queries here), which kicks the sweep. */
#include "payments.h"

#include "db.h"
#include "domain.h"
#include "log.h"
#include "util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One timer of the sweep table; round() starts one round, whose last step
 * calls round_done(). */
struct sweep {
	const char *name;
	const long *interval_ms; /* in pay.cfg */
	void (*round)(struct sweep *s);
	struct event *timer;
	int running;
};

struct job {
	char *id, *channel, *out_trade_no, *out_refund_no, *reason;
	int64_t amount_fen, total_fen;
	int expired;
};

static void
job_free(struct job *j)
{
	free(j->id);
	free(j->channel);
	free(j->out_trade_no);
	free(j->out_refund_no);
	free(j->reason);
	free(j);
}

static void
round_done(struct sweep *s)
{
	s->running = 0;
}

/* ---- pay_succeed -------------------------------------------------------- */

struct succeed {
	pay_outcome_fn cb;
	void *arg;
};

static void
succeed_done(void *arg, const struct db_result *res)
{
	struct succeed *s = arg;
	const char *outcome =
	    res->status == DB_OK ? db_value(res, res->nstmts - 1, 0, 0) : NULL;

	s->cb(s->arg, outcome, res);
	if (outcome != NULL && strcmp(outcome, "APPLIED") == 0)
		sweep_kick(); /* issue the invoice now */
	free(s);
}

void
pay_succeed(struct db_batch *b, const char *channel, const char *out_trade_no,
    int64_t amount_fen, const char *trade_no, const char *paid_at,
    const char *via, pay_outcome_fn cb, void *arg)
{
	struct succeed *s = xcalloc(1, sizeof(*s));
	char amount[24], tax[24];

	snprintf(amount, sizeof(amount), "%lld", (long long)amount_fen);
	snprintf(tax, sizeof(tax), "%lld",
	    (long long)money_vat_tax(amount_fen, pay.cfg.vat_rate_bp));
	const char *p[] = {channel, out_trade_no, amount, trade_no, paid_at,
	    via, tax};
	s->cb = cb;
	s->arg = arg;
	db_batch_add(b, store_payment_succeed_sql, 7, p);
	db_batch_run(pay.svc.db, b, succeed_done, s);
}

/* ---- trade queries ----------------------------------------------------- */

static void
on_query_recorded(void *arg, const char *outcome, const struct db_result *res)
{
	struct job *j = arg;

	if (outcome != NULL && strcmp(outcome, "APPLIED") == 0)
		log_info(NULL,
		    "msg=payment_succeeded channel=%s trade=%s via=query",
		    j->channel, j->out_trade_no);
	else if (outcome == NULL || strcmp(outcome, "DUPLICATE") != 0)
		log_warn(NULL, "msg=query_not_applied trade=%s outcome=%s",
		    j->out_trade_no, outcome ? outcome : "db_error");
	job_free(j);
}

static void
on_expired(void *arg, const struct db_result *res)
{
	job_free(arg);
}

static void
on_queried(void *arg, const struct provider_answer *a)
{
	struct job *j = arg;

	if (a->status == PROVIDER_OK && a->paid) {
		pay_succeed(db_batch_new(), j->channel, j->out_trade_no,
		    a->amount_fen, a->trade_no, a->paid_at, "query",
		    on_query_recorded, j);
		return;
	}
	if (a->status == PROVIDER_OK && j->expired) {
		/* Unpaid and too old: closed here (the provider's QR code has
		 * expired too, timeout_express / time_expire). */
		const char *p[] = {j->id};
		db_query(pay.svc.db, store_payment_expire_sql, 1, p, on_expired,
		    j);
		return;
	}
	job_free(j);
}

static void
on_payments_due(void *arg, const struct db_result *res)
{
	if (res->status == DB_OK) {
		for (int i = 0; i < db_rows(res, 0); i++) {
			struct job *j = xcalloc(1, sizeof(*j));
			j->id = xstrdup(db_value(res, 0, i, 0));
			j->channel = xstrdup(db_value(res, 0, i, 1));
			j->out_trade_no = xstrdup(db_value(res, 0, i, 2));
			j->amount_fen =
			    strtoll(db_value(res, 0, i, 3), NULL, 10);
			j->expired = db_bool(res, 0, i, 4);
			provider_query(j->channel, j->out_trade_no, on_queried,
			    j);
		}
	}
	round_done(arg);
}

static void
payments_round(struct sweep *s)
{
	char delay[24], expire[24];

	snprintf(delay, sizeof(delay), "%ld", pay.cfg.query_delay);
	snprintf(expire, sizeof(expire), "%ld", pay.cfg.pay_expire);
	const char *p[] = {delay, expire};
	db_query(pay.svc.db, store_payments_due_sql, 2, p, on_payments_due, s);
}

/* ---- invoices ---------------------------------------------------------- */

static void
on_invoice_recorded(void *arg, const struct db_result *res)
{
	struct job *j = arg;

	if (res->status == DB_OK &&
	    strcmp(db_value(res, 0, 0, 0), "APPLIED") == 0)
		log_info(NULL, "msg=invoice_issued invoice=%s provider=%s",
		    j->id, invoice_provider()->name);
	job_free(j);
}

static void
on_invoice_issued(void *arg, const char *number, const char *delivered_to)
{
	struct job *j = arg;

	if (number == NULL) {
		const char *p[] = {j->id};
		log_warn(NULL, "msg=invoice_not_issued invoice=%s", j->id);
		db_query(pay.svc.db, store_invoice_unclaim_sql, 1, p,
		    on_expired, j);
		return;
	}
	const char *p[] = {j->id, number, delivered_to};
	db_query(pay.svc.db, store_invoice_issue_sql, 3, p, on_invoice_recorded,
	    j);
}

static void
on_invoices_due(void *arg, const struct db_result *res)
{
	int stmt = res->nstmts - 1;

	if (res->status == DB_OK) {
		for (int i = 0; i < db_rows(res, stmt); i++) {
			struct job *j = xcalloc(1, sizeof(*j));
			struct invoice_request r = {
			    .id = db_value(res, stmt, i, 0),
			    .type = db_value(res, stmt, i, 1),
			    .kind = db_value(res, stmt, i, 2),
			    .title = db_value(res, stmt, i, 3),
			    .taxpayer_id = db_value(res, stmt, i, 4),
			    .email = db_value(res, stmt, i, 5),
			    .amount_fen =
			        strtoll(db_value(res, stmt, i, 6), NULL, 10),
			    .tax_fen =
			        strtoll(db_value(res, stmt, i, 7), NULL, 10),
			};
			j->id = xstrdup(r.id);
			invoice_provider()->issue(&r, on_invoice_issued, j);
		}
	}
	round_done(arg);
}

static void
invoices_round(struct sweep *s)
{
	struct db_batch *b = db_batch_new();

	db_batch_add(b, store_invoices_fill_titles_sql, 0, NULL);
	db_batch_add(b, store_invoices_fill_names_sql, 0, NULL);
	db_batch_add(b, store_invoices_due_sql, 0, NULL);
	db_batch_run(pay.svc.db, b, on_invoices_due, s);
}

/* ---- refund retries ---------------------------------------------------- */

static void
on_refund_recorded(void *arg, const struct db_result *res)
{
	job_free(arg);
	sweep_kick();
}

static void
on_refund_answer(void *arg, const struct provider_answer *a)
{
	struct job *j = arg;
	char tax[24];

	if (a->status == PROVIDER_UNAVAILABLE) {
		job_free(j);
		return;
	}
	if (a->status == PROVIDER_REFUSED) {
		char *audit =
		    pay_audit_text(NULL, "refund.failed", "refund", j->id);
		const char *p[] = {j->id, audit};
		db_query(pay.svc.db, store_refund_fail_sql, 2, p, on_expired,
		    j);
		free(audit);
		return;
	}
	snprintf(tax, sizeof(tax), "%lld",
	    (long long)money_vat_tax(j->amount_fen, pay.cfg.vat_rate_bp));
	char *audit = pay_audit_text(NULL, "refund.succeeded", "refund", j->id);
	const char *p[] = {j->id, a->trade_no, tax, audit};
	db_query(pay.svc.db, store_refund_succeed_sql, 4, p, on_refund_recorded,
	    j);
	free(audit);
}

static void
on_refunds_due(void *arg, const struct db_result *res)
{
	if (res->status == DB_OK) {
		for (int i = 0; i < db_rows(res, 0); i++) {
			struct job *j = xcalloc(1, sizeof(*j));
			j->id = xstrdup(db_value(res, 0, i, 0));
			j->channel = xstrdup(db_value(res, 0, i, 1));
			j->out_trade_no = xstrdup(db_value(res, 0, i, 2));
			j->out_refund_no = xstrdup(db_value(res, 0, i, 3));
			j->amount_fen =
			    strtoll(db_value(res, 0, i, 4), NULL, 10);
			j->total_fen =
			    strtoll(db_value(res, 0, i, 5), NULL, 10);
			j->reason = xstrdup(db_value(res, 0, i, 6));
			provider_refund(j->channel, j->out_trade_no,
			    j->out_refund_no, j->amount_fen, j->total_fen,
			    j->reason, on_refund_answer, j);
		}
	}
	round_done(arg);
}

static void
refunds_round(struct sweep *s)
{
	db_query(pay.svc.db, store_refunds_due_sql, 0, NULL, on_refunds_due, s);
}

static void
on_idem_purged(void *arg, const struct db_result *res)
{
	round_done(arg);
}

static void
idem_purge_round(struct sweep *s)
{
	idem_purge(pay.svc.db, pay.cfg.idem.retention_hours, on_idem_purged, s);
}

/* ---- the sweep table ------------------------------------------------- */

static struct sweep sweeps[] = {
    {"payment_queries", &pay.cfg.sweep_ms, payments_round, NULL, 0},
    {"invoices", &pay.cfg.sweep_ms, invoices_round, NULL, 0},
    {"refund_retries", &pay.cfg.sweep_ms, refunds_round, NULL, 0},
    {"idem_purge", &pay.cfg.idem_purge_ms, idem_purge_round, NULL, 0},
};

static void
sweep_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sweep *s = arg;
	struct timeval period = {*s->interval_ms / 1000,
	    (*s->interval_ms % 1000) * 1000};

	evtimer_add(s->timer, &period);
	if (s->running)
		return;
	s->running = 1;
	s->round(s);
}

void
sweep_start(void)
{
	struct timeval first = {1, 0};

	for (size_t i = 0; i < ARRAY_LEN(sweeps); i++) {
		sweeps[i].timer =
		    evtimer_new(pay.svc.base, sweep_tick, &sweeps[i]);
		if (sweeps[i].timer == NULL ||
		    evtimer_add(sweeps[i].timer, &first) != 0)
			fatal("sweep: cannot start the %s timer",
			    sweeps[i].name);
	}
}

void
sweep_kick(void)
{
	struct timeval soon = {0, 1000};

	for (size_t i = 0; i < ARRAY_LEN(sweeps); i++)
		if (sweeps[i].timer != NULL)
			evtimer_add(sweeps[i].timer, &soon);
}
