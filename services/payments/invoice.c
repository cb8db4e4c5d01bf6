/* invoice — the invoice-provider interface's choice and its local default.
 * A tax platform (taxplat.c, a 数电票 platform's API over HTTPS) is used when
 * CAPLAT_TAXPLAT_URL is set; otherwise the local provider numbers invoices
 * from a PostgreSQL sequence (YY + "21" + 16 digits, the 20-digit 数电票
 * number shape), has no check code and no file (so nothing to download or
 * e-mail): enough for `make run` without a platform. */
#include "payments.h"

#include "db.h"
#include "util.h"

#include <stdlib.h>

struct local_call {
	invoice_fn cb;
	void *arg;
};

static void
local_on_number(void *arg, const struct db_result *res)
{
	struct local_call *lc = arg;
	struct invoice_answer a = {.outcome = INVOICE_UNAVAILABLE,
	    .reason = "database"};

	if (res->status == DB_OK) {
		a.outcome = INVOICE_OK;
		a.reason = NULL;
		a.number = db_value(res, 0, 0, 0);
	}
	lc->cb(lc->arg, &a);
	free(lc);
}

static void
local_issue(const struct invoice_request *req, invoice_fn cb, void *arg)
{
	struct local_call *lc = xcalloc(1, sizeof(*lc));

	lc->cb = cb;
	lc->arg = arg;
	db_query(pay.svc.db, store_invoice_number_sql, 0, NULL, local_on_number,
	    lc);
}

/* The local provider keeps no record of its requests: a retry numbers
 * anew (there is no platform to issue twice on). */
static void
local_query(const char *request_id, invoice_fn cb, void *arg)
{
	struct invoice_answer a = {.outcome = INVOICE_UNKNOWN};

	cb(arg, &a);
}

static void
local_download(const char *number, invoice_fn cb, void *arg)
{
	struct invoice_answer a = {.outcome = INVOICE_OK, .number = number};

	cb(arg, &a);
}

static const struct invoice_provider local_provider = {"local", local_issue,
    local_issue, local_query, local_download};

const struct invoice_provider *
invoice_provider(void)
{
	const struct invoice_provider *p = taxplat_provider();

	return p ? p : &local_provider;
}
