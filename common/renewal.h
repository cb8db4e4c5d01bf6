/* renewal — the renewal window of a certificate (延期年检), DOMAIN.md §6:
 * renewable from before_days before notAfter until after_days after it
 * (90 and 365 by default, configurable), both ends included; outside it the
 * answer is 未到年检时间 (not yet) or "expired too long ago, apply anew" (too
 * late). One rule for orders (may the renewal be ordered) and issuance (may
 * it run, is it renewable). Pure: no clock, no I/O; times are seconds since
 * the epoch. */
#ifndef CAPLAT_RENEWAL_H
#define CAPLAT_RENEWAL_H

#include <stdint.h>

#define RENEWAL_DAY_SECONDS 86400

struct renewal_window {
	long before_days; /* renewable from this many days before notAfter */
	long after_days;  /* ... until this many days after it */
};

enum renewal_window_state {
	RENEWAL_WINDOW_OPEN,
	RENEWAL_WINDOW_NOT_YET, /* 未到年检时间: more than before_days left */
	RENEWAL_WINDOW_TOO_LATE, /* expired more than after_days ago */
};

/* Where `at` falls in the window of a certificate expiring at not_after. */
enum renewal_window_state renewal_window_at(const struct renewal_window *w,
    int64_t not_after, int64_t at);

/* Whether a renewal may run now: the window is open now, or it was open when
 * the renewal was paid (paid_at, not after now; 0 for none): a paid renewal
 * is not lost to the clock. Returns RENEWAL_WINDOW_OPEN or the state now. */
enum renewal_window_state renewal_window_allowed(const struct renewal_window *w,
    int64_t not_after, int64_t now, int64_t paid_at);

#endif
