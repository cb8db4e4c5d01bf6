/* handlers — accounts without a USB key (SMS codes, registration, password
 * and SMS login, lockout), sessions (me, logout), identities (add, switch)
 * and staff login. CA login and binding live in ca.c. Each handler is a
 * chain of named continuations; the last one replies. */
#include "auth.h"

#include "audit.h"
#include "bus.h"
#include "crypto.h"
#include "db.h"
#include "json.h"
#include "kv.h"
#include "log.h"
#include "session.h"
#include "util.h"
#include "validate.h"
#include "work.h"

#include <stdlib.h>
#include <string.h>

/* The service's state: configuration, connections (svc), trusted roots.
 * Defined here rather than in main.c so unit tests can link the service. */
struct auth auth;

/* Reads and validates "phone" into out, or answers 422 PHONE_INVALID. */
static int
read_phone(struct http_req *req, json_t *body, char out[12])
{
	const char *phone;

	if (auth_field(req, body, "phone", 16, &phone) != 0)
		return -1;
	if (validate_mobile(phone, out) != 0) {
		http_reply_error(req, 422, "PHONE_INVALID", "phone",
		    "手机号码格式不正确");
		return -1;
	}
	return 0;
}

/* A password: 8–64 bytes with at least one letter and one digit. */
static int
password_ok(const char *pw)
{
	size_t n = strlen(pw);
	int letter = 0, digit = 0;

	for (const char *p = pw; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
			letter = 1;
		else if (*p >= '0' && *p <= '9')
			digit = 1;
	}
	return n >= 8 && n <= 64 && letter && digit;
}

static json_t *
account_json(const char *id, const char *phone)
{
	return json_pack("{s:s, s:s}", "id", id, "phone", phone);
}

/* Per-request state of the account handlers, freed with the request. */
struct acct {
	struct http_req *req;
	json_t *body;
	char phone[12];
	const char *password;
	char *password_hash; /* computed or loaded */
	int password_ok;
	char id[37];
	json_t *session_data;
	int status;         /* reply status once the session exists */
	work_fn after_hash; /* continuation once password_hash is made */
	json_t *reply;      /* reply body waiting for the token */
};

static void
acct_free(void *p)
{
	struct acct *st = p;

	json_decref(st->body);
	if (st->password_hash != NULL) {
		crypto_wipe(st->password_hash, strlen(st->password_hash));
		free(st->password_hash);
	}
	json_decref(st->session_data);
	json_decref(st->reply);
	free(st);
}

static struct acct *
acct_new(struct http_req *req, json_t *body)
{
	struct acct *st = xcalloc(1, sizeof(*st));

	st->req = req;
	st->body = body;
	http_req_attach(req, st, acct_free);
	return st;
}

/* Creates the session and answers st->status with st->reply + "token". */
static void
on_session_created(void *arg, const char *token)
{
	struct acct *st = arg;
	struct http_req *req = st->req;

	if (token == NULL) {
		http_reply_unavailable(req, "redis");
		return;
	}
	json_object_set_new(st->reply, "token", json_string(token));
	json_t *reply = st->reply;
	st->reply = NULL;
	http_reply_json(req, st->status, reply);
}

static void
start_session(struct acct *st, int status, json_t *reply)
{
	st->status = status;
	st->reply = reply;
	session_create(st->session_data, on_session_created, st);
}

/* ---- POST /api/v1/auth/sms --------------------------------------------- */

static const char *const sms_purposes[] = {"bind", "register", "login", "reset",
    NULL};

static void
sms_on_sent(struct http_req *req, enum sms_result r, long retry_after)
{
	char secs[24];

	switch (r) {
	case SMS_OK:
		http_reply_empty(req, 202);
		return;
	case SMS_TOO_FREQUENT:
		snprintf(secs, sizeof(secs), "%ld",
		    retry_after > 0 ? retry_after : 1);
		http_add_header(req, "Retry-After", secs);
		http_reply_error(req, 429, "SMS_TOO_FREQUENT", "phone",
		    "验证码发送过于频繁，请稍后再试");
		return;
	case SMS_DAILY_CAP:
		http_add_header(req, "Retry-After", "3600");
		http_reply_error(req, 429, "SMS_DAILY_LIMIT", "phone",
		    "今日验证码发送次数已达上限");
		return;
	default:
		http_reply_unavailable(req, "redis");
	}
}

static void
auth_sms(struct http_req *req)
{
	struct json_field_err err;
	const char *purpose;
	char phone[12];
	json_t *body;

	if (http_read_json(req, &body) != 0)
		return;
	struct acct *st = acct_new(req, body);
	if (read_phone(req, body, phone) != 0)
		return;
	if (json_field_enum(body, "purpose", JSON_FIELD_REQUIRED, sms_purposes,
	        &purpose, &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	(void)st;
	/* Always 202 for a well-formed request, registered phone or not, so
	 * the answer tells nobody which phones have accounts. */
	sms_send(req, phone, purpose, sms_on_sent);
}

/* ---- POST /api/v1/auth/register ---------------------------------------- */

static void register_on_hashed(void *arg);
static void register_on_inserted(void *arg, const struct db_result *res);

static void
hash_password(void *arg)
{
	struct acct *st = arg;

	st->password_hash = crypto_password_hash(st->password);
}

static void
on_code_for_password(struct http_req *req, enum sms_result r)
{
	struct acct *st = req->data;

	if (r != SMS_OK) {
		auth_reply_sms_refused(req, r);
		return;
	}
	work_submit(hash_password, st->after_hash, st);
}

/* Reads {phone, sms_code, password}, checks the code for purpose, hashes
 * the new password on a worker, then continues with next(st) on the loop.
 * Answers every refusal itself. */
static void
with_code_and_new_password(struct http_req *req, const char *purpose,
    work_fn next)
{
	const char *code;
	json_t *body;

	if (http_read_json(req, &body) != 0)
		return;
	struct acct *st = acct_new(req, body);
	if (read_phone(req, body, st->phone) != 0 ||
	    auth_field(req, body, "sms_code", 16, &code) != 0 ||
	    auth_field(req, body, "password", 128, &st->password) != 0)
		return;
	if (!password_ok(st->password)) {
		http_reply_error(req, 422, "PASSWORD_WEAK", "password",
		    "密码须为 8 至 64 位，且同时包含字母和数字");
		return;
	}
	st->after_hash = next;
	sms_check(req, st->phone, purpose, code, on_code_for_password);
}

static void
auth_register(struct http_req *req)
{
	with_code_and_new_password(req, "register", register_on_hashed);
}

static void
register_on_hashed(void *arg)
{
	struct acct *st = arg;
	struct db_batch *b = db_batch_new();

	uuid_v4(st->id);
	store_account_insert(b, st->id, st->phone, st->password_hash);
	json_t *ev =
	    json_pack("{s:s, s:s}", "account_id", st->id, "phone", st->phone);
	bus_outbox_add(b, "auth.account.registered", st->id, ev);
	json_decref(ev);
	db_batch_run(auth.svc.db, b, register_on_inserted, st);
}

static void
register_on_inserted(void *arg, const struct db_result *res)
{
	struct acct *st = arg;
	struct http_req *req = st->req;

	if (res->status == DB_CONFLICT) {
		http_reply_error(req, 409, "PHONE_TAKEN", "phone",
		    "该手机号已注册");
		return;
	}
	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	st->session_data =
	    json_pack("{s:s, s:s}", "account_id", st->id, "phone", st->phone);
	start_session(st, 201,
	    json_pack("{s:o}", "account", account_json(st->id, st->phone)));
}

/* ---- POST /api/v1/auth/login ------------------------------------------- */

static void login_on_account(void *arg, const struct db_result *res);
static void login_verify(void *arg);
static void login_on_verified(void *arg);
static void login_on_failure_counted(void *arg, const struct db_result *res);
static void login_on_code(struct http_req *req, enum sms_result r);
static void login_on_phone(void *arg, const struct db_result *res);
static void login_on_view(void *arg, const struct db_result *res);

/* A hash to verify against when the phone is unknown, so that the answer
 * takes as long as for a wrong password. Made once, on a worker. */
static char *login_dummy_hash;

static void
auth_login(struct http_req *req)
{
	const char *code = NULL;
	struct json_field_err err;
	json_t *body;

	if (http_read_json(req, &body) != 0)
		return;
	struct acct *st = acct_new(req, body);
	if (read_phone(req, body, st->phone) != 0)
		return;
	if (json_field_str(body, "password", JSON_FIELD_OPTIONAL, 128,
	        &st->password, &err) != 0 ||
	    json_field_str(body, "sms_code", JSON_FIELD_OPTIONAL, 16, &code,
	        &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	if ((st->password == NULL) == (code == NULL)) {
		http_reply_error(req, 422, "FIELD_REQUIRED", "password",
		    "请输入密码或短信验证码（二选一）");
		return;
	}
	if (code != NULL) {
		sms_check(req, st->phone, "login", code, login_on_code);
		return;
	}
	const char *p[] = {st->phone};
	db_query(auth.svc.db, store_account_by_phone_sql, 1, p,
	    login_on_account, st);
}

static void
reply_bad_credentials(struct http_req *req)
{
	http_reply_error(req, 401, "BAD_CREDENTIALS", NULL, "手机号或密码错误");
}

static void
reply_locked(struct http_req *req, const char *seconds)
{
	http_add_header(req, "Retry-After",
	    seconds && *seconds ? seconds : "60");
	http_reply_error(req, 423, "ACCOUNT_LOCKED", NULL,
	    "登录失败次数过多，账号已临时锁定，请稍后再试");
}

static void
login_on_account(void *arg, const struct db_result *res)
{
	struct acct *st = arg;
	struct http_req *req = st->req;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) == 1) {
		if (db_bool(res, 0, 0, 4)) {
			reply_locked(req, db_value(res, 0, 0, 5));
			return;
		}
		snprintf(st->id, sizeof(st->id), "%s", db_value(res, 0, 0, 0));
		if (db_value(res, 0, 0, 2) != NULL)
			st->password_hash = xstrdup(db_value(res, 0, 0, 2));
	}
	work_submit(login_verify, login_on_verified, st);
}

static void
login_verify(void *arg)
{
	struct acct *st = arg;

	if (st->password_hash == NULL) {
		/* Unknown phone or no password set: spend the same time. */
		crypto_password_verify(st->password, login_dummy_hash);
		st->password_ok = 0;
		return;
	}
	st->password_ok =
	    crypto_password_verify(st->password, st->password_hash) == 0;
}

static void
login_on_verified(void *arg)
{
	struct acct *st = arg;
	struct db_batch *b = db_batch_new();

	if (st->id[0] == '\0') {
		db_batch_free(b);
		reply_bad_credentials(st->req);
		return;
	}
	if (!st->password_ok) {
		store_login_failed(b, st->id, auth.cfg.login_max_failures,
		    auth.cfg.lockout_seconds);
		db_batch_run(auth.svc.db, b, login_on_failure_counted, st);
		return;
	}
	store_login_succeeded(b, st->id);
	const char *p[] = {st->id};
	db_batch_add(b, store_session_view_sql, 1, p);
	db_batch_run(auth.svc.db, b, login_on_view, st);
}

static void
login_on_failure_counted(void *arg, const struct db_result *res)
{
	struct acct *st = arg;
	if (res->status == DB_OK && db_bool(res, 0, 0, 0)) {
		char secs[24];
		snprintf(secs, sizeof(secs), "%ld", auth.cfg.lockout_seconds);
		log_info(st->req->id, "msg=account_locked account=%s", st->id);
		reply_locked(st->req, secs);
		return;
	}
	reply_bad_credentials(st->req);
}

static void
login_on_code(struct http_req *req, enum sms_result r)
{
	struct acct *st = req->data;

	if (r == SMS_INVALID) {
		/* Login answers one code for every failure (API.md). */
		http_reply_error(req, 401, "BAD_CREDENTIALS", "sms_code",
		    "验证码错误或已失效");
		return;
	}
	if (r != SMS_OK) {
		auth_reply_sms_refused(req, r);
		return;
	}
	const char *p[] = {st->phone};
	db_query(auth.svc.db, store_account_by_phone_sql, 1, p, login_on_phone,
	    st);
}

static void
login_on_phone(void *arg, const struct db_result *res)
{
	struct acct *st = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(st->req, 401, "BAD_CREDENTIALS", "phone",
		    "该手机号尚未注册");
		return;
	}
	if (db_bool(res, 0, 0, 4)) {
		reply_locked(st->req, db_value(res, 0, 0, 5));
		return;
	}
	snprintf(st->id, sizeof(st->id), "%s", db_value(res, 0, 0, 0));
	const char *p[] = {st->id};
	db_query(auth.svc.db, store_session_view_sql, 1, p, login_on_view, st);
}

/* The session view is the last statement of the batch. */
static void
login_on_view(void *arg, const struct db_result *res)
{
	struct acct *st = arg;
	int last = res->nstmts - 1;

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	st->session_data = auth_session_from_view(res, last);
	start_session(st, 200,
	    json_pack("{s:o}", "account",
	        account_json(db_value(res, last, 0, 0),
	            db_value(res, last, 0, 1))));
}

/* ---- POST /api/v1/auth/password/reset ---------------------------------- */

static void reset_on_hashed(void *arg);
static void reset_on_updated(void *arg, const struct db_result *res);
static void reset_on_sessions_gone(void *arg, int status);

/* A forgotten password: the SMS code proves the phone; the new password
 * replaces the old, lifts a lockout, and ends every session. */
static void
auth_password_reset(struct http_req *req)
{
	with_code_and_new_password(req, "reset", reset_on_hashed);
}

static void
reset_on_hashed(void *arg)
{
	struct acct *st = arg;
	struct db_batch *b = db_batch_new();

	store_password_reset(b, st->phone, st->password_hash);
	db_batch_run(auth.svc.db, b, reset_on_updated, st);
}

static void
reset_on_updated(void *arg, const struct db_result *res)
{
	struct acct *st = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(st->req, 401, "BAD_CREDENTIALS", "phone",
		    "该手机号尚未注册");
		return;
	}
	snprintf(st->id, sizeof(st->id), "%s", db_value(res, 0, 0, 0));
	log_info(st->req->id, "msg=password_reset account=%s", st->id);
	session_delete_all(st->id, reset_on_sessions_gone, st);
}

static void
reset_on_sessions_gone(void *arg, int status)
{
	struct acct *st = arg;

	/* The password is changed either way; sessions also expire by TTL. */
	if (status != 0)
		log_warn(st->req->id, "msg=sessions_not_cleared account=%s",
		    st->id);
	http_reply_empty(st->req, 204);
}

/* ---- GET /api/v1/auth/me ----------------------------------------------- */

static void me_on_loaded(void *arg, const struct db_result *res);
static void me_on_cached(void *arg, const char *body, size_t len,
    const char *version);

/* An identity row of store_me: with its status and source, and for a
 * decided claim the 审批时间 (decided_at) and opinion. */
static json_t *
identity_json(const struct db_result *res, int stmt, int row)
{
	json_t *o = json_pack("{s:s, s:s, s:s?, s:s, s:s}", "id",
	    db_value(res, stmt, row, 0), "type", db_value(res, stmt, row, 1),
	    "created_at", db_value(res, stmt, row, 5), "status",
	    db_value(res, stmt, row, 6), "source", db_value(res, stmt, row, 7));

	if (db_value(res, stmt, row, 8) != NULL) {
		json_object_set_new(o, "decided_at",
		    json_string(db_value(res, stmt, row, 8)));
		json_object_set_new(o, "opinion",
		    db_value(res, stmt, row, 9)
		        ? json_string(db_value(res, stmt, row, 9))
		        : json_null());
	}

	if (db_value(res, stmt, row, 3) != NULL) {
		json_object_set_new(o, "enterprise_name",
		    json_string(db_value(res, stmt, row, 2)));
		json_object_set_new(o, "uscc",
		    json_string(db_value(res, stmt, row, 3)));
		json_object_set_new(o, "role",
		    json_string(db_value(res, stmt, row, 4)));
	}
	return o;
}

/* Builds the "me" answer from a store_me() batch starting at stmt. */
static json_t *
me_json(const struct db_result *res, int stmt)
{
	json_t *identities = json_array(), *current = json_null(),
	       *lock = json_null();
	const char *current_id = db_value(res, stmt, 0, 7);

	for (int i = 0; i < db_rows(res, stmt + 1); i++) {
		json_t *id = identity_json(res, stmt + 1, i);
		if (current_id != NULL &&
		    strcmp(current_id, db_value(res, stmt + 1, i, 0)) == 0) {
			json_decref(current);
			current = json_incref(id);
		}
		json_array_append_new(identities, id);
	}
	if (db_value(res, stmt, 0, 2) != NULL)
		lock = json_pack("{s:s, s:s, s:s, s:s*, s:s*}", "id",
		    db_value(res, stmt, 0, 2), "kind",
		    db_value(res, stmt, 0, 3), "holder",
		    db_value(res, stmt, 0, 4), "enterprise_name",
		    db_value(res, stmt, 0, 5), "uscc",
		    db_value(res, stmt, 0, 6));
	return json_pack("{s:o, s:o, s:o, s:o}", "account",
	    account_json(db_value(res, stmt, 0, 0), db_value(res, stmt, 0, 1)),
	    "lock", lock, "identities", identities, "current_identity",
	    current);
}

static void
me_load(struct http_req *req)
{
	if (req->session->account_id == NULL) {
		json_t *d = req->session->data;
		http_reply_json(req, 200,
		    json_pack("{s:{s:O, s:O, s:O}}", "staff", "id",
		        json_object_get(d, "staff_id"), "username",
		        json_object_get(d, "username"), "roles",
		        json_object_get(d, "roles")));
		return;
	}
	auth_me_cached(req->session->account_id, me_on_cached, req);
}

/* The version read before the load: an answer loaded after a change
 * committed but stored under the version read before its bump is never
 * served (the bump made that version stale). */
static void
me_on_cached(void *arg, const char *body, size_t len, const char *version)
{
	struct http_req *req = arg;
	struct db_batch *b;

	if (body != NULL) {
		http_reply_raw(req, 200, "application/json; charset=utf-8",
		    body, len);
		return;
	}
	if (version != NULL)
		http_req_attach(req, xstrdup(version), free);
	b = db_batch_new();
	store_me(b, req->session->account_id);
	db_batch_run(auth.svc.db, b, me_on_loaded, req);
}

static void
me_on_loaded(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;
	const char *version = req->data;
	json_t *me;
	char *text;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 401, "UNAUTHENTICATED", NULL,
		    "账号不存在，请重新登录");
		return;
	}
	me = me_json(res, 0);
	text = json_dumps(me, JSON_COMPACT);
	json_decref(me);
	if (version != NULL)
		auth_me_cache_put(req->session->account_id, version, text);
	http_reply_raw(req, 200, "application/json; charset=utf-8", text,
	    strlen(text));
	free(text);
}

static void
auth_me(struct http_req *req)
{
	session_require(req, me_load);
}

/* ---- POST /api/v1/auth/logout, /logout/all ----------------------------- */

static void
logout_done(void *arg, int status)
{
	struct http_req *req = arg;

	if (status != 0) {
		http_reply_unavailable(req, "redis");
		return;
	}
	http_reply_empty(req, 204);
}

static void
logout_one(struct http_req *req)
{
	session_delete(req->session->token_hash, logout_done, req);
}

static void
logout_all(struct http_req *req)
{
	const char *owner = req->session->account_id ? req->session->account_id
	                                             : req->session->staff_id;
	session_delete_all(owner, logout_done, req);
}

static void
auth_logout(struct http_req *req)
{
	session_require(req, logout_one);
}

static void
auth_logout_all(struct http_req *req)
{
	session_require(req, logout_all);
}

/* ---- identities -------------------------------------------------------- */

static const char *const identity_types[] = {"enterprise", "personal", NULL};
static const char *const identity_roles[] = {"admin", "project_lead", "agent",
    "cost_engineer", NULL};

struct ident {
	struct http_req *req;
	json_t *body;
	char id[37];
	char uscc[19];
	const char *type, *name, *role;
};

static void
ident_free(void *p)
{
	struct ident *st = p;

	json_decref(st->body);
	free(st);
}

static void identity_on_added(void *arg, const struct db_result *res);

static void
identity_add(struct http_req *req)
{
	struct json_field_err err;
	json_t *body;

	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "工作人员账号不能添加身份");
		return;
	}
	if (http_read_json(req, &body) != 0)
		return;
	struct ident *st = xcalloc(1, sizeof(*st));
	st->req = req;
	st->body = body;
	http_req_attach(req, st, ident_free);
	if (json_field_enum(body, "type", JSON_FIELD_REQUIRED, identity_types,
	        &st->type, &err) != 0) {
		http_reply_field_error(req, &err);
		return;
	}
	if (strcmp(st->type, "enterprise") == 0) {
		const char *uscc;
		if (auth_field(req, body, "enterprise_name", 200, &st->name) !=
		        0 ||
		    auth_field(req, body, "uscc", 32, &uscc) != 0)
			return;
		if (validate_uscc(uscc, st->uscc) != 0) {
			http_reply_error(req, 422, "USCC_INVALID", "uscc",
			    "统一社会信用代码不正确");
			return;
		}
		if (json_field_enum(body, "role", JSON_FIELD_REQUIRED,
		        identity_roles, &st->role, &err) != 0) {
			http_reply_field_error(req, &err);
			return;
		}
	}
	int enterprise = strcmp(st->type, "enterprise") == 0;
	if (enterprise && strcmp(st->role, "admin") == 0) {
		http_reply_error(req, 403, "ADMIN_PROOF_REQUIRED", "role",
		    "管理员身份须凭证明取得：绑定载有本单位统一社会信用代码的"
		    "单位主锁，或提交管理员申请（授权委托书）经审核通过");
		return;
	}
	uuid_v4(st->id);
	struct db_batch *b = db_batch_new();
	json_t *after;
	if (enterprise) {
		/* A member claim without a lock is an application the
		 * enterprise's administrator decides (人员管理). */
		store_identity_insert(b, st->id, req->session->account_id,
		    st->type, st->name, st->uscc, st->role, "pending",
		    "approval");
		after = json_pack("{s:s, s:s, s:s, s:s}", "role", st->role,
		    "enterprise_name", st->name, "status", "pending", "source",
		    "approval");
		const struct audit_entry e = {"identity.applied", "identity",
		    st->id, st->uscc, NULL, after};
		audit_add(b, req, &e);
	} else {
		store_identity_insert(b, st->id, req->session->account_id,
		    st->type, NULL, NULL, NULL, "active", "self");
		store_identity_make_current(b, req->session->account_id, st->id,
		    1);
		json_t *ev = json_pack("{s:s, s:s, s:s, s:s}", "identity_id",
		    st->id, "account_id", req->session->account_id, "type",
		    st->type, "source", "self");
		bus_outbox_add(b, "auth.identity.added", st->id, ev);
		json_decref(ev);
		after = json_pack("{s:s, s:s, s:s}", "type", "personal",
		    "status", "active", "source", "self");
		const struct audit_entry e = {"identity.granted", "identity",
		    st->id, NULL, NULL, after};
		audit_add(b, req, &e);
	}
	json_decref(after);
	db_batch_run(auth.svc.db, b, identity_on_added, st);
}

static void
identity_on_added(void *arg, const struct db_result *res)
{
	struct ident *st = arg;
	struct http_req *req = st->req;

	if (res->status == DB_CONFLICT) {
		http_reply_error(req, 409, "IDENTITY_EXISTS", NULL,
		    "该身份已存在或正在审批中");
		return;
	}
	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	auth_me_changed(req->session->account_id);
	int enterprise = strcmp(st->type, "enterprise") == 0;
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "id", st->id, "type",
	    st->type, "status", enterprise ? "pending" : "active", "source",
	    enterprise ? "approval" : "self");
	if (enterprise) {
		json_object_set_new(o, "enterprise_name",
		    json_string(st->name));
		json_object_set_new(o, "uscc", json_string(st->uscc));
		json_object_set_new(o, "role", json_string(st->role));
	}
	/* 202: a member claim is pending until the administrator decides. */
	http_reply_json(req, enterprise ? 202 : 201, o);
}

static void
auth_identity_add(struct http_req *req)
{
	session_require(req, identity_add);
}

static void switch_on_done(void *arg, const struct db_result *res);
static void switch_on_session(void *arg, int status);

static void
identity_switch(struct http_req *req)
{
	struct db_batch *b;

	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "工作人员账号没有身份");
		return;
	}
	if (!uuid_valid(req->params[0])) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "身份不存在");
		return;
	}
	b = db_batch_new();
	store_identity_status(b, req->session->account_id, req->params[0]);
	store_identity_make_current(b, req->session->account_id, req->params[0],
	    0);
	const char *p[] = {req->session->account_id};
	db_batch_add(b, store_session_view_sql, 1, p);
	store_me(b, req->session->account_id);
	db_batch_run(auth.svc.db, b, switch_on_done, req);
}

static void
switch_on_done(void *arg, const struct db_result *res)
{
	struct http_req *req = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(req, res);
		return;
	}
	auth_me_changed(req->session->account_id);
	if (db_rows(res, 0) != 1) {
		http_reply_error(req, 404, "NOT_FOUND", NULL, "身份不存在");
		return;
	}
	if (db_rows(res, 1) != 1) {
		/* Only an active identity can be current: a claim pending or
		 * rejected, or a removed identity, grants nothing. */
		http_reply_error(req, 403, "IDENTITY_NOT_ACTIVE", NULL,
		    strcmp(db_value(res, 0, 0, 0), "pending") == 0
		        ? "该身份正在等待单位管理员审批，暂不可使用"
		        : "该身份未生效或已被移除");
		return;
	}
	json_t *data = auth_session_from_view(res, 2);
	json_t *me = me_json(res, 3);
	http_req_attach(req, me, (void (*)(void *))json_decref);
	session_update(req->session->token_hash, data, switch_on_session, req);
	json_decref(data);
}

static void
switch_on_session(void *arg, int status)
{
	struct http_req *req = arg;

	if (status != 0) {
		http_reply_unavailable(req, "redis");
		return;
	}
	http_reply_json(req, 200, json_incref(req->data));
}

static void
auth_identity_switch(struct http_req *req)
{
	session_require(req, identity_switch);
}

static void
identities_list(struct http_req *req)
{
	if (req->session->account_id == NULL) {
		http_reply_error(req, 403, "FORBIDDEN", NULL,
		    "工作人员账号没有身份");
		return;
	}
	struct db_batch *b = db_batch_new();
	store_me(b, req->session->account_id);
	db_batch_run(auth.svc.db, b, me_on_loaded, req);
}

static void
auth_identities(struct http_req *req)
{
	session_require(req, identities_list);
}

/* ---- POST /api/v1/auth/staff/login ------------------------------------- */

static void staff_on_loaded(void *arg, const struct db_result *res);
static void staff_on_verified(void *arg);
static void staff_on_failure_counted(void *arg, const struct db_result *res);

static void
auth_staff_login(struct http_req *req)
{
	const char *username;
	json_t *body;

	if (http_read_json(req, &body) != 0)
		return;
	struct acct *st = acct_new(req, body);
	if (auth_field(req, body, "username", 64, &username) != 0 ||
	    auth_field(req, body, "password", 128, &st->password) != 0)
		return;
	const char *p[] = {username};
	db_query(auth.svc.db, store_staff_by_username_sql, 1, p,
	    staff_on_loaded, st);
}

static void
staff_on_loaded(void *arg, const struct db_result *res)
{
	struct acct *st = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	if (db_rows(res, 0) == 1) {
		if (db_bool(res, 0, 0, 4)) {
			reply_locked(st->req, NULL);
			return;
		}
		snprintf(st->id, sizeof(st->id), "%s", db_value(res, 0, 0, 0));
		st->password_hash = xstrdup(db_value(res, 0, 0, 2));
		st->session_data = json_pack("{s:s, s:s, s:o}", "staff_id",
		    st->id, "username", db_value(res, 0, 0, 1), "roles",
		    json_loads(db_value(res, 0, 0, 3), 0, NULL));
	}
	work_submit(login_verify, staff_on_verified, st);
}

static void staff_on_audited(void *arg, const struct db_result *res);

/* A staff login is audited (issue 12) before the session exists: no
 * session without its entry. */
static void
staff_audit_login(struct acct *st)
{
	struct db_batch *b = db_batch_new();
	json_t *after = json_pack("{s:O}", "roles",
	    json_object_get(st->session_data, "roles"));
	const struct audit_entry e = {"staff.login", "staff", st->id, NULL,
	    NULL, after};

	auth_audit_add_as(b, st->req, "staff", st->id, &e);
	json_decref(after);
	db_batch_run(auth.svc.db, b, staff_on_audited, st);
}

static void
staff_on_audited(void *arg, const struct db_result *res)
{
	struct acct *st = arg;

	if (res->status != DB_OK) {
		http_reply_db_error(st->req, res);
		return;
	}
	start_session(st, 200,
	    json_pack("{s:O}", "roles",
	        json_object_get(st->session_data, "roles")));
}

/* A failed staff login is audited ("staff.login_failed", issue 12) without
 * letting an attack flood the chain:
 * - a wrong password for a staff account: every one, in the batch that
 *   counts it; bounded by the lockout (CAPLAT_LOGIN_MAX_FAILURES wrong
 *   passwords lock the account for CAPLAT_LOCKOUT_SECONDS, and a locked
 *   account is refused before any check or entry);
 * - an unknown username: the first per client address per
 *   STAFF_FAILED_WINDOW seconds, and at most STAFF_FAILED_PER_WINDOW of all
 *   addresses together (Redis, store_staff_failed_lua); the others only
 *   answer 401. The username itself is never recorded (it may be a
 *   mistyped password). The actor is the system with the client's address
 *   and request id: nobody proved who tried. */
#define STAFF_FAILED_WINDOW "60"
#define STAFF_FAILED_PER_WINDOW "60"

static void
staff_failed_entry(struct db_batch *b, struct acct *st, const char *reason)
{
	json_t *after = json_pack("{s:s}", "reason", reason);
	const struct audit_entry e = {"staff.login_failed", "staff",
	    st->id[0] ? st->id : NULL, NULL, NULL, after};

	audit_add(b, st->req, &e);
	json_decref(after);
}

static void
staff_on_unknown_audited(void *arg, const struct db_result *res)
{
	struct acct *st = arg;

	http_reply_error(st->req, 401, "BAD_CREDENTIALS", NULL,
	    "用户名或密码错误");
}

static void
staff_on_unknown_limited(void *arg, const struct kv_reply *reply)
{
	struct acct *st = arg;

	if (reply == NULL || kv_reply_type(reply) != KV_INT ||
	    kv_reply_int(reply) != 1) {
		http_reply_error(st->req, 401, "BAD_CREDENTIALS", NULL,
		    "用户名或密码错误");
		return;
	}
	struct db_batch *b = db_batch_new();
	staff_failed_entry(b, st, "unknown_username");
	db_batch_run(auth.svc.db, b, staff_on_unknown_audited, st);
}

static void
staff_on_verified(void *arg)
{
	struct acct *st = arg;

	if (st->id[0] == '\0') {
		char ip_key[96], all_key[96];
		const char *argv[] = {"EVAL", store_staff_failed_lua, "2",
		    ip_key, all_key, STAFF_FAILED_WINDOW,
		    STAFF_FAILED_PER_WINDOW};

		store_staff_failed_keys(ip_key, all_key, sizeof(ip_key),
		    st->req->peer[0] ? st->req->peer : "-");
		kv_command(auth.svc.kv, staff_on_unknown_limited, st,
		    (int)ARRAY_LEN(argv), argv, NULL);
		return;
	}
	if (!st->password_ok) {
		struct db_batch *b = db_batch_new();
		store_staff_login_failed(b, st->id, auth.cfg.login_max_failures,
		    auth.cfg.lockout_seconds);
		staff_failed_entry(b, st, "bad_password");
		db_batch_run(auth.svc.db, b, staff_on_failure_counted, st);
		return;
	}
	staff_audit_login(st);
}

static void
staff_on_failure_counted(void *arg, const struct db_result *res)
{
	struct acct *st = arg;

	http_reply_error(st->req, 401, "BAD_CREDENTIALS", NULL,
	    "用户名或密码错误");
}

/* ---- the route table --------------------------------------------------- */

const struct http_route auth_routes[] = {
    {"POST", "/api/v1/auth/ca/challenge", auth_ca_challenge, 0},
    {"POST", "/api/v1/auth/ca/login", auth_ca_login, 0},
    {"POST", "/api/v1/auth/ca/bind", auth_ca_bind, 0},
    {"POST", "/api/v1/auth/sms", auth_sms, 0},
    {"POST", "/api/v1/auth/register", auth_register, 0},
    {"POST", "/api/v1/auth/login", auth_login, 0},
    {"POST", "/api/v1/auth/password/reset", auth_password_reset, 0},
    {"POST", "/api/v1/auth/logout", auth_logout, 0},
    {"POST", "/api/v1/auth/logout/all", auth_logout_all, 0},
    {"GET", "/api/v1/auth/me", auth_me, 0},
    {"GET", "/api/v1/auth/identities", auth_identities, 0},
    {"POST", "/api/v1/auth/identities", auth_identity_add, 0},
    {"POST", "/api/v1/auth/identities/{id}/switch", auth_identity_switch, 0},
    {"POST", "/api/v1/auth/staff/login", auth_staff_login, 0},
    {"GET", "/api/v1/auth/members", auth_members_list, 0},
    {"DELETE", "/api/v1/auth/members/{id}", auth_member_remove, 0},
    {"GET", "/api/v1/auth/member-applications", auth_member_applications, 0},
    {"POST", "/api/v1/auth/member-applications/{id}/approve",
        auth_member_approve, 0},
    {"POST", "/api/v1/auth/member-applications/{id}/reject", auth_member_reject,
        0},
    {"POST", "/api/v1/auth/admin/handover", auth_admin_handover, 0},
    {"GET", "/api/v1/audit", auth_audit_list, 0},
    {"GET", "/api/v1/audit/export", auth_audit_export, 0},
    {"GET", "/api/v1/messages", auth_messages_list, 0},
    {"POST", "/api/v1/messages/read-all", auth_messages_read_all, 0},
    {"POST", "/api/v1/messages/{id}/read", auth_message_read, 0},
    {"GET", "/api/v1/sms/dead-letters", auth_sms_dead_list, 0},
    {"POST", "/api/v1/sms/dead-letters/{id}/resend", auth_sms_dead_resend, 0},
};
const size_t auth_nroutes = ARRAY_LEN(auth_routes);

void
auth_handlers_init(void)
{
	login_dummy_hash = crypto_password_hash("caplat-dummy-password-0");
}
