/* sweep — the periodic work that needs no request: asks the provider about
 * payments still pending after CAPLAT_PAY_QUERY_DELAY (so a lost
 * notification never leaves a paid order unpaid) and closes the ones unpaid
 * after CAPLAT_PAY_EXPIRE; issues pending invoices through the invoice
 * provider; retries refunds whose provider answer was lost; purges old
 * Idempotency-Keys (common/idem.h). One row each in the sweep table at the
 * end (common/sweep.h), one round at a time per process. Rows are
 * claimed with FOR UPDATE SKIP LOCKED, so any number of processes sweep.
 * A round's batch ends with when its next row falls due (next_sql), and the
 * sweep rests until then: at least CAPLAT_PAY_SWEEP_MS, at most
 * CAPLAT_PAY_IDLE_MS (what another process left); a new payment, a paid
 * trade, a recorded refund or a reissue kicks it (pay_sweep_kick), so an idle
 * service sends PostgreSQL nothing between those looks.
 * Also pay_succeed(), the one way a paid trade is recorded (notify.c and the
 * trade queries here), which kicks the sweep. */
#include "payments.h"

#include "crypto.h"
#include "db.h"
#include "domain.h"
#include "log.h"
#include "sweep.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The round is over: the next after the sweep's period. */
static void
round_done(struct sweep *s)
{
	sweep_done(s, 0);
}

/* The round is over: the next when its next row falls due (the batch's
 * last statement: milliseconds, NULL when none waits), at most
 * CAPLAT_PAY_IDLE_MS; after the period when the batch failed. */
static void
round_rest(struct sweep *s, const struct db_result *res)
{
	if (res->status != DB_OK)
		sweep_done(s, 0);
	else
		sweep_rest_until(s, db_value(res, res->nstmts - 1, 0, 0));
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
		pay_sweep_kick(); /* issue the invoice now */
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
	round_rest(arg, res);
}

static void
payments_round(struct sweep *s)
{
	char delay[24], expire[24];

	snprintf(delay, sizeof(delay), "%ld", pay.cfg.query_delay);
	snprintf(expire, sizeof(expire), "%ld", pay.cfg.pay_expire);
	const char *p[] = {delay, expire};
	struct db_batch *b = db_batch_new();

	db_batch_add(b, store_payments_due_sql, 2, p);
	db_batch_add(b, store_payments_next_sql, 2, p);
	db_batch_run(pay.svc.db, b, on_payments_due, s);
}

/* ---- invoices: the issuance state machine ------------------------------
 * A due invoice (store_invoices_due_sql: pending or 开具失败, its next try
 * due; the claim counts the attempt) goes to the provider with its id as
 * the request id. A retry first asks what became of the request (query), so
 * that an answer lost on the way is picked up instead of asking again; then
 * issue (blue) or red-reverse (red), then download the file, then one
 * statement records number, date, check code and file (invoice_issued()).
 * A refusal is 开具失败 with the platform's reason, an unreachable platform
 * keeps the state; both try again after CAPLAT_INVOICE_RETRY_SECONDS ·
 * 2^(attempts−1), at most an hour, until CAPLAT_INVOICE_MAX_ATTEMPTS. */

struct ijob {
	char *id, *type, *kind, *title, *taxpayer_id, *original_number, *reason;
	char *number, *issue_date, *check_code;
	int64_t amount_fen, tax_fen;
	int attempts;
};

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void
ijob_free(struct ijob *j)
{
	free(j->id);
	free(j->type);
	free(j->kind);
	free(j->title);
	free(j->taxpayer_id);
	free(j->original_number);
	free(j->reason);
	free(j->number);
	free(j->issue_date);
	free(j->check_code);
	free(j);
}

static void
on_ijob_done(void *arg, const struct db_result *res)
{
	struct ijob *j = arg;

	if (res->status == DB_OK && db_value(res, 0, 0, 0) != NULL &&
	    strcmp(db_value(res, 0, 0, 0), "APPLIED") == 0) {
		log_info(NULL,
		    "msg=invoice_issued invoice=%s kind=%s number=%s provider=%s",
		    j->id, j->kind, j->number, invoice_provider()->name);
		pay_sweep_kick(); /* its e-mail, a red or blue one waiting on it */
	}
	ijob_free(j);
}

static void
ijob_failed(struct ijob *j, int refused, const char *reason)
{
	char base[24];

	snprintf(base, sizeof(base), "%ld", pay.cfg.invoice_retry_s);
	log_warn(NULL,
	    "msg=invoice_not_issued invoice=%s attempt=%d refused=%d", j->id,
	    j->attempts, refused);
	const char *p[] = {j->id, refused ? "true" : "false", reason, base};
	db_query(pay.svc.db, store_invoice_try_failed_sql, 4, p, on_ijob_done,
	    j);
}

static void
on_ijob_file(void *arg, const struct invoice_answer *a)
{
	struct ijob *j = arg;
	char sha[CRYPTO_SHA256_HEX_SIZE];
	char *hex = NULL;

	if (a->outcome != INVOICE_OK) {
		ijob_failed(j, 0, a->reason ? a->reason : "发票文件下载失败");
		return;
	}
	if (a->file != NULL) {
		static const char digits[] = "0123456789abcdef";
		hex = xmalloc(a->file_len * 2 + 1);
		for (size_t i = 0; i < a->file_len; i++) {
			hex[2 * i] = digits[(unsigned char)a->file[i] >> 4];
			hex[2 * i + 1] = digits[(unsigned char)a->file[i] & 15];
		}
		hex[a->file_len * 2] = '\0';
		crypto_sha256_hex(a->file, a->file_len, sha);
	}
	const char *p[] = {j->id, j->number, j->issue_date, j->check_code,
	    invoice_provider()->name, hex, hex ? sha : NULL};
	db_query(pay.svc.db, store_invoice_issued_sql, 7, p, on_ijob_done, j);
	free(hex);
}

static void
on_ijob_issued(void *arg, const struct invoice_answer *a)
{
	struct ijob *j = arg;

	if (a->outcome != INVOICE_OK) {
		ijob_failed(j, a->outcome == INVOICE_REFUSED,
		    a->reason ? a->reason : "开具失败");
		return;
	}
	j->number = xstrdup(a->number);
	j->issue_date = dup_or_null(a->issue_date);
	j->check_code = dup_or_null(a->check_code);
	invoice_provider()->download(j->number, on_ijob_file, j);
}

static void
ijob_issue(struct ijob *j)
{
	struct money_split line, total;
	struct invoice_line l = {"*信息技术服务*数字证书服务", 0, 0};

	/* One line, split per DOMAIN.md §5; the request's totals are the
	 * lines' sums (equal to the stored amount and tax). */
	money_lines_vat(&j->amount_fen, 1, pay.cfg.vat_rate_bp, &line, &total);
	l.amount_fen = line.gross;
	l.tax_fen = line.tax;
	struct invoice_request r = {.id = j->id,
	    .type = j->type,
	    .title = j->title,
	    .taxpayer_id = j->taxpayer_id,
	    .original_number = j->original_number,
	    .reason = j->reason,
	    .amount_fen = total.gross,
	    .tax_fen = total.tax,
	    .lines = &l,
	    .nlines = 1,
	    .rate_bp = pay.cfg.vat_rate_bp};
	if (total.tax != j->tax_fen)
		log_warn(NULL, "msg=invoice_tax_differs invoice=%s stored=%lld",
		    j->id, (long long)j->tax_fen);
	if (strcmp(j->kind, "red") == 0)
		invoice_provider()->red_reverse(&r, on_ijob_issued, j);
	else
		invoice_provider()->issue(&r, on_ijob_issued, j);
}

static void
on_ijob_queried(void *arg, const struct invoice_answer *a)
{
	struct ijob *j = arg;

	if (a->outcome == INVOICE_UNKNOWN) {
		ijob_issue(j);
		return;
	}
	on_ijob_issued(j, a); /* issued already, or refused, or unreachable */
}

static void
on_invoices_due(void *arg, const struct db_result *res)
{
	int stmt = res->nstmts - 2;

	if (res->status == DB_OK) {
		for (int i = 0; i < db_rows(res, stmt); i++) {
			struct ijob *j = xcalloc(1, sizeof(*j));
			j->id = xstrdup(db_value(res, stmt, i, 0));
			j->type = xstrdup(db_value(res, stmt, i, 1));
			j->kind = xstrdup(db_value(res, stmt, i, 2));
			j->title = xstrdup(db_value(res, stmt, i, 3));
			j->taxpayer_id = dup_or_null(db_value(res, stmt, i, 4));
			j->amount_fen =
			    strtoll(db_value(res, stmt, i, 6), NULL, 10);
			j->tax_fen =
			    strtoll(db_value(res, stmt, i, 7), NULL, 10);
			j->attempts = atoi(db_value(res, stmt, i, 8));
			j->original_number =
			    dup_or_null(db_value(res, stmt, i, 9));
			j->reason = dup_or_null(db_value(res, stmt, i, 10));
			if (j->attempts > 1)
				invoice_provider()->query(j->id,
				    on_ijob_queried, j);
			else
				ijob_issue(j);
		}
	}
	round_rest(arg, res);
}

static void
invoices_round(struct sweep *s)
{
	struct db_batch *b = db_batch_new();
	char max[24];

	snprintf(max, sizeof(max), "%ld", pay.cfg.invoice_max_attempts);
	const char *p[] = {max};
	db_batch_add(b, store_invoices_fill_titles_sql, 0, NULL);
	db_batch_add(b, store_invoices_fill_names_sql, 0, NULL);
	db_batch_add(b, store_invoices_due_sql, 1, p);
	db_batch_add(b, store_invoices_next_sql, 1, p);
	db_batch_run(pay.svc.db, b, on_invoices_due, s);
}

/* ---- invoice e-mails ----------------------------------------------------
 * An issued invoice with an address and a file (email_status pending, due)
 * is sent by smtp.c; accepted → sent, else tried again after
 * CAPLAT_EMAIL_RETRY_SECONDS · 2^(attempts−1) until
 * CAPLAT_EMAIL_MAX_ATTEMPTS, then failed with the server's answer. */

struct ejob {
	char id[37];
};

static void
on_email_recorded(void *arg, const struct db_result *res)
{
	free(arg);
}

static void
on_email_sent(void *arg, const char *error)
{
	struct ejob *j = arg;
	char base[24], max[24];

	snprintf(base, sizeof(base), "%ld", pay.cfg.email_retry_s);
	snprintf(max, sizeof(max), "%ld", pay.cfg.email_max_attempts);
	if (error != NULL)
		log_warn(NULL, "msg=invoice_email_failed invoice=%s", j->id);
	else
		log_info(NULL, "msg=invoice_emailed invoice=%s", j->id);
	const char *p[] = {j->id, error, base, max};
	db_query(pay.svc.db, store_invoice_email_done_sql, 4, p,
	    on_email_recorded, j);
}

static int
hexval(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

static void
on_emails_due(void *arg, const struct db_result *res)
{
	if (res->status == DB_OK) {
		for (int i = 0; i < db_rows(res, 0); i++) {
			struct ejob *j = xcalloc(1, sizeof(*j));
			const char *hex = db_value(res, 0, i, 7);
			const char *number = db_value(res, 0, i, 2);
			char yuan[32];
			snprintf(j->id, sizeof(j->id), "%s",
			    db_value(res, 0, i, 0));
			if (hex == NULL) {
				on_email_sent(j, "no file");
				continue;
			}
			size_t n = strlen(hex) / 2;
			char *pdf = xmalloc(n + 1);
			for (size_t k = 0; k < n; k++)
				pdf[k] = (char)(hexval(hex[2 * k]) << 4 |
				    hexval(hex[2 * k + 1]));
			money_fen_to_yuan(strtoll(db_value(res, 0, i, 4), NULL,
			                      10),
			    yuan);
			int red = strcmp(db_value(res, 0, i, 6), "red") == 0;
			char *subject = xasprintf("%s %s",
			    red ? "红字电子发票" : "电子发票", number);
			char *text = xasprintf(
			    "您好：\r\n\r\n附件是您的%s（发票号码 %s，抬头 %s，"
			    "价税合计 ¥%s），请查收。\r\n\r\ncaplat\r\n",
			    red ? "红字电子发票" : "电子发票", number,
			    db_value(res, 0, i, 3), yuan);
			char *name = xasprintf("%s.pdf", number);
			struct smtp_mail m = {.from = pay.cfg.smtp_from,
			    .to = db_value(res, 0, i, 1),
			    .subject = subject,
			    .text = text,
			    .attachment_name = name,
			    .attachment = pdf,
			    .attachment_len = n};
			smtp_send(&m, on_email_sent, j);
			free(subject);
			free(text);
			free(name);
			free(pdf);
		}
	}
	round_rest(arg, res);
}

static void
emails_round(struct sweep *s)
{
	if (pay.cfg.smtp_host[0] == '\0') {
		round_done(s);
		return;
	}
	struct db_batch *b = db_batch_new();

	db_batch_add(b, store_invoice_emails_due_sql, 0, NULL);
	db_batch_add(b, store_invoice_emails_next_sql, 0, NULL);
	db_batch_run(pay.svc.db, b, on_emails_due, s);
}

/* ---- refund retries ---------------------------------------------------- */

static void
on_refund_recorded(void *arg, const struct db_result *res)
{
	job_free(arg);
	pay_sweep_kick();
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
	round_rest(arg, res);
}

static void
refunds_round(struct sweep *s)
{
	struct db_batch *b = db_batch_new();

	db_batch_add(b, store_refunds_due_sql, 0, NULL);
	db_batch_add(b, store_refunds_next_sql, 0, NULL);
	db_batch_run(pay.svc.db, b, on_refunds_due, s);
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

enum { SWEEP_QUERIES, SWEEP_INVOICES, SWEEP_EMAILS, SWEEP_REFUNDS, SWEEP_IDEM };

static struct sweep sweeps[] = {
    [SWEEP_QUERIES] = {"payment_queries", &pay.cfg.sweep_ms, &pay.cfg.idle_ms,
        payments_round},
    [SWEEP_INVOICES] = {"invoices", &pay.cfg.sweep_ms, &pay.cfg.idle_ms,
        invoices_round},
    [SWEEP_EMAILS] = {"invoice_emails", &pay.cfg.sweep_ms, &pay.cfg.idle_ms,
        emails_round},
    [SWEEP_REFUNDS] = {"refund_retries", &pay.cfg.sweep_ms, &pay.cfg.idle_ms,
        refunds_round},
    [SWEEP_IDEM] = {"idem_purge", &pay.cfg.idem_purge_ms, NULL,
        idem_purge_round},
};

void
pay_sweep_start(void)
{
	sweep_start(sweeps, ARRAY_LEN(sweeps), pay.svc.base, 1000);
}

void
pay_sweep_stop(void)
{
	sweep_stop(sweeps, ARRAY_LEN(sweeps));
}

void
pay_sweep_kick(void)
{
	for (size_t i = 0; i < ARRAY_LEN(sweeps); i++)
		sweep_kick(&sweeps[i]);
}

void
pay_sweep_kick_queries(void)
{
	sweep_kick(&sweeps[SWEEP_QUERIES]);
}
