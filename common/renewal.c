/* renewal — the renewal window of a certificate, DOMAIN.md §6. See
 * renewal.h. */
#include "renewal.h"

enum renewal_window_state
renewal_window_at(const struct renewal_window *w, int64_t not_after, int64_t at)
{
	if (at < not_after - (int64_t)w->before_days * RENEWAL_DAY_SECONDS)
		return RENEWAL_WINDOW_NOT_YET;
	if (at > not_after + (int64_t)w->after_days * RENEWAL_DAY_SECONDS)
		return RENEWAL_WINDOW_TOO_LATE;
	return RENEWAL_WINDOW_OPEN;
}

enum renewal_window_state
renewal_window_allowed(const struct renewal_window *w, int64_t not_after,
    int64_t now, int64_t paid_at)
{
	enum renewal_window_state state = renewal_window_at(w, not_after, now);

	if (state != RENEWAL_WINDOW_OPEN && paid_at > 0 && paid_at <= now &&
	    renewal_window_at(w, not_after, paid_at) == RENEWAL_WINDOW_OPEN)
		return RENEWAL_WINDOW_OPEN;
	return state;
}
