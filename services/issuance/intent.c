/* intent — what the holder's renewal (renew.c) and the sweep (sweep.c)
 * share about an issuance intent: the backoff between vendor attempts, and
 * recording the certificate a vendor issued. A leaf: it calls nothing else
 * of the service. */
#include "issuance.h"

#include "crypto.h"
#include "db.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

#define RETRY_CAP_SECONDS 300

long
cert_retry_seconds(int attempts)
{
	long s = issuance.cfg.retry_seconds;

	for (int i = 1; i < attempts && s < RETRY_CAP_SECONDS; i++)
		s *= 2;
	return s < RETRY_CAP_SECONDS ? s : RETRY_CAP_SECONDS;
}

void
cert_vendor_failed(const char *rid, int application, const char *id,
    const char *adapter, int attempts, int final, const char *error, db_cb cb,
    void *arg)
{
	char retry[24];

	log_warn(rid,
	    "msg=%s_vendor_failed %s=%s adapter=%s final=%d error=\"%s\"",
	    application ? "issue" : "renewal", application ? "app" : "intent",
	    id, adapter, final, error);
	snprintf(retry, sizeof(retry), "%ld",
	    final ? 0 : cert_retry_seconds(attempts));
	const char *p[] = {id, error, retry, final ? "true" : "false"};
	db_query(issuance.svc.db,
	    application ? store_application_failed_sql
	                : store_renewal_failed_sql,
	    4, p, cb, arg);
}

int
cert_issued_record(struct db_batch *b, const char *complete_sql,
    const char *result_sql, const char *intent, const char *vendor_name,
    const char *csr_spki, const char *serial, const char *cert_pem,
    const char *chain, char *err, size_t err_size)
{
	struct crypto_cert *cert;
	char cert_id[37], event_id[37], nb[24], na[24];

	if (cert_pem == NULL || crypto_cert_parse(&cert, cert_pem, NULL) != 0) {
		snprintf(err, err_size,
		    "the vendor's certificate does not parse");
		return -1;
	}
	if (strcmp(cert->spki_sha256, csr_spki) != 0) {
		snprintf(err, err_size,
		    "the vendor's certificate is not for the CSR's key");
		crypto_cert_free(cert);
		return -1;
	}
	if (strcmp(vendor_name, issuance.cfg.ca_vendor) == 0 &&
	    strcmp(cert->serial, serial) != 0) {
		snprintf(err, err_size,
		    "the local CA did not use the reserved serial");
		crypto_cert_free(cert);
		return -1;
	}
	uuid_v4(cert_id);
	uuid_v4(event_id);
	snprintf(nb, sizeof(nb), "%lld", (long long)cert->not_before);
	snprintf(na, sizeof(na), "%lld", (long long)cert->not_after);
	const char *p[] = {intent, cert_id, event_id, cert->issuer_dn,
	    cert->serial, vendor_name, cert->subject_dn,
	    cert->fingerprint_sha256, cert->spki_sha256,
	    crypto_key_type_name(cert->key_type), nb, na, cert->pem,
	    chain ? chain : ""};
	db_batch_add(b, complete_sql, 14, p);
	const char *q[] = {intent};
	db_batch_add(b, result_sql, 1, q);
	crypto_cert_free(cert);
	return 0;
}

int
cert_renewal_record(struct db_batch *b, const char *intent,
    const char *vendor_name, const char *csr_spki, const char *serial,
    const char *cert_pem, const char *chain, char *err, size_t err_size)
{
	return cert_issued_record(b, store_renewal_complete_sql,
	    store_renewal_result_sql, intent, vendor_name, csr_spki, serial,
	    cert_pem, chain, err, err_size);
}
