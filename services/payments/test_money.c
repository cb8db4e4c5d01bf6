/* Unit tests for money: exact yuan ↔ fen, and the VAT split of DOMAIN.md §5
 * with its vectors (table-driven). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "domain.h"
#include "util.h"

static void
test_yuan_to_fen_valid(void **state)
{
	static const struct {
		const char *s;
		int neg;
		int64_t fen;
	} cases[] = {
	    {"0.01", 0, 1},
	    {"0.00", 0, 0},
	    {"1.00", 0, 100},
	    {"1234.56", 0, 123456},
	    {"10.10", 0, 1010},
	    {"-0.50", 1, -50},
	    {"-1200.00", 1, -120000},
	    {"90071992547409.91", 0, MONEY_MAX_FEN},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		int64_t fen = -7;
		assert_int_equal(money_yuan_to_fen(cases[i].s,
		                     strlen(cases[i].s), cases[i].neg, &fen),
		    0);
		assert_int_equal(fen, cases[i].fen);
	}
}

static void
test_yuan_to_fen_invalid(void **state)
{
	static const char *const bad[] = {
	    "",
	    "1",
	    "1.0",
	    "1.000",
	    ".01",
	    "01.00",
	    "00.01",
	    "1,00",
	    " 1.00",
	    "1.00 ",
	    "+1.00",
	    "1e2",
	    "0x1.00",
	    "1.0a",
	    "-0.01" /* negative not allowed here */,
	    "NaN",
	    "1.-1",
	    "99999999999999999.00",
	    "90071992547409.92",
	    "-",
	    "-.01",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		int64_t fen = 42;
		assert_int_equal(money_yuan_to_fen(bad[i], strlen(bad[i]), 0,
		                     &fen),
		    -1);
		assert_int_equal(fen, 42);
	}
	int64_t fen = 42;
	/* The length counts: "1.001" cut at 4 bytes is "1.00". */
	assert_int_equal(money_yuan_to_fen("1.001", 4, 0, &fen), 0);
	assert_int_equal(fen, 100);
	assert_int_equal(money_yuan_to_fen("-1.00", 5, 0, &fen), -1);
}

static void
test_fen_to_yuan(void **state)
{
	char out[32];

	money_fen_to_yuan(1, out);
	assert_string_equal(out, "0.01");
	money_fen_to_yuan(0, out);
	assert_string_equal(out, "0.00");
	money_fen_to_yuan(123456, out);
	assert_string_equal(out, "1234.56");
	money_fen_to_yuan(-50, out);
	assert_string_equal(out, "-0.50");
	money_fen_to_yuan(MONEY_MAX_FEN, out);
	assert_string_equal(out, "90071992547409.91");
	/* Round trip */
	for (int64_t f = 0; f < 2000; f += 7) {
		int64_t back;
		money_fen_to_yuan(f, out);
		assert_int_equal(money_yuan_to_fen(out, strlen(out), 0, &back),
		    0);
		assert_int_equal(back, f);
	}
}

/* DOMAIN.md §5 vectors at 6 %: gross → tax / net. */
static void
test_vat_domain_vectors(void **state)
{
	static const struct {
		int64_t gross, tax, net;
	} v[] = {
	    {10000, 566, 9434},
	    {990, 56, 934},
	    {99900, 5655, 94245},
	    {17, 1, 16},
	    {1, 0, 1},
	    {106, 6, 100},
	};
	for (size_t i = 0; i < ARRAY_LEN(v); i++) {
		int64_t tax = money_vat_tax(v[i].gross, 600);
		assert_int_equal(tax, v[i].tax);
		assert_int_equal(v[i].gross - tax, v[i].net);
	}
}

static void
test_vat_rounding_and_rates(void **state)
{
	/* 53 × 6/106 = 3.0 exactly; 9 × 6/106 = 0.509 → 1; 8 → 0.4528 → 0. */
	assert_int_equal(money_vat_tax(53, 600), 3);
	assert_int_equal(money_vat_tax(9, 600), 1);
	assert_int_equal(money_vat_tax(8, 600), 0);
	/* Exactly half rounds up: 3 % of 103 × k … 515 × 300/10300 = 15.0;
	 * 1 × 10000/20000 = 0.5 → 1 at 100 %. */
	assert_int_equal(money_vat_tax(1, 10000), 1);
	assert_int_equal(money_vat_tax(3, 10000), 2); /* 1.5 → 2 */
	assert_int_equal(money_vat_tax(515, 300), 15);
	assert_int_equal(money_vat_tax(10000, 1300), 1150); /* 13 %: 1150.44 */
	assert_int_equal(money_vat_tax(10000, 0), 0);
	/* Red-letter amounts mirror blue ones. */
	assert_int_equal(money_vat_tax(-10000, 600), -566);
	assert_int_equal(money_vat_tax(-17, 600), -1);
	/* No overflow at the largest amount. */
	assert_int_equal(money_vat_tax(MONEY_MAX_FEN, 600),
	    (int64_t)(((__int128)MONEY_MAX_FEN * 1200 + 10600) / 21200));
	/* net + tax = gross, tax within [0, gross] */
	for (int64_t g = 0; g < 5000; g++) {
		int64_t t = money_vat_tax(g, 600);
		assert_true(t >= 0 && t <= g);
	}
}

/* Invoice lines: each line split by DOMAIN.md's vectors, the total the sum
 * of the lines (two 0.09 lines: 1 + 1 fen, where 0.18 alone gives 1). */
static void
test_lines_vat(void **state)
{
	static const int64_t gross[] = {10000, 990, 99900, 17, 1, 106};
	static const int64_t tax[] = {566, 56, 5655, 1, 0, 6};
	static const int64_t net[] = {9434, 934, 94245, 16, 1, 100};
	struct money_split out[ARRAY_LEN(gross)], total;

	money_lines_vat(gross, ARRAY_LEN(gross), 600, out, &total);
	for (size_t i = 0; i < ARRAY_LEN(gross); i++) {
		assert_int_equal(out[i].gross, gross[i]);
		assert_int_equal(out[i].tax, tax[i]);
		assert_int_equal(out[i].net, net[i]);
	}
	assert_int_equal(total.gross, 111014);
	assert_int_equal(total.tax, 6284);
	assert_int_equal(total.net, 104730);

	static const int64_t nines[] = {9, 9};
	money_lines_vat(nines, 2, 600, NULL, &total);
	assert_int_equal(total.tax, 2);
	assert_int_equal(total.net, 16);
	assert_int_equal(money_vat_tax(18, 600), 1);

	/* A red invoice: the lines negated, the totals exactly opposite. */
	static const int64_t red[] = {-10000, -990};
	money_lines_vat(red, 2, 600, out, &total);
	assert_int_equal(out[0].tax, -566);
	assert_int_equal(out[1].net, -934);
	assert_int_equal(total.tax, -622);
	assert_int_equal(total.net, -10368);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_yuan_to_fen_valid),
	    cmocka_unit_test(test_yuan_to_fen_invalid),
	    cmocka_unit_test(test_fen_to_yuan),
	    cmocka_unit_test(test_vat_domain_vectors),
	    cmocka_unit_test(test_vat_rounding_and_rates),
	    cmocka_unit_test(test_lines_vat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
