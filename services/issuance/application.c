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
	return cert_issued_record(b, store_application_complete_sql,
	    store_application_result_sql, app, vendor_name, csr_spki, serial,
	    cert_pem, chain, err, err_size);
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
