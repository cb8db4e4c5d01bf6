/* validate — check characters and formats of USCCs, ID numbers, mobile
 * numbers and e-mail addresses (DOMAIN.md §2). Pure functions, ASCII rules
 * only (no locale: isalpha() and toupper() would follow setlocale()). */
#include "validate.h"

#include <string.h>
#include <time.h>

#define USCC_LEN 18
#define ID_NUMBER_LEN 18
#define MOBILE_LEN 11

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char
to_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* GB 32100-2015: the 31 symbols (no I, O, Z, S, V), each worth its index. */
static const char uscc_symbols[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
/* 3^(i-1) mod 31 for positions 1-17. */
static const int uscc_weights[17] = {
    1,
    3,
    9,
    27,
    19,
    26,
    16,
    17,
    20,
    29,
    25,
    13,
    8,
    24,
    10,
    30,
    28,
};

static int
uscc_value(char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(uscc_symbols, c);
	return p ? (int)(p - uscc_symbols) : -1;
}

int
validate_uscc(const char *s, char out[19])
{
	char code[USCC_LEN + 1];
	int sum = 0, check;

	if (strnlen(s, USCC_LEN + 1) != USCC_LEN)
		return -1;
	for (int i = 0; i < USCC_LEN; i++) {
		code[i] = to_upper(s[i]);
		if (uscc_value(code[i]) < 0)
			return -1;
	}
	code[USCC_LEN] = '\0';
	for (int i = 2; i < 8; i++) /* the administrative region code */
		if (!is_digit(code[i]))
			return -1;
	for (int i = 0; i < 17; i++)
		sum += uscc_value(code[i]) * uscc_weights[i];
	check = (31 - sum % 31) % 31;
	if (code[17] != uscc_symbols[check])
		return -1;
	memcpy(out, code, sizeof(code));
	return 0;
}

static int
is_leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* today is yyyymmdd. */
static int
birth_date_valid(const char *d, long today)
{
	static const int days_in_month[12] = {
	    31,
	    28,
	    31,
	    30,
	    31,
	    30,
	    31,
	    31,
	    30,
	    31,
	    30,
	    31,
	};
	int y = 0, m, day, max;

	for (int i = 0; i < 4; i++)
		y = y * 10 + (d[i] - '0');
	m = (d[4] - '0') * 10 + (d[5] - '0');
	day = (d[6] - '0') * 10 + (d[7] - '0');
	if (y < 1800 || m < 1 || m > 12 || day < 1)
		return 0;
	max = days_in_month[m - 1] + (m == 2 && is_leap_year(y));
	if (day > max)
		return 0;
	return (long)y * 10000 + m * 100 + day <= today;
}

/* The date in China (UTC+8, no daylight saving) as yyyymmdd. */
static long
today_in_china(void)
{
	time_t now = time(NULL) + 8 * 3600;
	struct tm tm;

	gmtime_r(&now, &tm);
	return (long)(tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 +
	    tm.tm_mday;
}

/* validate_id_number with "today" given, for tests of the future-date rule. */
static int
validate_id_number_on(const char *s, char out[19], long today)
{
	static const int weights[17] = {
	    7,
	    9,
	    10,
	    5,
	    8,
	    4,
	    2,
	    1,
	    6,
	    3,
	    7,
	    9,
	    10,
	    5,
	    8,
	    4,
	    2,
	};
	static const char checks[] = "10X98765432";
	char id[ID_NUMBER_LEN + 1];
	int sum = 0;

	if (strnlen(s, ID_NUMBER_LEN + 1) != ID_NUMBER_LEN)
		return -1;
	for (int i = 0; i < 17; i++) {
		if (!is_digit(s[i]))
			return -1;
		id[i] = s[i];
		sum += (s[i] - '0') * weights[i];
	}
	id[17] = to_upper(s[17]);
	id[ID_NUMBER_LEN] = '\0';
	if (id[17] != checks[sum % 11])
		return -1;
	if (!birth_date_valid(id + 6, today))
		return -1;
	memcpy(out, id, sizeof(id));
	return 0;
}

int
validate_id_number(const char *s, char out[19])
{
	return validate_id_number_on(s, out, today_in_china());
}

int
validate_mobile(const char *s, char out[12])
{
	if (strncmp(s, "+86", 3) == 0)
		s += 3;
	if (strnlen(s, MOBILE_LEN + 1) != MOBILE_LEN)
		return -1;
	if (s[0] != '1' || s[1] < '3' || s[1] > '9')
		return -1;
	for (int i = 2; i < MOBILE_LEN; i++)
		if (!is_digit(s[i]))
			return -1;
	memcpy(out, s, MOBILE_LEN);
	out[MOBILE_LEN] = '\0';
	return 0;
}

/* RFC 5322 atext without the letters and digits. */
static int
is_atext(char c)
{
	return is_alpha(c) || is_digit(c) ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

int
validate_email(const char *s)
{
	size_t len = strnlen(s, 255), local_len, label_len;
	const char *at = strchr(s, '@'), *domain, *p, *label;
	int labels = 0, label_all_digits = 1;

	if (len > 254 || at == NULL)
		return -1;
	local_len = (size_t)(at - s);
	if (local_len < 1 || local_len > 64 || s[0] == '.' || at[-1] == '.')
		return -1;
	for (p = s; p < at; p++) {
		if (*p == '.' ? p[1] == '.' : !is_atext(*p))
			return -1;
	}
	domain = at + 1;
	label = domain;
	for (p = domain;; p++) {
		if (*p == '.' || *p == '\0') {
			label_len = (size_t)(p - label);
			if (label_len < 1 || label_len > 63 ||
			    label[0] == '-' || p[-1] == '-')
				return -1;
			labels++;
			if (*p == '\0')
				break;
			label = p + 1;
			label_all_digits = 1;
			continue;
		}
		if (!is_alpha(*p) && !is_digit(*p) && *p != '-')
			return -1; /* also a second "@" */
		if (!is_digit(*p))
			label_all_digits = 0;
	}
	if (labels < 2 || label_all_digits)
		return -1;
	return 0;
}
