/* events — what auth consumes and emits on the bus.
 *
 * Consumes: caplat.issuance.cert.revoked (kept to refuse the certificate at
 *   CA login), caplat.issuance.cert.renewed (a renewed certificate stays
 *   on its lock) and caplat.enterprise.admin_application.approved (the
 *   applicant becomes administrator unless a lock-proven one exists).
 * Consumes caplat.issuance.cert.cancelled (注销, issue 19): the key is
 *   unbound and the enterprise identity it gave removed (lock_cancel(),
 *   040_cert_cancelled.sql); the account's sessions lose that identity.
 * Consumes caplat.*.audit.recorded (every service's audit entries,
 *   common/audit.h): appends each to the one audit chain (010_audit.sql);
 *   and caplat.*.audit.batch (the same entries, held in the producer's
 *   outbox and sent many per event: common 050_audit_batch.sql), appended
 *   in one call (auth 050_audit_batch.sql).
 * Consumes the notices (issue 17, notices.c and deliver.c):
 *   caplat.*.notice.requested (any service asks for a notice),
 *   caplat.enterprise.record.approved / .rejected (review.decided),
 *   caplat.enterprise.admin_application.approved / .rejected
 *   (admin_application.decided), caplat.payments.payment.succeeded and
 *   caplat.payments.invoice.* (issued, posted: to the account that placed
 *   the order), caplat.orders.order.created (who placed an order) and
 *   caplat.issuance.cert.registered (which certificate a cert_id is, for
 *   recipients given by cert_id), and caplat.issuance.certs.imported (the
 *   same for the up to 500 certificates of an import's batch).
 * Emits auth.notice.requested (member_application.decided, members.c).
 * Emits (through the outbox, in the same transaction as the change):
 *   auth.account.registered and auth.identity.added (handlers.c, and
 *   bind_lock() for a new account), auth.lock.bound (bind_lock(),
 *   deploy/sql/auth/011_identity_status.sql), auth.identity.removed and the
 *   auth.audit.recorded entries (011's functions, handlers.c, members.c).
 *
 * Handlers run on the bus's consumer threads inside the inbox transaction;
 * they touch only their transaction. */
#include "auth.h"

#include "audit.h"
#include "bus.h"
#include "fault.h"
#include "log.h"
#include "util.h"
#include "validate.h"
#include "work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A crash point for the tests (CAPLAT_FAULT): after the approval's grant
 * and before its batch commits (nothing may be told of it then). */
enum events_fault {
	EVENTS_CRASH_AFTER_GRANT = 1,
};

static const char *const events_fault_names[] = {
    "auth_crash_after_grant",
    NULL,
};

static struct fault events_fault;

static int
on_cert_revoked(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	const char *issuer =
	    json_string_value(json_object_get(ev->data, "issuer"));
	const char *serial =
	    json_string_value(json_object_get(ev->data, "serial"));
	const char *reason =
	    json_string_value(json_object_get(ev->data, "reason"));
	const char *at =
	    json_string_value(json_object_get(ev->data, "revoked_at"));

	if (issuer == NULL || serial == NULL) {
		log_error(NULL,
		    "msg=bad_event type=%s id=%s missing=issuer/serial",
		    ev->type, ev->id);
		return -1; /* dead-lettered after max_deliver: visible, not lost */
	}
	const char *p[] = {issuer, serial, reason, at ? at : ev->time};
	return bus_tx_exec(tx, store_revoked_insert_sql, 4, p) < 0 ? -1 : 0;
}

/* A renewed certificate joins the lock of the certificate it replaces. The
 * holder may have tried the new certificate before this event arrived: that
 * login saw an unknown certificate and gave it a fresh, unbound lock. Such a
 * lock is folded into the lineage's lock here (a bound one is left alone). */
static int
on_cert_renewed(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data;
	const char *issuer = json_string_value(json_object_get(d, "issuer"));
	const char *serial = json_string_value(json_object_get(d, "serial"));
	const char *prev_issuer =
	    json_string_value(json_object_get(d, "previous_issuer"));
	const char *prev_serial =
	    json_string_value(json_object_get(d, "previous_serial"));
	const char *not_after =
	    json_string_value(json_object_get(d, "not_after"));
	struct bus_rows *rows = NULL;
	char *stray = NULL;

	if (issuer == NULL || serial == NULL || prev_serial == NULL ||
	    not_after == NULL) {
		log_error(NULL, "msg=bad_event type=%s id=%s", ev->type,
		    ev->id);
		return -1;
	}
	const char *q[] = {issuer, serial};
	if (bus_tx_query(tx, store_unbound_lock_of_cert_sql, 2, q, &rows) != 0)
		return -1;
	if (bus_rows_count(rows) == 1)
		stray = xstrdup(bus_rows_value(rows, 0, 0));
	bus_rows_free(rows);
	const char *p[] = {issuer, serial, prev_issuer ? prev_issuer : issuer,
	    prev_serial, not_after};
	long n = bus_tx_exec(tx, store_lock_cert_renewed_sql, 5, p);
	if (n > 0 && stray != NULL) {
		const char *sp[] = {stray};
		n = bus_tx_exec(tx, store_stray_lock_delete_sql, 1, sp);
		if (n > 0)
			log_info(NULL,
			    "msg=stray_lock_folded lock=%s serial=%s", stray,
			    serial);
	}
	free(stray);
	return n < 0 ? -1 : 0;
}

/* What a consumer leaves for after its transaction's commit (common/bus's
 * after-commit actions): never from a batch that rolls back, so a crash
 * before the commit or a redelivery never sends an SMS twice or drops a
 * session for a change that did not happen. */

/* An identity that ended (replaced administrator, cancelled lock) leaves
 * the account's open sessions; Redis belongs to the loop, so the action
 * hands this over through the work queue. */
struct replaced {
	char account[37], identity[37];
};

static void
replaced_nothing(void *arg)
{
	(void)arg;
}

static void
replaced_on_loop(void *arg)
{
	struct replaced *r = arg;

	auth_sessions_drop_identity(r->account, r->identity, NULL, NULL, NULL);
	free(r);
}

static void
replaced_after_commit(void *arg, int committed)
{
	if (committed)
		work_submit(replaced_nothing, replaced_on_loop, arg);
	else
		free(arg);
}

static void
drop_identity_after_commit(struct bus_tx *tx, const char *account,
    const char *identity)
{
	struct replaced *r = xcalloc(1, sizeof(*r));

	snprintf(r->account, sizeof(r->account), "%s", account);
	snprintf(r->identity, sizeof(r->identity), "%s", identity);
	bus_tx_after_commit(tx, replaced_after_commit, r);
}

/* An SMS (sms_notify: the provider's queue, any thread) sent once the
 * change it tells of is committed. */
struct told {
	char phone[16];
	char *text;
};

static void
told_after_commit(void *arg, int committed)
{
	struct told *t = arg;

	if (committed)
		sms_notify(t->phone, t->text);
	free(t->text);
	free(t);
}

static void
sms_after_commit(struct bus_tx *tx, const char *phone, const char *text)
{
	struct told *t;

	if (phone == NULL)
		return;
	t = xcalloc(1, sizeof(*t));
	snprintf(t->phone, sizeof(t->phone), "%s", phone);
	t->text = xstrdup(text);
	bus_tx_after_commit(tx, told_after_commit, t);
}

/* A consumer changed what GET /auth/me shows for an account (issue 16):
 * once the handler's transaction committed, the loop bumps the cached
 * answer's version (Redis belongs to the loop). Bumped after the commit,
 * an answer loaded before it is stored under a version the bump made
 * stale, and one loaded after it shows the change. */
struct me_bump {
	char account[37];
};

static void
me_bump_on_loop(void *arg)
{
	struct me_bump *m = arg;

	auth_me_changed(m->account);
	free(m);
}

static void
me_after_commit(void *arg, int committed)
{
	if (committed)
		work_submit(replaced_nothing, me_bump_on_loop, arg);
	else
		free(arg);
}

static void
me_changed_after_commit(struct bus_tx *tx, const char *account)
{
	struct me_bump *m;

	if (account == NULL)
		return;
	m = xcalloc(1, sizeof(*m));
	snprintf(m->account, sizeof(m->account), "%s", account);
	bus_tx_after_commit(tx, me_after_commit, m);
}

/* enterprise.admin_application.approved: {application_id, account_id,
 * uscc, enterprise_name, decided_at}. Idempotent twice over: the inbox, and
 * the application id kept on the identity. */
static int
on_admin_application_approved(struct bus_tx *tx, const struct bus_event *ev,
    void *arg)
{
	json_t *d = ev->data;
	const char *application =
	    json_string_value(json_object_get(d, "application_id"));
	const char *account =
	    json_string_value(json_object_get(d, "account_id"));
	const char *uscc_in = json_string_value(json_object_get(d, "uscc"));
	const char *name =
	    json_string_value(json_object_get(d, "enterprise_name"));
	struct bus_rows *rows = NULL;
	char uscc[19], identity[37], event_id[37];

	if (application == NULL || account == NULL || uscc_in == NULL ||
	    name == NULL || !uuid_valid(application) || !uuid_valid(account) ||
	    validate_uscc(uscc_in, uscc) != 0) {
		log_error(NULL, "msg=bad_event type=%s id=%s", ev->type,
		    ev->id);
		return -1;
	}
	const struct audit_entry base = {"", "", "", NULL, NULL, NULL};
	json_t *audit = audit_event_data(NULL, &base);
	char *audit_text = json_dumps(audit, JSON_COMPACT);
	json_decref(audit);
	uuid_v4(identity);
	uuid_v4(event_id);
	const char *p[] = {application, account, uscc, name, identity, event_id,
	    audit_text};
	int rc = bus_tx_query(tx, store_admin_by_application_sql, 7, p, &rows);
	free(audit_text);
	if (rc != 0 || bus_rows_count(rows) != 1) {
		bus_rows_free(rows);
		return -1;
	}
	const char *outcome = bus_rows_value(rows, 0, 0);
	log_info(NULL,
	    "msg=admin_application outcome=%s application=%s account=%s "
	    "uscc=%s",
	    outcome, application, account, uscc);
	me_changed_after_commit(tx, account);
	if (strcmp(outcome, "granted") == 0) {
		char text[400];
		me_changed_after_commit(tx, bus_rows_value(rows, 0, 3));
		snprintf(text, sizeof(text),
		    "【CA平台】您的管理员申请已通过，您现为 %s 的单位管理员。",
		    name);
		sms_after_commit(tx, bus_rows_value(rows, 0, 2), text);
		if (bus_rows_value(rows, 0, 3) != NULL) {
			snprintf(text, sizeof(text),
			    "【CA平台】%s 的单位管理员已由经审核的管理员申请人取代。",
			    name);
			sms_after_commit(tx, bus_rows_value(rows, 0, 4), text);
			drop_identity_after_commit(tx,
			    bus_rows_value(rows, 0, 3),
			    bus_rows_value(rows, 0, 5));
		}
	}
	bus_rows_free(rows);
	fault_point(&events_fault, EVENTS_CRASH_AFTER_GRANT);
	return 0;
}

/* issuance.cert.cancelled: {cert_id, serial, issuer, account_id, uscc,
 * cancelled_by, cancelled_at}. Idempotent (the inbox; lock_cancel()
 * changes nothing twice). */
static int
on_cert_cancelled(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data;
	const char *issuer = json_string_value(json_object_get(d, "issuer"));
	const char *serial = json_string_value(json_object_get(d, "serial"));
	const char *account =
	    json_string_value(json_object_get(d, "account_id"));
	struct bus_rows *rows = NULL;

	if (issuer == NULL || serial == NULL ||
	    (account != NULL && !uuid_valid(account))) {
		log_error(NULL, "msg=bad_event type=%s id=%s", ev->type,
		    ev->id);
		return -1;
	}
	const struct audit_entry base = {"", "", "", NULL, NULL, NULL};
	json_t *audit = audit_event_data(NULL, &base);
	char *audit_text = json_dumps(audit, JSON_COMPACT);
	json_decref(audit);
	const char *p[] = {issuer, serial,
	    json_string_value(json_object_get(d, "cancelled_at")), account,
	    json_string_value(json_object_get(d, "uscc")), audit_text};
	int rc = bus_tx_query(tx, store_lock_cancel_sql, 6, p, &rows);
	free(audit_text);
	if (rc != 0 || bus_rows_count(rows) != 1) {
		bus_rows_free(rows);
		return -1;
	}
	log_info(NULL, "msg=cert_cancelled serial=%s identity_removed=%s",
	    serial, bus_rows_value(rows, 0, 1) ? "yes" : "no");
	me_changed_after_commit(tx, bus_rows_value(rows, 0, 0));
	if (bus_rows_value(rows, 0, 0) != NULL &&
	    bus_rows_value(rows, 0, 1) != NULL)
		drop_identity_after_commit(tx, bus_rows_value(rows, 0, 0),
		    bus_rows_value(rows, 0, 1));
	bus_rows_free(rows);
	return 0;
}

static const char *
data_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* One audited action of any service (common/audit.h): appended to the one
 * chain (audit_append() serialises, numbers and hashes). The service is the
 * event type's first token, not a claim of the data; the time is the
 * event's, i.e. when the action committed. A replayed event appends
 * nothing (the inbox, and audit_log's unique event_id). */
static int
on_audit_recorded(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data, *actor = json_object_get(d, "actor");
	const char *dot = strchr(ev->type, '.');
	char service[32], *before = NULL, *after = NULL;
	long n;

	if (dot == NULL || (size_t)(dot - ev->type) >= sizeof(service) ||
	    data_str(d, "action") == NULL || data_str(actor, "type") == NULL ||
	    data_str(actor, "id") == NULL) {
		log_error(NULL, "msg=bad_event type=%s id=%s", ev->type,
		    ev->id);
		return -1; /* dead-lettered after max_deliver */
	}
	snprintf(service, sizeof(service), "%.*s", (int)(dot - ev->type),
	    ev->type);
	if (!json_is_null(json_object_get(d, "before")) &&
	    json_object_get(d, "before") != NULL)
		before = json_dumps(json_object_get(d, "before"),
		    JSON_COMPACT | JSON_ENCODE_ANY);
	if (!json_is_null(json_object_get(d, "after")) &&
	    json_object_get(d, "after") != NULL)
		after = json_dumps(json_object_get(d, "after"),
		    JSON_COMPACT | JSON_ENCODE_ANY);
	const char *p[] = {ev->id, service, data_str(d, "action"),
	    data_str(actor, "type"), data_str(actor, "id"),
	    data_str(actor, "identity_id"), data_str(actor, "role"),
	    data_str(actor, "ip"), data_str(actor, "request_id"),
	    data_str(d, "object_type"), data_str(d, "object_id"),
	    data_str(d, "uscc"), before, after, ev->time};
	n = bus_tx_exec(tx, store_audit_append_sql, 15, p);
	free(before);
	free(after);
	return n < 0 ? -1 : 0;
}

/* <svc>.notice.requested: one notice, accepted once per notice_id. */
static int
on_notice_requested(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	return auth_notice_accept(tx, ev->type, ev->time, ev->data);
}

static int
type_ends(const char *type, const char *suffix)
{
	size_t n = strlen(type), m = strlen(suffix);

	return n >= m && strcmp(type + n - m, suffix) == 0;
}

/* Builds the notice of a domain event and accepts it (steals params). */
static int
accept_built(struct bus_tx *tx, const struct bus_event *ev,
    const char *notice_id, const char *kind, json_t *recipient, json_t *params)
{
	json_t *d = json_pack("{s:s, s:s, s:o, s:o}", "notice_id", notice_id,
	    "kind", kind, "recipient", recipient, "params", params);
	int rc = auth_notice_accept(tx, ev->type, ev->time, d);

	json_decref(d);
	return rc;
}

/* enterprise.record.approved / .rejected: the review result to the
 * administrator who submitted (or the enterprise's administrator). */
static int
on_record_decided(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data;
	int approved = type_ends(ev->type, ".approved");
	const char *record = data_str(d, "record_id");
	const char *admin = data_str(d, "admin_account_id");
	const char *uscc = data_str(d, "uscc");
	char notice[128];

	if (!approved && !type_ends(ev->type, ".rejected"))
		return 0; /* submitted: nothing to tell */
	if (record == NULL || (admin == NULL && uscc == NULL))
		return 0;
	snprintf(notice, sizeof(notice), "review:%s:%lld", record,
	    (long long)json_integer_value(json_object_get(d, "seq")));
	json_t *to = admin
	    ? json_pack("{s:s}", "account_id", admin)
	    : json_pack("{s:s, s:s}", "uscc", uscc, "role", "admin");
	json_t *params = json_pack("{s:s, s:s, s:s, s:b}", "record_id", record,
	    "result", approved ? "approved" : "rejected", "name",
	    data_str(d, "name") ? data_str(d, "name") : "", "change",
	    json_is_true(json_object_get(d, "change")));
	if (data_str(d, "opinion") != NULL)
		json_object_set(params, "opinion",
		    json_object_get(d, "opinion"));
	return accept_built(tx, ev, notice, "review.decided", to, params);
}

/* enterprise.admin_application.approved / .rejected: the decision to the
 * applicant. */
static int
on_admin_application_decided(struct bus_tx *tx, const struct bus_event *ev,
    void *arg)
{
	json_t *d = ev->data;
	int approved = type_ends(ev->type, ".approved");
	const char *app = data_str(d, "application_id");
	const char *account = data_str(d, "account_id");
	char notice[128];

	if (!approved && !type_ends(ev->type, ".rejected"))
		return 0;
	if (app == NULL || account == NULL)
		return 0;
	snprintf(notice, sizeof(notice), "admin_application:%s", app);
	json_t *params = json_pack("{s:s, s:s}", "application_id", app,
	    "result", approved ? "approved" : "rejected");
	if (data_str(d, "enterprise_name") != NULL)
		json_object_set(params, "name",
		    json_object_get(d, "enterprise_name"));
	if (data_str(d, "opinion") != NULL)
		json_object_set(params, "opinion",
		    json_object_get(d, "opinion"));
	return accept_built(tx, ev, notice, "admin_application.decided",
	    json_pack("{s:s}", "account_id", account), params);
}

/* issuance.cert.registered: which certificate a cert_id is. */
static int
on_cert_registered(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data;
	const char *cert = data_str(d, "cert_id");
	const char *issuer = data_str(d, "issuer");
	const char *serial = data_str(d, "serial");

	if (cert == NULL || issuer == NULL || serial == NULL ||
	    !uuid_valid(cert))
		return 0;
	const char *p[] = {cert, issuer, serial, data_str(d, "account_id")};
	return bus_tx_exec(tx, store_notice_cert_sql, 4, p) < 0 ? -1 : 0;
}

/* issuance.certs.imported: the same for up to 500 certificates of an
 * import, in one statement. The data are one array per field (issuance
 * 091); an event written before it (in flight during an upgrade) has
 * "certs", each as issuance.cert.registered would carry it. */
static int
on_certs_imported(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *certs = json_object_get(ev->data, "certs");
	int columns = !json_is_array(certs);
	char *text;
	long n;

	if (columns && !json_is_array(json_object_get(ev->data, "cert_id")))
		return 0;
	text = json_dumps(columns ? ev->data : certs, JSON_COMPACT);
	const char *p[] = {text};
	n = bus_tx_exec(tx,
	    columns ? store_notice_certs_imported_cols_sql
	            : store_notice_certs_imported_sql,
	    1, p);
	free(text);
	return n < 0 ? -1 : 0;
}

/* orders.order.created: who placed the order (for the payments' notices). */
static int
on_order_created(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data;
	const char *order = data_str(d, "order_id");
	const char *account = data_str(d, "account_id");
	const char *number = data_str(d, "number");

	if (order == NULL || account == NULL || number == NULL ||
	    !uuid_valid(order) || !uuid_valid(account))
		return 0;
	const char *p[] = {order, account, number};
	return bus_tx_exec(tx, store_notice_order_upsert_sql, 3, p) < 0 ? -1
	                                                                : 0;
}

/* payments.payment.succeeded, payments.invoice.issued / .posted: told to
 * the account that placed the order. An order not known yet (its
 * orders.order.created not consumed) is tried again later; at the last
 * delivery the notice is recorded as undeliverable. */
static int
on_payment_event(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *d = ev->data, *params;
	const char *order = data_str(d, "order_id");
	const char *kind, *id;
	struct bus_rows *rows = NULL;
	char notice[128], account[37], number[64];

	if (strcmp(ev->type, "payments.payment.succeeded") == 0) {
		kind = "payment.succeeded";
		id = data_str(d, "payment_id");
	} else if (strcmp(ev->type, "payments.invoice.issued") == 0) {
		kind = "invoice.issued";
		id = data_str(d, "invoice_id");
	} else if (strcmp(ev->type, "payments.invoice.posted") == 0) {
		kind = "invoice.posted";
		id = data_str(d, "invoice_id");
	} else {
		return 0;
	}
	if (order == NULL || id == NULL || !uuid_valid(order))
		return 0;
	const char *p[] = {order};
	if (bus_tx_query(tx, store_notice_order_sql, 1, p, &rows) != 0)
		return -1;
	if (bus_rows_count(rows) != 1) {
		bus_rows_free(rows);
		if (ev->deliveries < 5)
			return -1; /* the order's creation is on its way */
		account[0] = '\0';
	} else {
		snprintf(account, sizeof(account), "%s",
		    bus_rows_value(rows, 0, 0));
		snprintf(number, sizeof(number), "%s",
		    bus_rows_value(rows, 0, 1));
		bus_rows_free(rows);
	}
	snprintf(notice, sizeof(notice), "%s:%s", kind, id);
	if (account[0] == '\0') {
		const char *u[] = {notice, kind, ev->type, "{}", "no_order"};
		return bus_tx_exec(tx, store_notice_undeliverable_sql, 5, u) < 0
		    ? -1
		    : 0;
	}
	params =
	    json_pack("{s:s, s:s}", "order_id", order, "order_number", number);
	if (json_is_integer(json_object_get(d, "amount_fen")))
		json_object_set(params, "amount_fen",
		    json_object_get(d, "amount_fen"));
	if (data_str(d, "number") != NULL)
		json_object_set(params, "invoice_number",
		    json_object_get(d, "number"));
	if (data_str(d, "express_company") != NULL)
		json_object_set(params, "express_company",
		    json_object_get(d, "express_company"));
	if (data_str(d, "tracking_number") != NULL)
		json_object_set(params, "tracking_number",
		    json_object_get(d, "tracking_number"));
	if (data_str(d, "channel") != NULL)
		json_object_set(params, "channel",
		    json_object_get(d, "channel"));
	return accept_built(tx, ev, notice, kind,
	    json_pack("{s:s}", "account_id", account), params);
}

/* A batch of one service's audit entries (common 050_audit_batch.sql):
 * appended in one call, in the batch's order, each exactly as
 * on_audit_recorded would (audit_append_batch() in auth 050). Subscribed
 * with bus_subscribe_text: the batch (up to 512 KiB) goes to PostgreSQL as
 * the envelope received, unparsed here; PostgreSQL takes the entries out
 * and refuses a batch without an array of them. */
static int
on_audit_batch(struct bus_tx *tx, const struct bus_event *ev, void *arg)
{
	json_t *entries =
	    ev->data ? json_object_get(ev->data, "entries") : NULL;
	char *text;
	long n;

	(void)arg;
	if (ev->data == NULL && ev->envelope != NULL) {
		const char *pe[] = {ev->envelope};
		n = bus_tx_exec(tx, store_audit_append_envelope_sql, 1, pe);
		if (n == 0)
			log_error(NULL, "msg=bad_event type=%s id=%s", ev->type,
			    ev->id);
		return n == 1 ? 0 : -1; /* dead-lettered after max_deliver */
	}
	if (!json_is_array(entries)) {
		log_error(NULL, "msg=bad_event type=%s id=%s", ev->type,
		    ev->id);
		return -1; /* dead-lettered after max_deliver */
	}
	text = json_dumps(entries, JSON_COMPACT);
	if (text == NULL)
		return -1;
	const char *p[] = {text};
	n = bus_tx_exec(tx, store_audit_append_batch_sql, 1, p);
	free(text);
	return n < 0 ? -1 : 0;
}

void
auth_events_subscribe(void)
{
	fault_arm(&events_fault, events_fault_names);
	/* Every service's audit entries, one consumer: caplat.*.audit.recorded
	 * has three tokens after "caplat.", so it never takes dead letters. */
	if (bus_subscribe(auth.svc.bus, "auth-audit", "caplat.*.audit.recorded",
	        5, on_audit_recorded, NULL) != 0)
		log_error(NULL, "msg=subscribe_failed consumer=auth-audit");
	if (bus_subscribe_text(auth.svc.bus, "auth-audit-batch",
	        "caplat.*.audit.batch", 5, on_audit_batch, NULL) != 0)
		log_error(NULL,
		    "msg=subscribe_failed consumer=auth-audit-batch");
	if (bus_subscribe(auth.svc.bus, "auth-cert-revoked",
	        "caplat.issuance.cert.revoked", 5, on_cert_revoked,
	        NULL) != 0 ||
	    bus_subscribe(auth.svc.bus, "auth-cert-renewed",
	        "caplat.issuance.cert.renewed", 5, on_cert_renewed,
	        NULL) != 0 ||
	    bus_subscribe(auth.svc.bus, "auth-cert-cancelled",
	        "caplat.issuance.cert.cancelled", 5, on_cert_cancelled,
	        NULL) != 0 ||
	    bus_subscribe(auth.svc.bus, "auth-admin-application-approved",
	        "caplat.enterprise.admin_application.approved", 5,
	        on_admin_application_approved, NULL) != 0)
		log_error(NULL, "msg=subscribe_failed");
	if (bus_subscribe(auth.svc.bus, "auth-notices",
	        "caplat.*.notice.requested", 5, on_notice_requested,
	        NULL) != 0 ||
	    bus_subscribe(auth.svc.bus, "auth-notice-review",
	        "caplat.enterprise.record.*", 5, on_record_decided,
	        NULL) != 0 ||
	    bus_subscribe(auth.svc.bus, "auth-notice-admin-application",
	        "caplat.enterprise.admin_application.*", 5,
	        on_admin_application_decided, NULL) != 0 ||
	    bus_subscribe(auth.svc.bus, "auth-notice-orders",
	        "caplat.orders.order.created", 5, on_order_created,
	        NULL) != 0 ||
	    bus_subscribe(auth.svc.bus, "auth-notice-payments",
	        "caplat.payments.payment.succeeded", 5, on_payment_event,
	        NULL) != 0 ||
	    bus_subscribe(auth.svc.bus, "auth-notice-invoices",
	        "caplat.payments.invoice.*", 5, on_payment_event, NULL) != 0 ||
	    bus_subscribe(auth.svc.bus, "auth-notice-certs",
	        "caplat.issuance.cert.registered", 5, on_cert_registered,
	        NULL) != 0 ||
	    bus_subscribe(auth.svc.bus, "auth-notice-certs-imported",
	        "caplat.issuance.certs.imported", 5, on_certs_imported,
	        NULL) != 0)
		log_error(NULL, "msg=subscribe_failed consumer=auth-notices");
}
