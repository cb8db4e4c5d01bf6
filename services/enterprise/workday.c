/* workday — working days and the one-working-day review target; see
 * workday.h. Dates are proleptic Gregorian day numbers (Howard Hinnant's
 * days_from_civil), so no time zone database is involved. */
#include "workday.h"

#include <string.h>

#define DAY_MS 86400000LL
#define CST_OFFSET_MS (8 * 3600000LL)
/* Longest run of days off looked through before giving up (a whole year of
 * exceptions would be a configuration error). */
#define MAX_DAYS_OFF 366

static int32_t
days_from_civil(int y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int32_t)doe - 719468;
}

static int
days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
	    31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

int
ent_workday_parse_date(const char *s, int32_t *day)
{
	int y, m, d;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return -1;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	    (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1970 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
		return -1;
	*day = days_from_civil(y, (unsigned)m, (unsigned)d);
	return 0;
}

/* Floor division, so that moments before 1970 land on the right day. */
static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

int
ent_workday_is(const struct ent_day_exception *ex, size_t n, int32_t day)
{
	int weekday = (int)((day % 7 + 7 + 4) %
	    7); /* 1970-01-01 was a Thursday; 0 = Sunday */

	for (size_t i = 0; i < n; i++)
		if (ex[i].day == day)
			return ex[i].workday != 0;
	return weekday != 0 && weekday != 6;
}

int64_t
ent_workday_due_ms(const struct ent_day_exception *ex, size_t n,
    int64_t submitted_ms)
{
	int64_t local = submitted_ms + CST_OFFSET_MS;
	int64_t day = floor_div(local, DAY_MS);
	int64_t time_of_day = local - day * DAY_MS;
	int64_t next = day + 1;
	int64_t due_local;

	for (int i = 0;
	     i < MAX_DAYS_OFF && !ent_workday_is(ex, n, (int32_t)next); i++)
		next++;
	if (ent_workday_is(ex, n, (int32_t)day))
		due_local = next * DAY_MS + time_of_day;
	else
		due_local = (next + 1) * DAY_MS;
	return due_local - CST_OFFSET_MS;
}
