/* Unit tests for pricing: the seed catalogue of deploy/sql/orders/001, the
 * orders of the seed guide (四(二) 3-4: 300 + 400 = 700 元; 550 + 100 =
 * 650 元), then renew/add/dropped per case, lock-kind overrides, and the
 * refusals. Table-driven: each case names what it proves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pricing.h"

#define MAXP 16

static const char *const seed_codes[] = {"LN_JSGC", "LN_ZTB", "LN_ZFCG",
    "LN_GGZY", "SY_GGZY", "DL_GGZY", "DL_ZFCG", "AS_GGZY", "JZ_GGZY", "CY_GGZY",
    "HC_DZCG", "SF_JSXM"};

/* The catalogue as migration 001 seeds it: ids 1-12 base, 13-24 personal. */
static void
seed_catalogue(struct order_catalogue *cat)
{
	order_catalogue_init(cat);
	for (int i = 0; i < 12; i++) {
		int main_platform = i == 0;
		assert_int_equal(order_catalogue_add(cat, seed_codes[i],
		                     seed_codes[i], i + 1, NULL,
		                     main_platform ? 10000 : 5000,
		                     main_platform ? 30000 : 25000, i + 1),
		    0);
	}
	for (int i = 0; i < 12; i++)
		assert_int_equal(order_catalogue_add(cat, seed_codes[i], NULL,
		                     i + 1, "personal", i == 0 ? 8000 : 4000,
		                     20000, 13 + i),
		    0);
}

struct price_case {
	const char *name;
	const char *kind;
	const char *current[MAXP]; /* NULL-terminated */
	const char *chosen[MAXP];
	enum order_price_status want;
	int64_t price_fen;
	const char *kinds; /* per line: 'r' renew, 'a' add */
	const char *dropped[MAXP];
	size_t bad; /* for refusals: the chosen index at fault */
};

static const struct price_case price_cases[] = {
    /* 四(二)4, the master lock: five platforms kept, 大连政府采购平台 added,
	 * 大连市公共资源平台 and 鞍山公共资源平台 dropped: 550 元. */
    {"guide 4: master lock keeps five, adds DL_ZFCG", "master",
        {"LN_JSGC", "LN_ZTB", "LN_ZFCG", "LN_GGZY", "SY_GGZY", "DL_GGZY",
            "AS_GGZY"},
        {"LN_JSGC", "LN_ZTB", "LN_ZFCG", "LN_GGZY", "SY_GGZY", "DL_ZFCG"},
        PRICE_OK, 55000, "rrrrra", {"DL_GGZY", "AS_GGZY"}, 0},
    /* 四(二)4, the cost-engineer lock: 辽宁建设工程信息网 kept: 100 元. */
    {"guide 4: cost engineer keeps LN_JSGC", "cost_engineer", {"LN_JSGC"},
        {"LN_JSGC"}, PRICE_OK, 10000, "r", {NULL}, 0},
    /* 四(二)3, the first project-lead lock: nine associated, five kept: 300 元. */
    {"guide 3: project lead keeps five of nine", "project_lead",
        {"LN_JSGC", "LN_ZTB", "LN_ZFCG", "SY_GGZY", "DL_GGZY", "AS_GGZY",
            "JZ_GGZY", "CY_GGZY", "HC_DZCG"},
        {"LN_JSGC", "LN_ZTB", "LN_ZFCG", "SY_GGZY", "AS_GGZY"}, PRICE_OK, 30000,
        "rrrrr", {"DL_GGZY", "JZ_GGZY", "CY_GGZY", "HC_DZCG"}, 0},
    /* 四(二)3, the second project-lead lock: seven kept: 400 元. */
    {"guide 3: project lead keeps seven of nine", "project_lead",
        {"LN_JSGC", "LN_ZTB", "LN_ZFCG", "SY_GGZY", "DL_GGZY", "AS_GGZY",
            "JZ_GGZY", "CY_GGZY", "HC_DZCG"},
        {"LN_JSGC", "LN_ZTB", "LN_ZFCG", "SY_GGZY", "DL_GGZY", "AS_GGZY",
            "JZ_GGZY"},
        PRICE_OK, 40000, "rrrrrrr", {"CY_GGZY", "HC_DZCG"}, 0},
    {"all kept, nothing dropped", "agent", {"LN_ZTB", "SY_GGZY"},
        {"SY_GGZY", "LN_ZTB"}, PRICE_OK, 10000, "rr", {NULL}, 0},
    {"nothing associated: every line is an add", "agent", {NULL},
        {"LN_JSGC", "SF_JSXM"}, PRICE_OK, 55000, "aa", {NULL}, 0},
    {"everything dropped but one new platform", "master", {"LN_ZTB", "DL_GGZY"},
        {"HC_DZCG"}, PRICE_OK, 25000, "a", {"LN_ZTB", "DL_GGZY"}, 0},
    {"a retired platform still associated is dropped", "master",
        {"OLD_PLAT", "LN_JSGC"}, {"LN_JSGC"}, PRICE_OK, 10000, "r",
        {"OLD_PLAT"}, 0},
    {"personal lock uses its override", "personal", {"LN_JSGC", "LN_ZTB"},
        {"LN_JSGC", "LN_ZTB", "LN_ZFCG"}, PRICE_OK, 8000 + 4000 + 20000, "rra",
        {NULL}, 0},
    {"all twelve platforms renewed", "master",
        {"LN_JSGC", "LN_ZTB", "LN_ZFCG", "LN_GGZY", "SY_GGZY", "DL_GGZY",
            "DL_ZFCG", "AS_GGZY", "JZ_GGZY", "CY_GGZY", "HC_DZCG", "SF_JSXM"},
        {"LN_JSGC", "LN_ZTB", "LN_ZFCG", "LN_GGZY", "SY_GGZY", "DL_GGZY",
            "DL_ZFCG", "AS_GGZY", "JZ_GGZY", "CY_GGZY", "HC_DZCG", "SF_JSXM"},
        PRICE_OK, 10000 + 11 * 5000, "rrrrrrrrrrrr", {NULL}, 0},
    {"unknown platform is refused at its index", "master", {"LN_JSGC"},
        {"LN_JSGC", "XX_NOPE"}, PRICE_PLATFORM_UNKNOWN, 0, "", {NULL}, 1},
    {"a platform chosen twice is refused", "master", {"LN_JSGC"},
        {"LN_ZTB", "LN_JSGC", "LN_ZTB"}, PRICE_DUPLICATE, 0, "", {NULL}, 2},
    {"an empty choice is refused", "master", {"LN_JSGC"}, {NULL}, PRICE_EMPTY,
        0, "", {NULL}, 0},
};

static size_t
count(const char *const *v)
{
	size_t n = 0;

	while (n < MAXP && v[n] != NULL)
		n++;
	return n;
}

static void
test_price_cases(void **state)
{
	struct order_catalogue cat;

	seed_catalogue(&cat);
	for (size_t c = 0; c < sizeof(price_cases) / sizeof(price_cases[0]);
	     c++) {
		const struct price_case *pc = &price_cases[c];
		struct order_pricing p;
		enum order_lock_kind kind;
		size_t bad = 999;
		enum order_price_status st;

		assert_int_equal(order_lock_kind_parse(pc->kind, &kind), 0);
		st = order_price_cert(&p, &cat, kind, pc->current,
		    count(pc->current), pc->chosen, count(pc->chosen), &bad);
		if (st != pc->want)
			fail_msg("%s: status %d, want %d", pc->name, st,
			    pc->want);
		if (st != PRICE_OK) {
			if (pc->want != PRICE_EMPTY && bad != pc->bad)
				fail_msg("%s: bad index %zu, want %zu",
				    pc->name, bad, pc->bad);
			assert_null(p.lines);
			continue;
		}
		if (p.price_fen != pc->price_fen)
			fail_msg("%s: %lld fen, want %lld", pc->name,
			    (long long)p.price_fen, (long long)pc->price_fen);
		assert_int_equal(p.nlines, strlen(pc->kinds));
		for (size_t i = 0; i < p.nlines; i++) {
			assert_string_equal(p.lines[i].platform, pc->chosen[i]);
			if (p.lines[i].add != (pc->kinds[i] == 'a'))
				fail_msg("%s: line %zu kind", pc->name, i);
		}
		if (p.ndropped != count(pc->dropped))
			fail_msg("%s: %zu dropped, want %zu", pc->name,
			    p.ndropped, count(pc->dropped));
		for (size_t i = 0; i < p.ndropped; i++)
			assert_string_equal(p.dropped[i], pc->dropped[i]);
		order_pricing_clear(&p);
	}
	order_catalogue_clear(&cat);
}

/* The guide's two orders, item sums: 300 + 400 = 700 元 and 550 + 100 = 650 元. */
static void
test_guide_order_totals(void **state)
{
	struct order_catalogue cat;
	int64_t totals[2] = {0, 0};
	const size_t orders_of[] = {0, 0, 1, 1}; /* case index → order */
	const size_t cases[] = {2, 3, 0, 1};

	seed_catalogue(&cat);
	for (size_t i = 0; i < 4; i++) {
		const struct price_case *pc = &price_cases[cases[i]];
		struct order_pricing p;
		enum order_lock_kind kind;

		assert_int_equal(order_lock_kind_parse(pc->kind, &kind), 0);
		assert_int_equal(order_price_cert(&p, &cat, kind, pc->current,
		                     count(pc->current), pc->chosen,
		                     count(pc->chosen), NULL),
		    PRICE_OK);
		assert_int_equal(order_fen_add(&totals[orders_of[i]],
		                     p.price_fen),
		    0);
		order_pricing_clear(&p);
	}
	assert_int_equal(totals[0], 70000);
	assert_int_equal(totals[1], 65000);
	order_catalogue_clear(&cat);
}

/* Each line records the price version it used: base or the kind's own. */
static void
test_lines_keep_price_versions(void **state)
{
	struct order_catalogue cat;
	struct order_pricing p;
	const char *cur[] = {"LN_JSGC"}, *chosen[] = {"LN_JSGC", "LN_ZTB"};

	seed_catalogue(&cat);
	assert_int_equal(order_price_cert(&p, &cat, LOCK_PERSONAL, cur, 1,
	                     chosen, 2, NULL),
	    PRICE_OK);
	assert_int_equal(p.lines[0].price_id, 13);
	assert_int_equal(p.lines[1].price_id, 14);
	order_pricing_clear(&p);
	assert_int_equal(order_price_cert(&p, &cat, LOCK_MASTER, cur, 1, chosen,
	                     2, NULL),
	    PRICE_OK);
	assert_int_equal(p.lines[0].price_id, 1);
	assert_int_equal(p.lines[1].price_id, 2);
	order_pricing_clear(&p);
	/* A newer version of the base replaces the old one for every kind
	 * without an override, not for the overridden one. */
	assert_int_equal(order_catalogue_add(&cat, "LN_ZTB", NULL, 2, "", 6000,
	                     26000, 99),
	    0);
	assert_int_equal(order_price_cert(&p, &cat, LOCK_AGENT, cur, 1, chosen,
	                     2, NULL),
	    PRICE_OK);
	assert_int_equal(p.lines[1].price_fen, 26000);
	assert_int_equal(p.lines[1].price_id, 99);
	order_pricing_clear(&p);
	assert_int_equal(order_price_cert(&p, &cat, LOCK_PERSONAL, cur, 1,
	                     chosen, 2, NULL),
	    PRICE_OK);
	assert_int_equal(p.lines[1].price_fen, 20000);
	order_pricing_clear(&p);
	order_catalogue_clear(&cat);
}

/* A platform with only an override has no price for the other kinds. */
static void
test_missing_price_for_kind(void **state)
{
	struct order_catalogue cat;
	struct order_pricing p;
	const char *chosen[] = {"ONLY_PERSONAL"};
	size_t bad = 9;

	order_catalogue_init(&cat);
	assert_int_equal(order_catalogue_add(&cat, "ONLY_PERSONAL", "x", 1,
	                     "personal", 1, 2, 1),
	    0);
	assert_int_equal(order_price_cert(&p, &cat, LOCK_MASTER, NULL, 0,
	                     chosen, 1, &bad),
	    PRICE_MISSING);
	assert_int_equal(bad, 0);
	assert_int_equal(order_price_cert(&p, &cat, LOCK_PERSONAL, NULL, 0,
	                     chosen, 1, NULL),
	    PRICE_OK);
	assert_int_equal(p.price_fen, 2);
	order_pricing_clear(&p);
	order_catalogue_clear(&cat);
}

static void
test_overflow_refused(void **state)
{
	struct order_catalogue cat;
	struct order_pricing p;
	const char *chosen[] = {"AA", "BB"};
	int64_t sum = INT64_MAX - 1;

	order_catalogue_init(&cat);
	assert_int_equal(order_catalogue_add(&cat, "AA", NULL, 1, NULL, 0,
	                     INT64_MAX - 10, 1),
	    0);
	assert_int_equal(order_catalogue_add(&cat, "BB", NULL, 2, NULL, 0, 11,
	                     2),
	    0);
	assert_int_equal(order_price_cert(&p, &cat, LOCK_MASTER, NULL, 0,
	                     chosen, 2, NULL),
	    PRICE_OVERFLOW);
	assert_int_equal(order_fen_add(&sum, 1), 0);
	assert_int_equal(order_fen_add(&sum, 1), -1);
	assert_int_equal(sum, INT64_MAX);
	assert_int_equal(order_fen_add(&sum, -1), -1);
	order_catalogue_clear(&cat);
}

struct code_case {
	const char *code;
	int valid;
};

static void
test_platform_codes_and_kinds(void **state)
{
	static const struct code_case codes[] = {
	    {"LN_JSGC", 1},
	    {"AB", 1},
	    {"A1_2", 1},
	    {"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", 1},
	    {"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456", 0},
	    {"A", 0},
	    {"", 0},
	    {"ln_jsgc", 0},
	    {"1ABC", 0},
	    {"_ABC", 0},
	    {"AB-C", 0},
	    {"AB C", 0},
	    {"辽宁", 0},
	};
	struct order_catalogue cat;
	enum order_lock_kind k;

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (order_platform_code_valid(codes[i].code) != codes[i].valid)
			fail_msg("code \"%s\"", codes[i].code);
	assert_int_equal(order_platform_code_valid(NULL), 0);
	for (int i = 0; i < LOCK_KINDS; i++) {
		assert_int_equal(order_lock_kind_parse(order_lock_kind_name((
		                                           enum order_lock_kind)
		                                               i),
		                     &k),
		    0);
		assert_int_equal(k, i);
	}
	assert_int_equal(order_lock_kind_parse("Master", &k), -1);
	assert_int_equal(order_lock_kind_parse(NULL, &k), -1);
	order_catalogue_init(&cat);
	assert_int_equal(order_catalogue_add(&cat, "bad code", NULL, 1, NULL, 1,
	                     1, 1),
	    -1);
	assert_int_equal(order_catalogue_add(&cat, "GOOD", NULL, 1, "boss", 1,
	                     1, 1),
	    -1);
	assert_int_equal(order_catalogue_add(&cat, "GOOD", NULL, 1, NULL, -1, 1,
	                     1),
	    -1);
	assert_int_equal(cat.n, 0);
	order_catalogue_clear(&cat);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_price_cases),
	    cmocka_unit_test(test_guide_order_totals),
	    cmocka_unit_test(test_lines_keep_price_versions),
	    cmocka_unit_test(test_missing_price_for_kind),
	    cmocka_unit_test(test_overflow_refused),
	    cmocka_unit_test(test_platform_codes_and_kinds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
