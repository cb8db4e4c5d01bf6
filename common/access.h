/* access — who may do what on an enterprise's data: one table of roles ×
 * areas, used by every route of every service (issue 12). An enterprise's
 * administrator acts on all of it; its members (项目负责人, 授权委托人,
 * 造价师) read its public part and act on what they placed or what is
 * theirs (their own certificates); staff act by their role on any
 * enterprise. A session with no enterprise identity acts on nothing of an
 * enterprise. The enterprise itself is the session's uscc: a route checks
 * that the object belongs to it (or to the member) after this check. */
#ifndef CAPLAT_ACCESS_H
#define CAPLAT_ACCESS_H

struct http_req;
struct session;

/* What is done. */
enum access_area {
	ACCESS_ENTERPRISE_PUBLIC, /* name, USCC, status, handling point, invoice
	                             title and taxpayer id */
	ACCESS_ENTERPRISE_FULL,   /* the whole record: legal representative's ID
	                             number and phone, bank account, attachments */
	ACCESS_ENTERPRISE_EDIT, /* edit and submit the record, apply changes */
	ACCESS_MEMBERS,  /* 人员管理: members, applications, decisions */
	ACCESS_CERTS,    /* CA管理: the enterprise's certificates */
	ACCESS_ORDERS,   /* renewal orders: place, read, cancel */
	ACCESS_PAYMENTS, /* payments and invoices of orders */
	ACCESS_REVIEW,   /* staff: the review queue and decisions */
	ACCESS_FINANCE,  /* staff: refunds, bills, reconciliation */
	ACCESS_AUDIT,    /* staff: the audit trail */
	ACCESS_AREAS
};

/* How far. Ordered: a larger scope includes the smaller ones. */
enum access_scope {
	ACCESS_NONE = 0,
	ACCESS_OWN,        /* what the caller placed, or what is theirs */
	ACCESS_ENTERPRISE, /* all of the session's enterprise */
	ACCESS_PLATFORM,   /* any enterprise (staff); reads of full records
	                      are audited by the route */
};

/* Returns the caller's scope on area: from the table, by the session's
 * role (enterprise identity role, or the best of a staff session's roles).
 * NULL s is ACCESS_NONE. */
enum access_scope access_scope(const struct session *s, enum access_area a);

/* Returns the scope when it is at least min; otherwise answers 403
 * FORBIDDEN ("无权进行此操作") itself and returns ACCESS_NONE. */
enum access_scope access_require(struct http_req *req, enum access_area a,
    enum access_scope min);

/* Who sees which order, payment and invoice (orders and payments use it for
 * every route): scope "platform" (staff the table lets: any), "enterprise"
 * (uscc's administrator: every order placed for uscc or holding one of its
 * certificates) or "own" (the orders account placed for uscc — NULL:
 * personal ones — and those holding one of account's certificates of uscc).
 * A personal identity, or an account with none, sees its own personal
 * orders. Strings borrowed from the session; they are the parameters of the
 * services' ORDER_VISIBLE statements. */
struct access_viewer {
	const char *scope;
	const char *account;
	const char *uscc;
};

/* Fills v for req's session on area (ACCESS_ORDERS or ACCESS_PAYMENTS).
 * Returns 0, or -1 when answered 403 (an area the caller has no access to
 * at all). */
int access_viewer(struct http_req *req, enum access_area area,
    struct access_viewer *v);

/* Writes a masked copy of a phone or ID number for lists and members' views:
 * the first 3 and last 4 characters kept (138****5678,
 * 210**********1234); a value of 8 characters or fewer is all stars. */
void access_mask(const char *s, char *out, unsigned out_size);

#endif
