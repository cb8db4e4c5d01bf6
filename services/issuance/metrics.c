/* metrics — the issuance service's counters (renewals, vendor answers,
 * revocations) and their Prometheus text on /metrics. Loop thread only. A
 * leaf: every I/O file counts here. */
#include "issuance.h"

#include "util.h"

#include <stdio.h>
#include <string.h>

static const char *const counter_names[] = {"renewed", "resumed", "vendor_ok",
    "vendor_unavailable", "vendor_rejected", "vendor_bad_certificate",
    "revoked", "vendor_revocations", "issued", "list_cache_hit",
    "list_cache_miss"};
static unsigned long long counters[ARRAY_LEN(counter_names)];

void
issuance_count(const char *what)
{
	for (size_t i = 0; i < ARRAY_LEN(counter_names); i++)
		if (strcmp(counter_names[i], what) == 0)
			counters[i]++;
}

size_t
issuance_metrics(void *arg, char *buf, size_t size)
{
	size_t n = 0;
	int w;

	w = snprintf(buf, size, "# TYPE caplat_issuance_total counter\n");
	if (w > 0 && (size_t)w < size)
		n = (size_t)w;
	for (size_t i = 0; i < ARRAY_LEN(counter_names); i++) {
		w = snprintf(buf + n, size - n,
		    "caplat_issuance_total{what=\"%s\"} %llu\n",
		    counter_names[i], counters[i]);
		if (w < 0 || (size_t)w >= size - n)
			break;
		n += (size_t)w;
	}
	return n;
}
