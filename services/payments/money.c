/* money — yuan strings to fen and back, exactly, and the VAT inside a
 * tax-inclusive amount (DOMAIN.md §3 and §5). Never a float. */
#include "domain.h"

#include <assert.h>
#include <stdio.h>

int
money_yuan_to_fen(const char *s, size_t len, int allow_negative, int64_t *fen)
{
	size_t i = 0, int_start, int_len;
	int negative = 0;
	int64_t v = 0;

	if (len > 0 && s[0] == '-') {
		if (!allow_negative)
			return -1;
		negative = 1;
		i = 1;
	}
	int_start = i;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	int_len = i - int_start;
	if (int_len == 0 || int_len > 14 ||
	    (int_len > 1 && s[int_start] == '0'))
		return -1;
	if (len - i != 3 || s[i] != '.' || s[i + 1] < '0' || s[i + 1] > '9' ||
	    s[i + 2] < '0' || s[i + 2] > '9')
		return -1;
	for (size_t k = int_start; k < int_start + int_len; k++)
		v = v * 10 + (s[k] - '0');
	v = v * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
	if (v > MONEY_MAX_FEN)
		return -1;
	*fen = negative ? -v : v;
	return 0;
}

void
money_fen_to_yuan(int64_t fen, char out[32])
{
	uint64_t a = fen < 0 ? (uint64_t)0 - (uint64_t)fen : (uint64_t)fen;

	snprintf(out, 32, "%s%llu.%02llu", fen < 0 ? "-" : "",
	    (unsigned long long)(a / 100), (unsigned long long)(a % 100));
}

int64_t
money_vat_tax(int64_t gross_fen, long rate_bp)
{
	__int128 num, den;
	int64_t g;

	assert(rate_bp >= 0 && rate_bp <= 10000);
	if (gross_fen < 0)
		return -money_vat_tax(-gross_fen, rate_bp);
	g = gross_fen;
	/* tax = g·r/(1+r) = g·bp/(10000+bp); half up: floor((2·num + den) / 2·den) */
	num = (__int128)g * rate_bp;
	den = 10000 + (__int128)rate_bp;
	return (int64_t)((2 * num + den) / (2 * den));
}

void
money_lines_vat(const int64_t *gross, size_t n, long rate_bp,
    struct money_split *out, struct money_split *total)
{
	total->gross = total->tax = total->net = 0;
	for (size_t i = 0; i < n; i++) {
		struct money_split l = {gross[i],
		    money_vat_tax(gross[i], rate_bp), 0};

		l.net = l.gross - l.tax;
		if (out != NULL)
			out[i] = l;
		total->gross += l.gross;
		total->tax += l.tax;
		total->net += l.net;
	}
}
