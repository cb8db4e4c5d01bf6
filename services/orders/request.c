/* request — what the orders API's handler files share: who the caller is,
 * paging (limit, cursor), JSON values of columns and the domain's refusals
 * as replies. A leaf: it calls nothing else of the service. */
#include "orders.h"

#include "access.h"
#include "crypto.h"
#include "eligibility.h"
#include "json.h"
#include "session.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT_LIMIT 20
#define LIST_MAX_LIMIT 100

void
orders_reply_error(struct http_req *req, const struct order_error *err)
{
	http_reply_error(req, err->status, err->code,
	    err->field[0] ? err->field : NULL, err->message);
}

/* Certificate holders only: a staff session, or an account without a current
 * identity, is answered 403 here; so is an identity the access table gives no
 * orders. */
int
orders_require_holder(struct http_req *req)
{
	struct access_viewer v;

	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "工作人员账号不能办理证书延期");
		return -1;
	}
	if (req->session->identity_id == NULL) {
		http_reply_error(req, 403, "IDENTITY_REQUIRED", NULL,
		    "请先添加并切换到企业或个人身份");
		return -1;
	}
	return access_viewer(req, ACCESS_ORDERS, &v);
}

/* The caller's enterprise when the current identity acts on all of its
 * orders (the access table's ENTERPRISE scope: its administrator). */
const char *
orders_admin_uscc(const struct session *s)
{
	if (s->uscc != NULL && s->identity_type != NULL &&
	    strcmp(s->identity_type, "enterprise") == 0 &&
	    access_scope(s, ACCESS_ORDERS) >= ACCESS_ENTERPRISE)
		return s->uscc;
	return NULL;
}

json_t *
orders_json_str(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

json_t *
orders_json_fen(const char *s)
{
	return json_integer(s != NULL ? strtoll(s, NULL, 10) : 0);
}

/* Reads ?limit= (1..100, default 20) into *limit, or answers 400. */
int
orders_read_limit(struct http_req *req, int *limit)
{
	char *v = http_query_param(req, "limit"), *end;
	long n;

	*limit = LIST_DEFAULT_LIMIT;
	if (v == NULL)
		return 0;
	n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < 1 || n > LIST_MAX_LIMIT) {
		free(v);
		http_reply_error(req, 400, "BAD_REQUEST", "limit",
		    "limit 须为 1 至 100 的整数");
		return -1;
	}
	free(v);
	*limit = (int)n;
	return 0;
}

/* A cursor is base64url("<time with microseconds>|<uuid>"), opaque to
 * clients. Decodes ?cursor= into time and id (both "" when absent), or
 * answers 400. */
int
orders_read_cursor(struct http_req *req, char time[40], char id[37])
{
	char *v = http_query_param(req, "cursor"), text[80], *bar = NULL;
	unsigned char *raw = NULL;
	size_t len = 0;
	int64_t t;

	time[0] = id[0] = '\0';
	if (v == NULL)
		return 0;
	if (strlen(v) <= 512 &&
	    crypto_base64url_decode(&raw, &len, v, strlen(v)) == 0 &&
	    len < sizeof(text) && memchr(raw, '\0', len) == NULL) {
		memcpy(text, raw, len);
		text[len] = '\0';
		bar = strchr(text, '|');
	}
	free(v);
	free(raw);
	if (bar == NULL || bar - text >= 40 || !uuid_valid(bar + 1)) {
		http_reply_error(req, 400, "BAD_REQUEST", "cursor",
		    "分页游标无效");
		return -1;
	}
	*bar = '\0';
	if (order_time_parse(text, &t) != 0) {
		http_reply_error(req, 400, "BAD_REQUEST", "cursor",
		    "分页游标无效");
		return -1;
	}
	memcpy(time, text, (size_t)(bar - text) + 1);
	memcpy(id, bar + 1, 37);
	return 0;
}

json_t *
orders_cursor_json(const char *time, const char *id)
{
	char *text = xasprintf("%s|%s", time, id);
	char *enc = crypto_base64url_encode(text, strlen(text));
	json_t *c = json_string(enc);

	free(text);
	free(enc);
	return c;
}
