/* resume — finishes in the background what a crash, a vendor failure or a
 * timeout left pending: intents (asked again with the same request id, so
 * never issued twice) and revocations to forward to vendors, each claimed
 * under a lease with SKIP LOCKED, one at a time per process. */
#include "issuance.h"

#include "crypto.h"
#include "db.h"
#include "log.h"
#include "util.h"
#include "vendor.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the resumer -------------------------------------------------------- */

static struct event *tick;
static int busy;

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

static void resume_claim(void);
static void on_claimed(void *arg, const struct db_result *res);
static void on_issued(void *arg, const struct vendor_cert_result *res);
static void on_recorded(void *arg, const struct db_result *res);
static void on_failed(void *arg, const struct db_result *res);
static void jobs_claim(void);
static void on_job_claimed(void *arg, const struct db_result *res);
static void on_job_sent(void *arg, enum vendor_status status,
    const char *error);
static void on_job_updated(void *arg, const struct db_result *res);

static void
resume_free(struct resume *r)
{
	free(r->csr_pem);
	free(r->renewed_pem);
	free(r);
}

static void
resume_idle(void)
{
	struct timeval tv = {issuance.cfg.resume_interval_ms / 1000,
	    (issuance.cfg.resume_interval_ms % 1000) * 1000};

	busy = 0;
	/* A claim failed by the pool's shutdown ends here: no timer then. */
	if (tick != NULL)
		evtimer_add(tick, &tv);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	if (busy)
		return;
	busy = 1;
	resume_claim();
}

static void
resume_claim(void)
{
	char lease[24];

	snprintf(lease, sizeof(lease), "%ld", issuance.cfg.lease_seconds);
	const char *p[] = {lease};
	db_query(issuance.svc.db, store_intent_claim_sql, 1, p, on_claimed,
	    NULL);
}

static void
on_claimed(void *arg, const struct db_result *res)
{
	struct crypto_csr *csr = NULL;
	struct resume *r;

	if (res->status != DB_OK) {
		resume_idle();
		return;
	}
	if (db_rows(res, 0) != 1) {
		jobs_claim();
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
	char err[256], retry[24];
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
	log_warn(NULL,
	    "msg=renewal_vendor_failed intent=%s adapter=%s final=%d error=\"%s\"",
	    r->intent, r->adapter, final, error);
	snprintf(retry, sizeof(retry), "%ld", cert_retry_seconds(r->attempts));
	const char *p[] = {r->intent, error, retry, final ? "true" : "false"};
	db_query(issuance.svc.db, store_renewal_failed_sql, 4, p, on_failed, r);
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
		resume_claim(); /* more may be due */
		return;
	}
	log_error(NULL,
	    "msg=renewal_record_failed intent=%s status=%d error=\"%s\"",
	    r->intent, res->status, res->message ? res->message : "");
	resume_free(r);
	resume_idle();
}

static void
on_failed(void *arg, const struct db_result *res)
{
	resume_free(arg);
	resume_idle();
}

/* ---- revocations forwarded to vendors ----------------------------------- */

static void
jobs_claim(void)
{
	char lease[24];

	snprintf(lease, sizeof(lease), "%ld", issuance.cfg.lease_seconds);
	const char *p[] = {lease};
	db_query(issuance.svc.db, store_job_claim_sql, 1, p, on_job_claimed,
	    NULL);
}

static void
on_job_claimed(void *arg, const struct db_result *res)
{
	struct vendor *v;
	struct resume *r;

	if (res->status != DB_OK || db_rows(res, 0) != 1) {
		resume_idle();
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
		jobs_claim(); /* more may be due */
	else
		resume_idle();
}

void
issuance_resume_start(void)
{
	tick = evtimer_new(issuance.svc.base, on_tick, NULL);
	if (tick == NULL)
		fatal("evtimer_new failed");
	resume_idle();
}

void
issuance_resume_stop(void)
{
	if (tick != NULL)
		event_free(tick);
	tick = NULL;
}
