/* application — what the new-certificate issue (newcert.c) and the resumer
 * (sweep.c) share about an application's intent (issue 19): recording the
 * certificate a vendor issued, and the 201 answer of an issued
 * certificate. A leaf: it calls nothing else of the service. */
#include "issuance.h"

#include "crypto.h"
#include "db.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
cert_application_record(struct db_batch *b, const char *app,
    const char *vendor_name, const char *csr_spki, const char *serial,
    const char *cert_pem, const char *chain, char *err, size_t err_size)
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
	const char *p[] = {app, cert_id, event_id, cert->issuer_dn,
	    cert->serial, vendor_name, cert->subject_dn,
	    cert->fingerprint_sha256, cert->spki_sha256,
	    crypto_key_type_name(cert->key_type), nb, na, cert->pem,
	    chain ? chain : ""};
	db_batch_add(b, store_application_complete_sql, 14, p);
	const char *q[] = {app};
	db_batch_add(b, store_application_result_sql, 1, q);
	crypto_cert_free(cert);
	return 0;
}

/* Splits a PEM bundle into a JSON array of PEM certificates. */
static json_t *
application_chain_json(const char *chain)
{
	static const char end_marker[] = "-----END CERTIFICATE-----";
	json_t *arr = json_array();
	const char *p = chain ? chain : "";

	for (;;) {
		const char *begin = strstr(p, "-----BEGIN CERTIFICATE-----");
		const char *end = begin ? strstr(begin, end_marker) : NULL;
		if (end == NULL)
			break;
		end += sizeof(end_marker) - 1;
		char *one = xasprintf("%.*s\n", (int)(end - begin), begin);
		json_array_append_new(arr, json_string(one));
		free(one);
		p = end;
	}
	return arr;
}

json_t *
cert_issued_json(const struct db_result *res, int stmt)
{
	char nb[48], na[48];
	json_t *platforms = json_loads(db_value(res, stmt, 0, 5), 0, NULL);

	time_rfc3339(atoll(db_value(res, stmt, 0, 3)) * 1000, nb);
	time_rfc3339(atoll(db_value(res, stmt, 0, 4)) * 1000, na);
	return json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:o}", "cert_id",
	    db_value(res, stmt, 0, 6), "certificate", db_value(res, stmt, 0, 0),
	    "chain", application_chain_json(db_value(res, stmt, 0, 1)),
	    "serial", db_value(res, stmt, 0, 2), "not_before", nb, "not_after",
	    na, "platforms", platforms ? platforms : json_array());
}
