/* pricing — the catalogue of one request and the price of one certificate's
 * renewal: the sum over its chosen platforms of the renew price for a
 * platform it keeps and the add price for one it gains. See pricing.h. */
#include "pricing.h"

#include "util.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static const char *const lock_kind_names[LOCK_KINDS] = {
    [LOCK_MASTER] = "master",
    [LOCK_PROJECT_LEAD] = "project_lead",
    [LOCK_AGENT] = "agent",
    [LOCK_COST_ENGINEER] = "cost_engineer",
    [LOCK_PERSONAL] = "personal",
};

int
order_lock_kind_parse(const char *s, enum order_lock_kind *out)
{
	for (int k = 0; s != NULL && k < LOCK_KINDS; k++) {
		if (strcmp(s, lock_kind_names[k]) == 0) {
			*out = (enum order_lock_kind)k;
			return 0;
		}
	}
	return -1;
}

const char *
order_lock_kind_name(enum order_lock_kind kind)
{
	assert(kind >= 0 && kind < LOCK_KINDS);
	return lock_kind_names[kind];
}

int
order_platform_code_valid(const char *s)
{
	size_t n;

	if (s == NULL || !(s[0] >= 'A' && s[0] <= 'Z'))
		return 0;
	for (n = 1; s[n] != '\0'; n++) {
		char c = s[n];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		        c == '_'))
			return 0;
	}
	return n >= 2 && n <= ORDER_PLATFORM_CODE_MAX;
}

void
order_catalogue_init(struct order_catalogue *cat)
{
	memset(cat, 0, sizeof(*cat));
}

void
order_catalogue_clear(struct order_catalogue *cat)
{
	for (size_t i = 0; i < cat->n; i++)
		free(cat->platforms[i].name);
	free(cat->platforms);
	memset(cat, 0, sizeof(*cat));
}

/* The index of code in the catalogue, or -1. */
static long
catalogue_index(const struct order_catalogue *cat, const char *code)
{
	for (size_t i = 0; code != NULL && i < cat->n; i++)
		if (strcmp(cat->platforms[i].code, code) == 0)
			return (long)i;
	return -1;
}

const struct order_platform *
order_catalogue_find(const struct order_catalogue *cat, const char *code)
{
	long i = catalogue_index(cat, code);

	return i < 0 ? NULL : &cat->platforms[i];
}

int
order_catalogue_add(struct order_catalogue *cat, const char *code,
    const char *name, int sort, const char *lock_kind, int64_t renew_fen,
    int64_t add_fen, long long id)
{
	struct order_platform *p;
	struct order_price *price;
	long at;
	enum order_lock_kind kind = LOCK_MASTER;
	int base = lock_kind == NULL || lock_kind[0] == '\0';

	if (!order_platform_code_valid(code) || renew_fen < 0 || add_fen < 0)
		return -1;
	if (!base && order_lock_kind_parse(lock_kind, &kind) != 0)
		return -1;
	at = catalogue_index(cat, code);
	if (at >= 0) {
		p = &cat->platforms[at];
	} else {
		if (cat->n == cat->cap) {
			cat->cap = cat->cap ? cat->cap * 2 : 16;
			cat->platforms =
			    xrealloc(cat->platforms, cat->cap * sizeof(*p));
		}
		p = &cat->platforms[cat->n++];
		memset(p, 0, sizeof(*p));
		memcpy(p->code, code, strlen(code) + 1);
		p->sort = sort;
	}
	if (p->name == NULL && name != NULL)
		p->name = xstrdup(name);
	price = base ? &p->base : &p->by_kind[kind];
	price->present = 1;
	price->renew_fen = renew_fen;
	price->add_fen = add_fen;
	price->id = id;
	return 0;
}

const struct order_price *
order_platform_price(const struct order_platform *p, enum order_lock_kind kind)
{
	assert(kind >= 0 && kind < LOCK_KINDS);
	if (p->by_kind[kind].present)
		return &p->by_kind[kind];
	return p->base.present ? &p->base : NULL;
}

int
order_fen_add(int64_t *sum, int64_t b)
{
	if (*sum < 0 || b < 0 || b > INT64_MAX - *sum)
		return -1;
	*sum += b;
	return 0;
}

static int
in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

void
order_pricing_clear(struct order_pricing *p)
{
	free(p->lines);
	free(p->dropped);
	memset(p, 0, sizeof(*p));
}

enum order_price_status
order_price_cert(struct order_pricing *out, const struct order_catalogue *cat,
    enum order_lock_kind kind, const char *const *current, size_t ncurrent,
    const char *const *chosen, size_t nchosen, size_t *bad)
{
	struct order_pricing p = {0};
	enum order_price_status st = PRICE_OK;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (nchosen == 0)
		return PRICE_EMPTY;
	p.lines = xcalloc(nchosen, sizeof(*p.lines));
	for (i = 0; i < nchosen; i++) {
		const struct order_platform *plat =
		    order_catalogue_find(cat, chosen[i]);
		const struct order_price *price;
		struct order_line *line = &p.lines[p.nlines];

		if (in_list(chosen[i], chosen, i)) {
			st = PRICE_DUPLICATE;
			break;
		}
		if (plat == NULL) {
			st = PRICE_PLATFORM_UNKNOWN;
			break;
		}
		if ((price = order_platform_price(plat, kind)) == NULL) {
			st = PRICE_MISSING;
			break;
		}
		line->platform = plat->code;
		line->add = !in_list(chosen[i], current, ncurrent);
		line->price_fen = line->add ? price->add_fen : price->renew_fen;
		line->price_id = price->id;
		if (order_fen_add(&p.price_fen, line->price_fen) != 0) {
			st = PRICE_OVERFLOW;
			break;
		}
		p.nlines++;
	}
	if (st != PRICE_OK) {
		if (bad != NULL)
			*bad = i;
		order_pricing_clear(&p);
		return st;
	}
	p.dropped = xcalloc(ncurrent ? ncurrent : 1, sizeof(*p.dropped));
	for (i = 0; i < ncurrent; i++)
		if (!in_list(current[i], chosen, nchosen) &&
		    !in_list(current[i], p.dropped, p.ndropped))
			p.dropped[p.ndropped++] = current[i];
	*out = p;
	return PRICE_OK;
}
