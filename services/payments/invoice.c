/* invoice — the invoice-provider interface and its local default. A real
 * provider (a tax-control or 数电票 platform) implements issue() with its own
 * API; the local one numbers invoices from a PostgreSQL sequence
 * (YY + "21" + 16 digits, the 20-digit 数电票 number shape) and reports the
 * e-mail as the delivery, which invoice_issue() records. */
#include "payments.h"

#include "db.h"
#include "util.h"

#include <stdlib.h>

struct local_issue {
	invoice_issued_fn cb;
	void *arg;
	char *email;
};

static void
local_on_number(void *arg, const struct db_result *res)
{
	struct local_issue *li = arg;
	const char *number =
	    res->status == DB_OK ? db_value(res, 0, 0, 0) : NULL;

	li->cb(li->arg, number, number ? li->email : NULL);
	free(li->email);
	free(li);
}

static void
local_issue(const struct invoice_request *req, invoice_issued_fn cb, void *arg)
{
	struct local_issue *li = xcalloc(1, sizeof(*li));

	li->cb = cb;
	li->arg = arg;
	li->email = req->email ? xstrdup(req->email) : NULL;
	db_query(pay.svc.db, store_invoice_number_sql, 0, NULL, local_on_number,
	    li);
}

static const struct invoice_provider local_provider = {"local", local_issue};

const struct invoice_provider *
invoice_provider(void)
{
	return &local_provider;
}
