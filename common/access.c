/* access — the one table of who may do what (see access.h). */
#include "access.h"

#include "http.h"
#include "session.h"
#include "util.h"

#include <string.h>

#define N ACCESS_NONE
#define O ACCESS_OWN
#define E ACCESS_ENTERPRISE
#define P ACCESS_PLATFORM

/* Rows: roles; columns: enum access_area in order. The seed guide: the
 * administrator has 企业信息、人员管理、CA管理、订单管理、发票管理 (身份唯一);
 * 项目负责人/授权委托人 have CA管理、订单管理、发票管理 on what is theirs. */
static const struct {
	const char *role;
	int staff;
	enum access_scope scope[ACCESS_AREAS];
} table[] = {
    /*                          pub full edit memb cert ordr paym revw fin aud */
    {"admin", 0, {E, E, E, E, E, E, E, N, N, N}},
    {"project_lead", 0, {E, N, N, N, O, O, O, N, N, N}},
    {"agent", 0, {E, N, N, N, O, O, O, N, N, N}},
    {"cost_engineer", 0, {E, N, N, N, O, O, O, N, N, N}},
    {"reviewer", 1, {P, P, N, N, P, N, N, P, N, N}},
    {"finance", 1, {P, N, N, N, N, P, P, N, P, N}},
    {"operator", 1, {P, P, N, P, P, P, P, N, N, P}},
};

enum access_scope
access_scope(const struct session *s, enum access_area a)
{
	enum access_scope best = ACCESS_NONE;

	if (s == NULL || (unsigned)a >= ACCESS_AREAS)
		return ACCESS_NONE;
	for (size_t i = 0; i < ARRAY_LEN(table); i++) {
		int holds;

		if (table[i].staff)
			holds = s->staff_id != NULL &&
			    session_has_role(s, table[i].role);
		else
			holds = s->staff_id == NULL && s->role != NULL &&
			    s->uscc != NULL && s->identity_type != NULL &&
			    strcmp(s->identity_type, "enterprise") == 0 &&
			    strcmp(s->role, table[i].role) == 0;
		if (holds && table[i].scope[a] > best)
			best = table[i].scope[a];
	}
	return best;
}

enum access_scope
access_require(struct http_req *req, enum access_area a, enum access_scope min)
{
	enum access_scope s = access_scope(req->session, a);

	if (s < min || s == ACCESS_NONE) {
		http_reply_error(req, 403, "FORBIDDEN", NULL, "无权进行此操作");
		return ACCESS_NONE;
	}
	return s;
}

int
access_viewer(struct http_req *req, enum access_area area,
    struct access_viewer *v)
{
	const struct session *s = req->session;
	enum access_scope scope;

	memset(v, 0, sizeof(*v));
	if (s->staff_id != NULL || s->account_id == NULL) {
		if (access_require(req, area, ACCESS_PLATFORM) == ACCESS_NONE)
			return -1;
		v->scope = "platform";
		return 0;
	}
	v->account = s->account_id;
	if (s->identity_type == NULL ||
	    strcmp(s->identity_type, "enterprise") != 0) {
		v->scope = "own"; /* personal orders and certificates */
		return 0;
	}
	scope = access_require(req, area, ACCESS_OWN);
	if (scope == ACCESS_NONE)
		return -1;
	v->uscc = s->uscc;
	v->scope = scope >= ACCESS_ENTERPRISE ? "enterprise" : "own";
	return 0;
}

void
access_mask(const char *s, char *out, unsigned out_size)
{
	mask_middle(s, out, out_size, 3, 4);
}
