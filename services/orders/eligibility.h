/* eligibility — the renewal order request (parsed and checked field by
 * field) and who may order the renewal of which certificate, when. Pure: no
 * I/O; the clock is an argument. Each refusal carries its API.md code. */
#ifndef CAPLAT_ORDERS_ELIGIBILITY_H
#define CAPLAT_ORDERS_ELIGIBILITY_H

#include "renewal.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define ORDER_MAX_ITEMS 200
#define ORDER_MAX_PLATFORMS 64

/* An answer the handler sends as is: status, stable code, the field at
 * fault ("" when none) and the message for the user. */
struct order_error {
	int status;
	const char *code;
	char field[64];
	const char *message;
};

struct order_item_req {
	char cert_id[37];       /* lower case */
	const char **platforms; /* borrowed from the request body */
	size_t nplatforms;
	/* current_platforms: the administrator's confirmation of the set a
	 * certificate with unknown associations has today (issue 13); NULL
	 * when absent. */
	const char **current;
	size_t ncurrent;
};

struct order_request {
	struct order_item_req *items;
	size_t nitems;
	char quote_id[37]; /* "" when absent */
};

/* Reads {items: [{cert_id, platforms: [code]}], quote_id?} from body
 * (borrowed; the request borrows its strings, so body must outlive it).
 * Checks types, the item and platform counts, UUIDs, platform code syntax,
 * duplicate certificates and duplicate platforms of an item. Returns 0, or
 * -1 with *err filled (400 FIELD_TYPE, 422 ITEMS_EMPTY, FIELD_REQUIRED,
 * FIELD_INVALID, PLATFORM_UNKNOWN) and *out left empty. Release with
 * order_request_clear(). */
int order_request_parse(struct order_request *out, json_t *body,
    struct order_error *err);
void order_request_clear(struct order_request *rq);

/* A canonical text of the items (cert ids and platforms, in order), the
 * same for two requests that ask for the same thing. Returns a new string,
 * caller frees. */
char *order_request_canonical(const struct order_request *rq);

/* Who asks. */
struct order_caller {
	const char *account_id;
	const char *uscc; /* the current identity's enterprise, or NULL */
	int admin;        /* the current identity is that enterprise's admin */
	int profile_complete; /* enterprise.profile.completed seen */
	int enterprise_approved; /* the current identity's enterprise is approved */
};

/* What the read models say of one requested certificate. */
struct order_cert_facts {
	int found;
	const char *uscc;        /* the certificate's enterprise, or NULL */
	const char *account_id;  /* the holder's account, or NULL */
	int enterprise_approved; /* the certificate's enterprise is approved */
	int revoked;
	int in_open_order;
	int64_t not_after; /* seconds since the epoch */
};

enum order_refusal {
	ORDER_ELIGIBLE,
	ORDER_PROFILE_INCOMPLETE,
	ORDER_ENTERPRISE_NOT_APPROVED,
	ORDER_CERT_NOT_FOUND, /* unknown, or another enterprise's, or another person's */
	ORDER_NOT_ENTERPRISE_ADMIN, /* the enterprise's, but not the caller's own */
	ORDER_CERT_REVOKED,
	ORDER_TOO_EARLY,
	ORDER_TOO_LATE,
	ORDER_IN_OPEN_ORDER,
};

/* The checks that concern the caller alone (personal info, enterprise
 * approval), in that order. */
enum order_refusal order_caller_check(const struct order_caller *caller);

/* The checks of one certificate for this caller at time now, in the order
 * API.md's codes are listed: visibility, the right to order it, the
 * enterprise's approval, revocation, the window, other open orders. */
enum order_refusal order_cert_check(const struct order_caller *caller,
    const struct order_cert_facts *cert, const struct renewal_window *w,
    int64_t now);

/* Fills err for a refusal (not ORDER_ELIGIBLE); field may be NULL. */
void order_refusal_error(enum order_refusal r, const char *field,
    struct order_error *err);

/* Fills err. */
void order_error_set(struct order_error *err, int status, const char *code,
    const char *field, const char *message);

/* Formats seconds since the epoch as
 * RFC 3339 UTC "2024-05-01T08:00:00Z" into out. */
void order_time_format(int64_t epoch, char out[32]);
/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)" into seconds since the
 * epoch. Returns 0, or -1 when s is not such a time. */
int order_time_parse(const char *s, int64_t *out);
/* The order number: "PL" + the date in China Standard Time + the sequence
 * zero-padded to 8 digits, e.g. PL2024050100000123. out holds 40 bytes. */
void order_number_format(int64_t epoch, long long seq, char out[40]);

#endif
