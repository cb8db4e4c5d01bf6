/* sweep — the issuance service's timers, rows of common/sweep.h: they
 * finish in the background what a crash, a vendor failure or a timeout left
 * pending: renewal intents (asked again with the same request id, so never
 * issued twice) and revocations to forward to vendors. Each sweep claims one
 * item at a time under a lease with SKIP LOCKED, goes on while items are
 * due, then waits: until the next pending item falls due (the claim's batch
 * also reads when that is), at least its interval, at most
 * CAPLAT_ISSUANCE_IDLE_MS when nothing is pending at all, so an idle
 * service sends PostgreSQL nothing between those rare looks. This process
 * kicks the sweep when it leaves an item pending (issuance_sweep_kick); the
 * idle look finds what another process left behind (a crash). The reminder
 * pass claims its due stages set-based instead, a batch per transaction
 * (020_reminders.sql). */
#include "issuance.h"

#include "clock.h"
#include "crypto.h"
#include "db.h"
#include "log.h"
#include "sweep.h"
#include "util.h"
#include "vendor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct resume {
	char intent[37], serial[65], adapter[32];
	char *csr_pem, *renewed_pem;
	char spki[CRYPTO_SHA256_HEX_SIZE];
	time_t not_before, not_after;
	int attempts;
	struct vendor *vendor;
	/* vendor jobs */
	char job[37];
};

static void on_claimed(void *arg, const struct db_result *res);
static void on_issued(void *arg, const struct vendor_cert_result *res);
static void on_recorded(void *arg, const struct db_result *res);
static void on_failed(void *arg, const struct db_result *res);
static void on_job_claimed(void *arg, const struct db_result *res);
static void on_job_sent(void *arg, enum vendor_status status,
    const char *error);
static void on_job_updated(void *arg, const struct db_result *res);
static void on_app_claimed(void *arg, const struct db_result *res);

static void
resume_free(struct resume *r)
{
	free(r->csr_pem);
	free(r->renewed_pem);
	free(r);
}

/* ---- the timers ----------------------------------------------------------- */

enum {
	SWEEP_INTENTS,
	SWEEP_VENDOR_JOBS,
	SWEEP_DIRECTORY,
	SWEEP_APPLICATIONS,
	SWEEP_REMINDERS
};

static void claim_start(struct sweep *s);
static void sync_start(struct sweep *s);
static void on_synced(void);
static void reminders_start(struct sweep *s);

/* The claiming sweeps rest until their next pending item falls due, at
 * least CAPLAT_ISSUANCE_RESUME_MS, at most CAPLAT_ISSUANCE_IDLE_MS; the
 * directory sync and the reminder pass run every interval. An interval of
 * 0 is off. */
static struct sweep sweeps[] = {
    [SWEEP_INTENTS] = {"renewal_intents", &issuance.cfg.resume_interval_ms,
        &issuance.cfg.idle_interval_ms, claim_start},
    [SWEEP_VENDOR_JOBS] = {"vendor_revocations",
        &issuance.cfg.resume_interval_ms, &issuance.cfg.idle_interval_ms,
        claim_start},
    [SWEEP_DIRECTORY] = {"vendor_directory", &issuance.cfg.sync_interval_ms,
        NULL, sync_start},
    [SWEEP_APPLICATIONS] = {"application_intents",
        &issuance.cfg.resume_interval_ms, &issuance.cfg.idle_interval_ms,
        claim_start},
    [SWEEP_REMINDERS] = {"reminders", &issuance.cfg.reminder_pass_ms, NULL,
        reminders_start},
};

/* A claiming sweep leases one due item at a time (its claim statement, $1
 * the lease in seconds; then its due statement, when the next pending item
 * falls due) and handles it in on_claimed, which claims again while items
 * come, and ends the round in sweep_done or sweep_rest_until. */
static const struct claim {
	const char *claim_sql;
	const char *due_sql;
	db_cb on_claimed;
} claims[] = {
    [SWEEP_INTENTS] = {store_intent_claim_sql, store_intent_due_sql,
        on_claimed},
    [SWEEP_VENDOR_JOBS] = {store_job_claim_sql, store_job_due_sql,
        on_job_claimed},
    [SWEEP_APPLICATIONS] = {store_application_claim_sql,
        store_application_due_sql, on_app_claimed},
};

static void
claim_run(size_t i)
{
	char lease[24];

	snprintf(lease, sizeof(lease), "%ld", issuance.cfg.lease_seconds);
	const char *p[] = {lease};
	struct db_batch *b = db_batch_new();

	db_batch_add(b, claims[i].claim_sql, 1, p);
	db_batch_add(b, claims[i].due_sql, 0, NULL);
	db_batch_run(issuance.svc.db, b, claims[i].on_claimed, NULL);
}

static void
claim_start(struct sweep *s)
{
	claim_run((size_t)(s - sweeps));
}

/* The claim of sweep i found nothing due: rest until the next pending item
 * falls due (its batch's second statement: milliseconds, NULL when none is
 * pending; the idle maximum when the claim failed). */
static void
claim_rest(size_t i, const struct db_result *res)
{
	sweep_rest_until(&sweeps[i],
	    res->status == DB_OK && res->nstmts > 1 ? db_value(res, 1, 0, 0)
	                                            : NULL);
}

void
issuance_sweep_kick(void)
{
	/* after the interval, as a rest would: the item just left pending
	 * has its own due time */
	sweep_kick_in(&sweeps[SWEEP_INTENTS], issuance.cfg.resume_interval_ms);
	sweep_kick_in(&sweeps[SWEEP_VENDOR_JOBS],
	    issuance.cfg.resume_interval_ms);
}

void
issuance_sweep_start(void)
{
	sweep_start(sweeps, ARRAY_LEN(sweeps), issuance.svc.base, -1);
}

void
issuance_sweep_stop(void)
{
	sweep_stop(sweeps, ARRAY_LEN(sweeps));
}

/* ---- renewal intents ------------------------------------------------------ */

static void
on_claimed(void *arg, const struct db_result *res)
{
	struct crypto_csr *csr = NULL;
	struct resume *r;

	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		claim_rest(SWEEP_INTENTS, res);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	snprintf(r->intent, sizeof(r->intent), "%s", db_value(res, 0, 0, 0));
	snprintf(r->adapter, sizeof(r->adapter), "%s", db_value(res, 0, 0, 1));
	snprintf(r->serial, sizeof(r->serial), "%s", db_value(res, 0, 0, 2));
	r->csr_pem = xstrdup(db_value(res, 0, 0, 3));
	r->renewed_pem =
	    db_value(res, 0, 0, 4) ? xstrdup(db_value(res, 0, 0, 4)) : NULL;
	r->not_before = (time_t)atoll(db_value(res, 0, 0, 5));
	r->not_after = (time_t)atoll(db_value(res, 0, 0, 6));
	r->attempts = atoi(db_value(res, 0, 0, 7));
	r->vendor = vendor_by_adapter(r->adapter);
	issuance_count("resumed");
	log_info(NULL,
	    "msg=renewal_resumed intent=%s serial=%s adapter=%s attempt=%d",
	    r->intent, r->serial, r->adapter, r->attempts);
	if (crypto_csr_parse_verify(&csr, r->csr_pem) == 0)
		snprintf(r->spki, sizeof(r->spki), "%s", csr->spki_sha256);
	crypto_csr_free(csr);
	if (r->vendor == NULL) {
		const struct vendor_cert_result none = {VENDOR_UNAVAILABLE,
		    NULL, NULL, "adapter not configured in this process"};
		on_issued(r, &none);
		return;
	}
	const struct vendor_cert_request vr = {r->intent, r->serial, r->csr_pem,
	    r->renewed_pem, r->not_before, r->not_after};
	vendor_renew(r->vendor, &vr, on_issued, r);
}

static void
on_issued(void *arg, const struct vendor_cert_result *res)
{
	struct resume *r = arg;
	const char *error = res->error;
	char err[256];
	int final = res->status == VENDOR_REJECTED;

	issuance_count(res->status == VENDOR_OK ? "vendor_ok"
	        : final                         ? "vendor_rejected"
	                                        : "vendor_unavailable");
	if (res->status == VENDOR_OK) {
		struct db_batch *b = db_batch_new();

		issuance_fault_point(ISSUANCE_FAULT_CRASH_AFTER_VENDOR);
		if (cert_renewal_record(b, r->intent, r->vendor->name, r->spki,
		        r->serial, res->certificate, res->chain, err,
		        sizeof(err)) == 0) {
			db_batch_run(issuance.svc.db, b, on_recorded, r);
			return;
		}
		db_batch_free(b);
		issuance_count("vendor_bad_certificate");
		error = err;
		final = 0;
	}
	cert_vendor_failed(NULL, 0, r->intent, r->adapter, r->attempts, final,
	    error, on_failed, r);
}

static void
on_recorded(void *arg, const struct db_result *res)
{
	struct resume *r = arg;

	if (res->status == DB_OK) {
		if (db_rows(res, 0) == 1 && db_bool(res, 0, 0, 1))
			issuance_count("renewed");
		log_info(NULL, "msg=renewed intent=%s serial=%s by=resumer",
		    r->intent, r->serial);
		resume_free(r);
		claim_run(SWEEP_INTENTS); /* more may be due */
		return;
	}
	log_error(NULL,
	    "msg=renewal_record_failed intent=%s status=%d error=\"%s\"",
	    r->intent, res->status, res->message ? res->message : "");
	resume_free(r);
	sweep_done(&sweeps[SWEEP_INTENTS], 0);
}

static void
on_failed(void *arg, const struct db_result *res)
{
	resume_free(arg);
	sweep_done(&sweeps[SWEEP_INTENTS], 0);
}

/* ---- revocations forwarded to vendors ----------------------------------- */

static void
on_job_claimed(void *arg, const struct db_result *res)
{
	struct vendor *v;
	struct resume *r;

	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		claim_rest(SWEEP_VENDOR_JOBS, res);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	snprintf(r->job, sizeof(r->job), "%s", db_value(res, 0, 0, 0));
	r->attempts = atoi(db_value(res, 0, 0, 6));
	v = vendor_by_name(db_value(res, 0, 0, 1));
	if (v == NULL) {
		on_job_sent(r, VENDOR_UNAVAILABLE,
		    "no adapter for this vendor in this process");
		return;
	}
	const struct vendor_revoke_request vr = {r->job, db_value(res, 0, 0, 2),
	    db_value(res, 0, 0, 3), db_value(res, 0, 0, 4),
	    (time_t)atoll(db_value(res, 0, 0, 5))};
	vendor_revoke(v, &vr, on_job_sent, r);
}

static void
on_job_sent(void *arg, enum vendor_status status, const char *error)
{
	struct resume *r = arg;
	char retry[24];

	if (status == VENDOR_OK) {
		issuance_count("vendor_revocations");
		const char *p[] = {r->job};
		db_query(issuance.svc.db, store_job_done_sql, 1, p,
		    on_job_updated, r);
		return;
	}
	log_warn(NULL, "msg=vendor_revoke_failed job=%s error=\"%s\"", r->job,
	    error);
	snprintf(retry, sizeof(retry), "%ld", cert_retry_seconds(r->attempts));
	const char *p[] = {r->job, error, retry,
	    status == VENDOR_REJECTED ? "true" : "false"};
	db_query(issuance.svc.db, store_job_failed_sql, 4, p, on_job_updated,
	    r);
}

static void
on_job_updated(void *arg, const struct db_result *res)
{
	struct resume *r = arg;
	int ok = res->status == DB_OK;

	resume_free(r);
	if (ok)
		claim_run(SWEEP_VENDOR_JOBS); /* more may be due */
	else
		sweep_done(&sweeps[SWEEP_VENDOR_JOBS], 0);
}

/* ---- the vendor directory sync (sync.c) --------------------------------- */

static void
sync_start(struct sweep *s)
{
	cert_sync_run(on_synced);
}

static void
on_synced(void)
{
	sweep_done(&sweeps[SWEEP_DIRECTORY], 0);
}

/* ---- new certificates' intents (issue 19, newcert.c) --------------------
 * A paid application whose CSR was recorded but whose certificate was not
 * (a crash, the vendor down): asked again with the application's id as
 * request id, recorded once (application_complete). */

static void on_app_issued(void *arg, const struct vendor_cert_result *res);
static void on_app_done(void *arg, const struct db_result *res);

static void
on_app_claimed(void *arg, const struct db_result *res)
{
	struct crypto_csr *csr = NULL;
	struct resume *r;

	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		claim_rest(SWEEP_APPLICATIONS, res);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	snprintf(r->intent, sizeof(r->intent), "%s", db_value(res, 0, 0, 0));
	snprintf(r->adapter, sizeof(r->adapter), "%s", db_value(res, 0, 0, 1));
	snprintf(r->serial, sizeof(r->serial), "%s", db_value(res, 0, 0, 2));
	r->csr_pem = xstrdup(db_value(res, 0, 0, 3));
	r->not_before = (time_t)atoll(db_value(res, 0, 0, 4));
	r->not_after = (time_t)atoll(db_value(res, 0, 0, 5));
	r->attempts = atoi(db_value(res, 0, 0, 6));
	r->vendor = vendor_by_adapter(r->adapter);
	issuance_count("resumed");
	log_info(NULL, "msg=issue_resumed app=%s serial=%s attempt=%d",
	    r->intent, r->serial, r->attempts);
	if (crypto_csr_parse_verify(&csr, r->csr_pem) == 0)
		snprintf(r->spki, sizeof(r->spki), "%s", csr->spki_sha256);
	crypto_csr_free(csr);
	if (r->vendor == NULL) {
		const struct vendor_cert_result none = {VENDOR_UNAVAILABLE,
		    NULL, NULL, "adapter not configured in this process"};
		on_app_issued(r, &none);
		return;
	}
	const struct vendor_cert_request vr = {r->intent, r->serial, r->csr_pem,
	    NULL, r->not_before, r->not_after};
	vendor_create(r->vendor, &vr, on_app_issued, r);
}

static void
on_app_issued(void *arg, const struct vendor_cert_result *res)
{
	struct resume *r = arg;
	const char *error = res->error;
	char err[256];
	int final = res->status == VENDOR_REJECTED;

	if (res->status == VENDOR_OK) {
		struct db_batch *b = db_batch_new();

		issuance_fault_point(ISSUANCE_FAULT_CRASH_AFTER_VENDOR);
		if (cert_application_record(b, r->intent, r->vendor->name,
		        r->spki, r->serial, res->certificate, res->chain, err,
		        sizeof(err)) == 0) {
			db_batch_run(issuance.svc.db, b, on_app_done, r);
			return;
		}
		db_batch_free(b);
		error = err;
		final = 0;
	}
	cert_vendor_failed(NULL, 1, r->intent, r->adapter, r->attempts, final,
	    error, on_app_done, r);
}

static void
on_app_done(void *arg, const struct db_result *res)
{
	struct resume *r = arg;
	int ok = res->status == DB_OK;

	if (ok)
		log_info(NULL, "msg=issue_resumer_done app=%s serial=%s",
		    r->intent, r->serial);
	resume_free(r);
	if (ok)
		claim_run(SWEEP_APPLICATIONS); /* more may be due */
	else
		sweep_done(&sweeps[SWEEP_APPLICATIONS], 0);
}

/* ---- the reminder pass (expiry stages, unused paid renewals) ------------ */

/* The pass under way: its instant and where its last round stopped (each
 * stage's window is walked once per pass, 020_reminders.sql). */
static struct {
	char now[24];
	char stage[16], after[64], after_id[37]; /* "" before the first round */
} reminder_pass;

static void reminders_round(void);

static void
on_reminders_claimed(void *arg, const struct db_result *res)
{
	long expiry, unused;
	int more;

	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		log_warn(NULL,
		    "msg=reminder_pass_failed status=%d error=\"%s\"",
		    res->status, res->message ? res->message : "");
		sweep_done(&sweeps[SWEEP_REMINDERS], 0);
		return;
	}
	expiry = atol(db_value(res, 0, 0, 0));
	unused = atol(db_value(res, 0, 0, 4));
	if (expiry + unused > 0) {
		log_info(NULL, "msg=reminders_claimed expiry=%ld unused=%ld",
		    expiry, unused);
		issuance_fault_point(ISSUANCE_FAULT_CRASH_AFTER_REMINDERS);
	}
	more = db_value(res, 0, 0, 1) != NULL;
	if (more) {
		snprintf(reminder_pass.stage, sizeof(reminder_pass.stage), "%s",
		    db_value(res, 0, 0, 1));
		snprintf(reminder_pass.after, sizeof(reminder_pass.after), "%s",
		    db_value(res, 0, 0, 2));
		snprintf(reminder_pass.after_id, sizeof(reminder_pass.after_id),
		    "%s", db_value(res, 0, 0, 3));
	} else {
		reminder_pass.stage[0] = '\0';
	}
	/* A full round: more may be due, go on at once. */
	if (more || unused >= issuance.cfg.reminder_batch)
		reminders_round();
	else
		sweep_done(&sweeps[SWEEP_REMINDERS], 0);
}

static void
reminders_round(void)
{
	char limit[24];
	int first = reminder_pass.stage[0] == '\0';

	snprintf(limit, sizeof(limit), "%ld", issuance.cfg.reminder_batch);
	const char *p[] = {reminder_pass.now, issuance.reminder_stages, limit,
	    issuance.renewal_reminder_days, first ? NULL : reminder_pass.stage,
	    first ? NULL : reminder_pass.after,
	    first ? NULL : reminder_pass.after_id};
	db_query(issuance.svc.db, store_reminder_pass_sql, 7, p,
	    on_reminders_claimed, NULL);
}

static void
reminders_start(struct sweep *s)
{
	snprintf(reminder_pass.now, sizeof(reminder_pass.now), "%lld",
	    (long long)clock_now());
	reminder_pass.stage[0] = '\0';
	reminders_round();
}
