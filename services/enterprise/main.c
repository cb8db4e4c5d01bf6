/* caplat-enterprise — personal info, attachments, enterprise records and
 * their review. main() is thin: configuration, the shared service start-up
 * (svc), the blob store, routes, consumers, run.
 *
 *   caplat-enterprise [--workers N]      serve
 *   caplat-enterprise migrate            apply migrations and exit */
#include "enterprise.h"

#include "log.h"

#include "blob.h"
#include "cfg.h"
#include "sms.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>

static void
ent_load_config(void)
{
	struct ent_config *c = &ent.cfg;
	const struct cfg_var vars[] = {
	    {"CAPLAT_SMS_PROVIDER", CFG_STR, "local:var/sms", 0, 0,
	        &c->sms_provider, "SMS provider (local:<dir>)"},
	    {"CAPLAT_BLOB_STORE", CFG_STR, "", 0, 0, &c->blob_store,
	        "attachment store (local:<dir>; default local:$CAPLAT_VAR_DIR/blobs)"},
	    {"CAPLAT_UPLOAD_MAX_PIXELS", CFG_INT, "40000000", 1, 1000000000,
	        &c->upload_max_pixels,
	        "most pixels (width x height) of an uploaded image"},
	    {"CAPLAT_REVIEW_CLAIM_TTL", CFG_INT, "1800", 60, 86400,
	        &c->claim_ttl, "seconds a reviewer's claim holds"},
	    {"CAPLAT_ID_HASH_KEY", CFG_STR, "", 0, 0, &c->id_hash_key,
	        "HMAC key of the ID numbers of admin applications (set it in production)"},
	};

	cfg_load_or_die(vars, ARRAY_LEN(vars));
	if (sms_provider_init(c->sms_provider) != 0)
		fatal("bad configuration: CAPLAT_SMS_PROVIDER: \"%s\"",
		    c->sms_provider);
}

static void
ent_open_blobs(void)
{
	char err[256], *spec;

	if (ent.cfg.blob_store[0] != '\0')
		spec = xstrdup(ent.cfg.blob_store);
	else
		spec = xasprintf("local:%s/blobs", ent.svc.var_dir);
	if (blob_store_open(&ent.blobs, spec, err, sizeof(err)) != 0)
		fatal("bad configuration: CAPLAT_BLOB_STORE: %s", err);
	free(spec);
}

int
main(int argc, char **argv)
{
	ent_load_config();
	/* svc_init clears ent.svc; the config lives beside it. */
	svc_init(&ent.svc, "enterprise", argc, argv);
	if (ent.cfg.id_hash_key[0] == '\0')
		log_warn(NULL,
		    "msg=config_weak var=CAPLAT_ID_HASH_KEY "
		    "detail=\"empty: applicants' ID number hashes are "
		    "unkeyed\"");
	ent_open_blobs();
	http_server_routes(ent.svc.http, ent_routes, ent_nroutes);
	ent_events_subscribe();
	ent_sweep_start();
	svc_run(&ent.svc);
	ent_sweep_stop();
	svc_free(&ent.svc);
	blob_store_free(ent.blobs);
	return 0;
}
