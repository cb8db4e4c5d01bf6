/* pricing — the platform catalogue as loaded for one request, and the price
 * of renewing one certificate with a chosen set of platforms. Pure: no I/O,
 * no clock; money is int64 fen. */
#ifndef CAPLAT_ORDERS_PRICING_H
#define CAPLAT_ORDERS_PRICING_H

#include <stddef.h>
#include <stdint.h>

enum order_lock_kind {
	LOCK_MASTER,
	LOCK_PROJECT_LEAD,
	LOCK_AGENT,
	LOCK_COST_ENGINEER,
	LOCK_PERSONAL,
	LOCK_KINDS
};

/* Parses a lock kind ("master", …) into *out. Returns 0, or -1 when s is
 * not one. */
int order_lock_kind_parse(const char *s, enum order_lock_kind *out);
/* The API name of a lock kind; borrowed, static. */
const char *order_lock_kind_name(enum order_lock_kind kind);

/* One price version of a platform (a platform_prices row). */
struct order_price {
	int present;
	int64_t renew_fen; /* keep an associated platform */
	int64_t add_fen;   /* a new association */
	long long id;      /* the version's row id */
};

#define ORDER_PLATFORM_CODE_MAX 32

struct order_platform {
	char code[ORDER_PLATFORM_CODE_MAX + 1];
	char *name; /* owned, may be NULL */
	int sort;
	struct order_price base;                /* lock_kind NULL */
	struct order_price by_kind[LOCK_KINDS]; /* overrides */
};

/* The platforms known to one request, in the order they were added. */
struct order_catalogue {
	struct order_platform *platforms;
	size_t n, cap;
};

void order_catalogue_init(struct order_catalogue *cat);
/* Frees what the catalogue owns; it may be used again after init. */
void order_catalogue_clear(struct order_catalogue *cat);

/* Adds one price version: for the base when lock_kind is NULL or "", else
 * for that kind. The platform is created on its first row; name (copied)
 * may be NULL. A later row for the same (platform, kind) replaces an earlier
 * one, so rows are to be added oldest first or one per key. Returns 0, or -1
 * when code is not a platform code or lock_kind not a lock kind. */
int order_catalogue_add(struct order_catalogue *cat, const char *code,
    const char *name, int sort, const char *lock_kind, int64_t renew_fen,
    int64_t add_fen, long long id);

/* Returns the platform with this code, or NULL. Borrowed from cat. */
const struct order_platform *
order_catalogue_find(const struct order_catalogue *cat, const char *code);

/* The price of a platform for a lock kind: the kind's own version if there
 * is one, else the base; NULL when neither exists. Borrowed. */
const struct order_price *order_platform_price(const struct order_platform *p,
    enum order_lock_kind kind);

/* 1 when s looks like a platform code: ^[A-Z][A-Z0-9_]{1,31}$. */
int order_platform_code_valid(const char *s);

/* One line of a priced certificate. */
struct order_line {
	const char *platform; /* borrowed from the catalogue */
	int add;              /* 0 renew (already associated), 1 add */
	int64_t price_fen;
	long long price_id; /* the price version used */
};

/* A priced certificate. lines follow the chosen platforms in order; dropped
 * are the currently associated platforms not chosen, in their current
 * order (they stop working for the certificate from the renewal date). */
struct order_pricing {
	struct order_line *lines;
	size_t nlines;
	const char **dropped; /* borrowed from the caller's current[] */
	size_t ndropped;
	int64_t price_fen; /* the sum of the lines */
};

enum order_price_status {
	PRICE_OK,
	PRICE_PLATFORM_UNKNOWN, /* a chosen platform is not in the catalogue */
	PRICE_MISSING,          /* it is, without a price for this lock kind */
	PRICE_DUPLICATE,        /* a platform chosen twice */
	PRICE_EMPTY,            /* nothing chosen */
	PRICE_OVERFLOW,         /* the sum does not fit in int64 */
};

/* Prices the renewal of one certificate of lock kind `kind` that is now
 * associated with current[0..ncurrent) and is to be associated with
 * chosen[0..nchosen) afterwards: a chosen platform it has costs its renew
 * price, one it does not have its add price. On PRICE_OK fills *out
 * (release with order_pricing_clear); otherwise leaves *out empty and, when
 * bad is not NULL, sets *bad to the index in chosen of the platform at
 * fault. */
enum order_price_status order_price_cert(struct order_pricing *out,
    const struct order_catalogue *cat, enum order_lock_kind kind,
    const char *const *current, size_t ncurrent, const char *const *chosen,
    size_t nchosen, size_t *bad);

void order_pricing_clear(struct order_pricing *p);

/* Adds b to *sum; returns -1 (and leaves *sum) when the result would
 * overflow or either is negative. */
int order_fen_add(int64_t *sum, int64_t b);

#endif
