/* window — what issuance makes of a certificate's renewal (延期年检),
 * DOMAIN.md §6: why it is not renewable (the window itself is
 * common/renewal.c's), what validity the renewal gives (the new validity runs
 * on from the old notAfter when renewed in time, from the renewal when
 * already expired; one year per renewal), days left and status. Pure
 * functions of their arguments: no clock, no I/O. */
#include "issuance.h"

#include <assert.h>
#include <string.h>

const char *
cert_not_renewable_reason(const struct cert_window *w, time_t not_after,
    time_t now, int revoked, int in_open_order)
{
	if (revoked)
		return "CERT_REVOKED";
	if (in_open_order)
		return "CERT_IN_OPEN_ORDER";
	switch (renewal_window_at(&w->window, not_after, now)) {
	case RENEWAL_WINDOW_NOT_YET:
		return "NOT_IN_RENEWAL_WINDOW";
	case RENEWAL_WINDOW_TOO_LATE:
		return "EXPIRED_TOO_LONG";
	case RENEWAL_WINDOW_OPEN:
		break;
	}
	return NULL;
}

const char *
cert_reason_message(const char *reason)
{
	static const struct {
		const char *code, *text;
	} texts[] = {
	    {"NOT_IN_RENEWAL_WINDOW", "未到年检时间"},
	    {"EXPIRED_TOO_LONG", "证书过期时间过长，请重新申请证书"},
	    {"CERT_REVOKED", "证书已吊销"},
	    {"CERT_IN_OPEN_ORDER", "证书已在延期年检订单中"},
	};

	for (size_t i = 0; reason && i < sizeof(texts) / sizeof(texts[0]); i++)
		if (strcmp(reason, texts[i].code) == 0)
			return texts[i].text;
	return NULL;
}

long
cert_days_left(time_t not_after, time_t now)
{
	long long d = (long long)not_after - (long long)now;

	/* Division rounding toward minus infinity: half a day expired is -1. */
	if (d >= 0)
		return (long)(d / DAY_SECONDS);
	return (long)(-((-d + DAY_SECONDS - 1) / DAY_SECONDS));
}

static int
days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
	    31};
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	assert(month >= 0 && month < 12);
	return days[month] + (month == 1 && leap);
}

time_t
cert_add_months(time_t t, long months)
{
	struct tm tm;
	long m;

	gmtime_r(&t, &tm);
	m = (long)tm.tm_mon + months;
	tm.tm_year += (int)(m >= 0 ? m / 12 : (m - 11) / 12);
	m %= 12;
	if (m < 0)
		m += 12;
	tm.tm_mon = (int)m;
	if (tm.tm_mday > days_in_month(tm.tm_year + 1900, tm.tm_mon))
		tm.tm_mday = days_in_month(tm.tm_year + 1900, tm.tm_mon);
	return timegm(&tm);
}

void
cert_renewal_validity(const struct cert_window *w, time_t old_not_after,
    time_t now, time_t *not_before, time_t *not_after)
{
	time_t from = now < old_not_after ? old_not_after : now;

	*not_before = now - w->backdate_seconds;
	*not_after = cert_add_months(from, w->term_months);
}

const char *
cert_status_name(time_t not_after, time_t now, int revoked)
{
	if (revoked)
		return "revoked";
	return now >= not_after ? "expired" : "valid";
}

const char *
cert_renewal_state(const char *reason, int in_open_order, int renewal_paid,
    int renewed)
{
	if (renewal_paid)
		return "paid";
	if (in_open_order)
		return "in_order";
	if (reason == NULL)
		return "renewable";
	if (renewed && strcmp(reason, "NOT_IN_RENEWAL_WINDOW") == 0)
		return "renewed";
	return "not_due";
}
