/* payments — the service's one state (struct payments) and the helpers the
 * handler files share: the error envelope, the answers to the refusals
 * of the SQL functions, who sees which payment and invoice (access_viewer, common/access.h) and
 * the data of audit entries. A leaf: it calls into no other file of the service,
 * so that any of them may call it. */
#include "payments.h"

#include "access.h"
#include "audit.h"
#include "json.h"
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
    {"INVOICE_ALREADY_REQUESTED", 409, NULL, "该支付已申请过补开发票"},
    {"PAYMENT_NOT_INVOICEABLE", 409, NULL,
        "该支付未成功、已退款或金额已变化，不能补开发票"},
    {"INVOICE_PERIOD_EXPIRED", 422, NULL, "已超过补开发票的期限"},
    {"SPECIAL_INVOICE_NOT_ALLOWED", 422, "type",
        "仅一般纳税人且开票信息完整的企业可开具纸质专票"},
    {"INVOICE_NOT_FOUND", 404, NULL, "发票不存在"},
    {"INVOICE_STATE", 409, NULL, "发票当前状态不允许此操作"},
    {"INVOICE_REISSUE_LIMIT", 409, NULL, "该发票已达重开次数上限"},
    {"INVOICE_REISSUE_PERIOD", 422, NULL, "已超过发票重开的期限"},
    {"INVOICE_UNCHANGED", 422, "title", "抬头与税号均未变更，无需重开"},
    {"TAXPAYER_ID_NOT_ALLOWED", 422, "taxpayer_id",
        "个人发票不填写纳税人识别号"},
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

/* A plausible address: local@domain.tld, printable, at most 254 bytes. */
int
pay_email_ok(const char *s)
{
	const char *at = strchr(s, '@'), *dot;

	if (strlen(s) > 254 || at == NULL || at == s ||
	    strchr(at + 1, '@') != NULL)
		return 0;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == ',' ||
		    *p == ';' || *p == '<' || *p == '>')
			return 0;
	dot = strrchr(at, '.');
	return dot != NULL && dot > at + 1 && dot[1] != '\0';
}

int
pay_postal_read(json_t *obj, int required, int nested, struct pay_postal *out,
    struct json_field_err *err)
{
	static const struct {
		const char *name, *nested;
		size_t max;
	} fields[] = {
	    {"recipient", "invoice.recipient", 64},
	    {"phone", "invoice.phone", 32},
	    {"address", "invoice.address", 256},
	};
	const char **to[] = {&out->recipient, &out->phone, &out->address};

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < ARRAY_LEN(fields); i++)
		if (json_field_str(obj, fields[i].name,
		        required ? JSON_FIELD_REQUIRED : JSON_FIELD_OPTIONAL,
		        fields[i].max, to[i], err) != 0) {
			if (nested)
				err->field = fields[i].nested;
			return -1;
		}
	return 0;
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
