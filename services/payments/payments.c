/* payments — the service's one state (struct payments) and the helpers the
 * handler files share: the error envelope, the answers to the refusals
 * of the SQL functions, who sees which payment and invoice (access_viewer, common/access.h) and
 * the data of audit entries. A leaf: it calls into no other file of the service,
 * so that any of them may call it. */
#include "payments.h"

#include "access.h"
#include "audit.h"
#include "session.h"
#include "util.h"

#include <string.h>

/* Filled by main.c; defined here so that the unit tests, which link every
 * object but main.o, link. */
struct payments pay;

json_t *
pay_error_json(const char *code, const char *field, const char *message)
{
	json_t *e = json_pack("{s:s, s:s}", "code", code, "message", message);

	if (field != NULL)
		json_object_set_new(e, "field", json_string(field));
	return json_pack("{s:o}", "error", e);
}

/* The rule is the answer's code. */
static const struct pay_refusal refusals[] = {
    {"ORDER_NOT_PAYABLE", 409, "order_id", "订单当前不可支付"},
    {"INVOICE_TYPE_LOCKED", 409, "invoice.type",
        "该订单已选择其他发票类型，发票类型选择后不可更改"},
    {"PAYMENT_NOT_FOUND", 404, "payment_id", "支付记录不存在"},
    {"PAYMENT_NOT_REFUNDABLE", 409, "payment_id", "该支付未成功或已全额退款"},
    {"REFUND_AMOUNT_INVALID", 422, "amount_fen", "退款金额超过可退金额"},
};

const struct pay_refusal *
pay_refusal(const char *rule, const char *fallback)
{
	const struct pay_refusal *found = NULL;

	for (size_t i = 0; i < ARRAY_LEN(refusals); i++) {
		if (rule != NULL && strcmp(refusals[i].rule, rule) == 0)
			return &refusals[i];
		if (strcmp(refusals[i].rule, fallback) == 0)
			found = &refusals[i];
	}
	return found;
}

char *
pay_audit_text(const struct http_req *req, const char *action,
    const char *object_type, const char *object_id)
{
	const struct audit_entry e = {.action = action,
	    .object_type = object_type,
	    .object_id = object_id};
	json_t *d = audit_event_data(req, &e);
	char *text = json_dumps(d, JSON_COMPACT);

	json_decref(d);
	return text;
}
