/* config — the issuance service's configuration table (CAPLAT_* variables
 * with defaults, validated at start), the local CA and the vendor adapters,
 * the vendor names of issuers, and the fault points of the crash tests. */
#include "issuance.h"

#include "cfg.h"
#include "clock.h"
#include "crypto.h"
#include "log.h"
#include "util.h"
#include "vendor.h"

#include <stdlib.h>
#include <string.h>

struct issuance issuance;

static void
vendor_names_parse(const char *spec)
{
	const char *p = spec;

	while (*p) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));

		if (eq == NULL || eq == p || eq + 1 == end ||
		    issuance.nvendor_names == ISSUANCE_MAX_VENDOR_NAMES)
			fatal(
			    "bad configuration: CAPLAT_ISSUANCE_VENDOR_NAMES: \"%s\"",
			    spec);
		issuance.vendor_names[issuance.nvendor_names].part =
		    xstrndup(p, (size_t)(eq - p));
		issuance.vendor_names[issuance.nvendor_names].vendor =
		    xstrndup(eq + 1, (size_t)(end - eq - 1));
		issuance.nvendor_names++;
		p = comma ? comma + 1 : end;
	}
}

/* CAPLAT_FAULT values of issuance, in enum issuance_fault order. */
static const char *const issuance_fault_names[] = {
    "issuance_crash_before_vendor",
    "issuance_crash_after_vendor",
    "issuance_crash_after_reminders",
    NULL,
};

void
issuance_fault_point(enum issuance_fault fault)
{
	fault_point(&issuance.fault, (int)fault);
}

void
issuance_config_load(void)
{
	struct issuance_config *c = &issuance.cfg;
	/* clang-format off */
	const struct cfg_var vars[] = {
		{"CAPLAT_RENEWAL_WINDOW_BEFORE_DAYS", CFG_INT, "90", 0, 3650, &c->window_before_days, "renewable this many days before notAfter"},
		{"CAPLAT_RENEWAL_WINDOW_AFTER_DAYS", CFG_INT, "365", 0, 3650, &c->window_after_days, "renewable until this many days after notAfter"},
		{"CAPLAT_RENEWAL_TERM_MONTHS", CFG_INT, "12", 1, 120, &c->term_months, "validity added by one renewal (months)"},
		{"CAPLAT_RENEWAL_CHALLENGE_TTL", CFG_INT, "120", 10, 600, &c->challenge_ttl, "renewal challenge lifetime (s)"},
		{"CAPLAT_RENEWAL_REPLAY_DAYS", CFG_INT, "30", 0, 365, &c->replay_days, "days an issued renewal can be collected again"},
		{"CAPLAT_ISSUANCE_LEASE_SECONDS", CFG_INT, "30", 1, 3600, &c->lease_seconds, "one attempt holds an issuance intent this long"},
		{"CAPLAT_ISSUANCE_RESUME_MS", CFG_INT, "1000", 50, 600000, &c->resume_interval_ms, "period of the resumer (ms)"},
		{"CAPLAT_ISSUANCE_IDLE_MS", CFG_INT, "60000", 50, 3600000, &c->idle_interval_ms, "the resumer's look when nothing is pending (ms)"},
		{"CAPLAT_ISSUANCE_RETRY_SECONDS", CFG_INT, "5", 1, 3600, &c->retry_seconds, "first backoff after a vendor failure (doubles, at most 300 s)"},
		{"CAPLAT_ISSUANCE_SYNC_MS", CFG_INT, "300000", 0, 86400000, &c->sync_interval_ms, "vendor directory sync period (ms), 0: off"},
		{"CAPLAT_ISSUANCE_VENDOR_NAMES", CFG_STR, "", 0, 0, &c->vendor_names, "issuer-DN-part=VENDOR,… names the vendors"},
		{"CAPLAT_VAR_DIR", CFG_STR, "var", 0, 0, &c->var_dir, "state directory"},
		{"CAPLAT_CA_DIR", CFG_STR, "", 0, 0, &c->ca_dir, "local CA directory (default $CAPLAT_VAR_DIR/ca)"},
		{"CAPLAT_CA_LOCAL_VENDOR", CFG_STR, "caplat", 0, 0, &c->ca_vendor, "vendor name of the local CA"},
		{"CAPLAT_CA_CRL_BASE_URL", CFG_STR, "", 0, 0, &c->crl_base_url, "CRL distribution point base URL, e.g. http://gw/api/v1/certs/crl/"},
		{"CAPLAT_CA_CRL_HOURS", CFG_INT, "24", 1, 24 * 30, &c->crl_hours, "CRL nextUpdate (hours)"},
		{"CAPLAT_CA_DEFAULT_ADAPTER", CFG_STR, "local", 0, 0, &c->default_adapter, "adapter renewing certificates of vendors without one"},
		{"CAPLAT_CA_ADAPTERS", CFG_STR, "", 0, 0, &c->adapters, "VENDOR=adapter,… routes renewals"},
		{"CAPLAT_CA_REMOTE_URL", CFG_STR, "", 0, 0, &c->remote_url, "remote vendor CA API (http://host:port/prefix)"},
		{"CAPLAT_CA_REMOTE_VENDOR", CFG_STR, "REMOTE", 0, 0, &c->remote_vendor, "vendor name of the remote CA"},
		{"CAPLAT_CA_REMOTE_TOKEN", CFG_STR, "", 0, 0, &c->remote_token, "bearer token for the remote CA"},
		{"CAPLAT_CA_REMOTE_TIMEOUT_MS", CFG_INT, "10000", 100, 120000, &c->remote_timeout_ms, "remote CA request timeout (ms)"},
		{"CAPLAT_INTEROP_SECRETS", CFG_STR, "", 0, 0, &c->interop_secrets, "CODE=secret,… of the downstream platforms"},
		{"CAPLAT_VENDOR_ROOTS", CFG_STR, "", 0, 0, &c->vendor_roots, "trusted vendor roots (PEM bundle) imported certificates chain to (default: the local CA's)"},
		{"CAPLAT_INTEROP_SKEW", CFG_INT, "300", 10, 3600, &c->interop_skew, "accepted X-Timestamp skew (s)"},
		{"CAPLAT_REMINDER_STAGES", CFG_STR, "90,30,7,0,-30", 0, 0, &c->reminder_stages, "expiry reminder stages, days before notAfter (negative: after)"},
		{"CAPLAT_RENEWAL_REMINDER_DAYS", CFG_STR, "3,10", 0, 0, &c->renewal_reminder_days, "days after payment a still unused renewal is reminded"},
		{"CAPLAT_REMINDER_PASS_MS", CFG_INT, "3600000", 0, 86400000, &c->reminder_pass_ms, "period of the reminder pass (ms), 0: off"},
		{"CAPLAT_REMINDER_BATCH", CFG_INT, "5000", 1, 100000, &c->reminder_batch, "reminder stages claimed per transaction"},
		{"CAPLAT_TEST_CLOCK_FILE", CFG_STR, "", 0, 0, &c->test_clock_file, "tests only: a file holding a clock offset (s) for the reminder pass"},
	};
	/* clang-format on */
	char err[512];
	char *dir;

	cfg_load_or_die(vars, ARRAY_LEN(vars));
	issuance.window =
	    (struct cert_window){{c->window_before_days, c->window_after_days},
	        c->term_months, 300};
	if (cert_platform_secrets_parse(c->interop_secrets, &issuance.secrets,
	        &issuance.nsecrets) != 0)
		fatal(
		    "bad configuration: CAPLAT_INTEROP_SECRETS: CODE=secret (16+ characters),…");
	vendor_names_parse(c->vendor_names);
	issuance.reminder_stages = cert_days_literal(c->reminder_stages, 1);
	if (issuance.reminder_stages == NULL)
		fatal(
		    "bad configuration: CAPLAT_REMINDER_STAGES: \"%s\" (days, e.g. 90,30,7,0,-30)",
		    c->reminder_stages);
	issuance.renewal_reminder_days =
	    cert_days_literal(c->renewal_reminder_days, 0);
	if (issuance.renewal_reminder_days == NULL)
		fatal(
		    "bad configuration: CAPLAT_RENEWAL_REMINDER_DAYS: \"%s\" (days, e.g. 3,10)",
		    c->renewal_reminder_days);
	clock_init(c->test_clock_file);
	/* Leases outlast a remote call, so the resumer never overlaps it. */
	if (c->remote_url[0] != '\0' &&
	    c->lease_seconds * 1000 < c->remote_timeout_ms + 1000)
		c->lease_seconds = (c->remote_timeout_ms + 1000 + 999) / 1000;
	dir =
	    c->ca_dir[0] ? xstrdup(c->ca_dir) : xasprintf("%s/ca", c->var_dir);
	if (localca_open(&issuance.localca, dir, c->crl_base_url, err,
	        sizeof(err)) != 0)
		fatal("local CA: %s", err);
	free(dir);
	fault_arm(&issuance.fault, issuance_fault_names);
}

void
issuance_adapters_init(void)
{
	struct issuance_config *c = &issuance.cfg;

	vendor_register(vendor_local_new(issuance.localca, c->ca_vendor));
	if (c->remote_url[0] != '\0') {
		struct vendor *v = vendor_remote_new(issuance.svc.base,
		    c->remote_url, c->remote_vendor, c->remote_token,
		    c->remote_timeout_ms);
		if (v == NULL)
			fatal(
			    "bad configuration: CAPLAT_CA_REMOTE_URL: \"%s\" (https://host:port/…; http:// on loopback only)",
			    c->remote_url);
		vendor_register(v);
	}
	if (vendor_by_adapter(c->default_adapter) == NULL)
		fatal(
		    "bad configuration: CAPLAT_CA_DEFAULT_ADAPTER: \"%s\" is not configured",
		    c->default_adapter);
}

/* The value of attribute key ("O", "CN") in an RFC 2253 DN, or NULL. */
static char *
dn_attr(const char *dn, const char *key)
{
	size_t klen = strlen(key);
	const char *p = dn;

	while (*p) {
		const char *start = p;
		/* find the end of this RDN: an unescaped ',' */
		while (*p && *p != ',') {
			if (*p == '\\' && p[1])
				p++;
			p++;
		}
		if ((size_t)(p - start) > klen &&
		    strncmp(start, key, klen) == 0 && start[klen] == '=') {
			char *v = xstrndup(start + klen + 1,
			    (size_t)(p - start - klen - 1));
			char *w = v;
			for (char *r = v; *r; r++) {
				if (*r == '\\' && r[1])
					r++;
				*w++ = *r;
			}
			*w = '\0';
			return v;
		}
		if (*p == ',')
			p++;
	}
	return NULL;
}

char *
issuance_vendor_of(const char *issuer_dn)
{
	char *v;

	for (size_t i = 0; i < issuance.nvendor_names; i++)
		if (strstr(issuer_dn, issuance.vendor_names[i].part) != NULL)
			return xstrdup(issuance.vendor_names[i].vendor);
	if (issuance.localca != NULL &&
	    localca_issues(issuance.localca, issuer_dn))
		return xstrdup(issuance.cfg.ca_vendor);
	if ((v = dn_attr(issuer_dn, "O")) != NULL ||
	    (v = dn_attr(issuer_dn, "CN")) != NULL)
		return v;
	return xstrdup("unknown");
}
