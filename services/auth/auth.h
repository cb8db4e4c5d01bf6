/* auth — the service's internal interfaces: configuration, SMS codes,
 * the store (every SQL statement), and the handlers' shared helpers. */
#ifndef CAPLAT_AUTH_H
#define CAPLAT_AUTH_H

#include "http.h"
#include "svc.h"

#include <jansson.h>

struct crypto_trust;
struct db_result;

struct auth_config {
	const char *sms_secret;   /* HMAC key for stored SMS code hashes */
	const char *sms_provider; /* "local:<dir>" (common/sms.h) */
	long sms_ttl;             /* seconds a code is valid (300) */
	long sms_cooldown;        /* seconds between sends to a phone (60) */
	long sms_daily_phone;     /* sends per phone per day */
	long sms_daily_ip;        /* sends per client address per day */
	long sms_max_tries;       /* wrong tries before a code dies (5) */
	long login_max_failures;  /* wrong passwords before the lockout */
	long lockout_seconds;
	long challenge_ttl;       /* CA login challenge lifetime (120) */
	long bind_ttl;            /* bind token lifetime */
	const char *vendor_roots; /* PEM bundle of trusted vendor roots */
};

struct auth {
	struct svc svc;
	struct auth_config cfg;
	struct crypto_trust *roots;
};

extern struct auth auth;

/* ---- sms.c: codes in Redis, the provider ---- */

enum sms_result {
	SMS_OK,
	SMS_INVALID,
	SMS_TOO_FREQUENT,
	SMS_DAILY_CAP,
	SMS_UNAVAILABLE
};

/* Sends a new code for (phone, purpose): rate limits, stores its hash,
 * hands it to the provider. cb gets the result and, for SMS_TOO_FREQUENT,
 * the seconds to wait. */
typedef void (
    *sms_sent_fn)(struct http_req *req, enum sms_result r, long retry_after);
void sms_send(struct http_req *req, const char *phone, const char *purpose,
    sms_sent_fn cb);
/* Checks and consumes a code: SMS_OK once; a wrong code counts a try. */
typedef void (*sms_checked_fn)(struct http_req *req, enum sms_result r);
void sms_check(struct http_req *req, const char *phone, const char *purpose,
    const char *code, sms_checked_fn cb);
/* Sends a notification text (not a code) through the provider. */
void sms_notify(const char *phone, const char *text);

/* ---- handlers.c ---- */

extern const struct http_route auth_routes[];
extern const size_t auth_nroutes;

/* ---- helpers shared by the handler files ---- */

/* Answers the API.md error for a failed batch: 503 when the database is
 * unavailable, 500 otherwise. */
void auth_reply_db_error(struct http_req *req, const struct db_result *res);
/* Reads a required string field or answers the error itself. */
int auth_field(struct http_req *req, json_t *body, const char *field,
    size_t max, const char **out);

/* Builds the session object (account, current identity) from the row of a
 * store_session_view_sql statement; returns a new reference. */
json_t *auth_session_from_view(const struct db_result *res, int stmt);

/* events.c: consumers of other services' events. */
void auth_events_subscribe(void);

#endif
