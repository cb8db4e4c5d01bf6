/* caplat-auth — accounts, USB-key login and binding, SMS codes, sessions,
 * identities and staff. main() is thin: configuration, the shared service
 * start-up (svc), routes, consumers, run.
 *
 *   caplat-auth [--workers N]            serve
 *   caplat-auth migrate                  apply migrations and exit
 *   caplat-auth staff-add USER ROLES     create or reset a staff account
 *                                        (ROLES: reviewer,finance,operator;
 *                                        password from CAPLAT_STAFF_PASSWORD
 *                                        or generated and printed) */
#include "auth.h"

#include "cfg.h"
#include "crypto.h"
#include "db.h"
#include "log.h"
#include "sms.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
auth_load_config(void)
{
	struct auth_config *c = &auth.cfg;
	const struct cfg_var vars[] = {
	    {"CAPLAT_SMS_SECRET", CFG_STR, NULL, 0, 0, &c->sms_secret,
	        "HMAC key for SMS code hashes"},
	    {"CAPLAT_SMS_PROVIDER", CFG_STR, "local:var/sms", 0, 0,
	        &c->sms_provider, "SMS provider (local:<dir> or aliyun:<url>)"},
	    {"CAPLAT_SMS_TTL", CFG_INT, "300", 60, 3600, &c->sms_ttl,
	        "SMS code lifetime (s)"},
	    {"CAPLAT_SMS_COOLDOWN", CFG_INT, "60", 1, 3600, &c->sms_cooldown,
	        "seconds between codes to one phone"},
	    {"CAPLAT_SMS_DAILY_PHONE", CFG_INT, "10", 1, 1000,
	        &c->sms_daily_phone, "codes per phone per day"},
	    {"CAPLAT_SMS_DAILY_IP", CFG_INT, "100", 1, 100000, &c->sms_daily_ip,
	        "codes per client address per day"},
	    {"CAPLAT_SMS_MAX_TRIES", CFG_INT, "5", 1, 20, &c->sms_max_tries,
	        "wrong tries per code"},
	    {"CAPLAT_LOGIN_MAX_FAILURES", CFG_INT, "5", 1, 100,
	        &c->login_max_failures, "wrong passwords before lockout"},
	    {"CAPLAT_LOCKOUT_SECONDS", CFG_INT, "900", 1, 86400,
	        &c->lockout_seconds, "lockout length (s)"},
	    {"CAPLAT_CHALLENGE_TTL", CFG_INT, "120", 10, 600, &c->challenge_ttl,
	        "CA login challenge lifetime (s)"},
	    {"CAPLAT_BIND_TTL", CFG_INT, "600", 60, 3600, &c->bind_ttl,
	        "bind token lifetime (s)"},
	    {"CAPLAT_VENDOR_ROOTS", CFG_STR, "", 0, 0, &c->vendor_roots,
	        "PEM bundle of trusted vendor roots"},
	    {"CAPLAT_SMS_DELIVERY_MS", CFG_INT, "60000", 20, 600000,
	        &c->sms_delivery_ms,
	        "how often the SMS sender looks for notices another process "
	        "queued (ms); its own rounds follow kicks and due times"},
	    {"CAPLAT_SMS_LEASE_SECONDS", CFG_INT, "60", 1, 3600,
	        &c->sms_lease_s,
	        "a claimed SMS's lease (s): more than the provider timeout"},
	    {"CAPLAT_SMS_RETRY_BASE_MS", CFG_INT, "30000", 10, 86400000,
	        &c->sms_retry_base_ms, "first backoff after a provider error"},
	    {"CAPLAT_SMS_RETRY_MAX_MS", CFG_INT, "3600000", 10, 86400000,
	        &c->sms_retry_max_ms, "longest backoff"},
	    {"CAPLAT_SMS_THROTTLE_MS", CFG_INT, "60000", 10, 86400000,
	        &c->sms_throttle_ms,
	        "first backoff after the provider's rate limit"},
	    {"CAPLAT_SMS_MAX_ATTEMPTS", CFG_INT, "10", 1, 100,
	        &c->sms_max_attempts,
	        "attempts before an SMS is dead-lettered"},
	    {"CAPLAT_SMS_NUMBER_HOURLY", CFG_INT, "20", 1, 100000,
	        &c->sms_number_hourly, "notice SMS per phone number per hour"},
	    {"CAPLAT_NOTICE_MAX_AGE_SECONDS", CFG_INT, "86400", 60, 31536000,
	        &c->notice_max_age_s,
	        "events older than this tell nobody (stream replays)"},
	};

	cfg_load_or_die(vars, ARRAY_LEN(vars));
	if (sms_provider_init(c->sms_provider) != 0)
		fatal("bad configuration: CAPLAT_SMS_PROVIDER: \"%s\"",
		    c->sms_provider);
	if (strlen(c->sms_secret) < 16)
		fatal(
		    "bad configuration: CAPLAT_SMS_SECRET: at least 16 characters");
}

static int
staff_add(const char *username, const char *roles)
{
	const char *db_url = getenv("CAPLAT_DB_URL");
	const char *dir = getenv("CAPLAT_MIGRATIONS_DIR");
	const char *given = getenv("CAPLAT_STAFF_PASSWORD");
	char *password, *hash, err[512], id[37], common_dir[1024];

	if (db_url == NULL || dir == NULL)
		fatal(
		    "staff-add needs CAPLAT_DB_URL and CAPLAT_MIGRATIONS_DIR");
	snprintf(common_dir, sizeof(common_dir), "%s/../common", dir);
	if (db_migrate(db_url, "auth", common_dir, dir, err, sizeof(err)) != 0)
		fatal("migrations failed: %s", err);
	password = given && *given ? xstrdup(given) : crypto_random_token(12);
	hash = crypto_password_hash(password);
	uuid_v4(id);
	const char *p[] = {id, username, hash, roles};
	if (db_exec_sync(db_url, store_staff_upsert_sql, 4, p, err,
	        sizeof(err)) != 0) {
		fprintf(stderr, "staff-add failed: %s", err);
		return 1;
	}
	if (given && *given)
		printf("staff %s (%s) saved\n", username, roles);
	else
		printf("staff %s (%s) password: %s\n", username, roles,
		    password);
	crypto_wipe(password, strlen(password));
	free(password);
	free(hash);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "staff-add") == 0)
		return staff_add(argv[2], argv[3]);
	auth_load_config();
	svc_init(&auth.svc, "auth", argc, argv);
	sms_provider_start(auth.svc.base);
	auth_deliver_init();
	auth_handlers_init();
	auth_ca_init();
	auth_request_init();
	http_server_routes(auth.svc.http, auth_routes, auth_nroutes);
	auth_events_subscribe();
	auth_sweep_start();
	svc_run(&auth.svc);
	auth_sweep_stop();
	svc_free(&auth.svc);
	return 0;
}
