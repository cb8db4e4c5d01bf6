/* caplat-enterprise — personal info, attachments, enterprise records and
 * their review. main() is thin: configuration, the shared service start-up
 * (svc), the blob store, routes, consumers, run.
 *
 *   caplat-enterprise [--workers N]      serve
 *   caplat-enterprise migrate            apply migrations and exit
 *   caplat-enterprise ocr FILE...        recognise licence images, one JSON
 *                                        line each (tests/bench/licence.py) */
#include "enterprise.h"

#include "log.h"

#include "blob.h"
#include "cfg.h"
#include "sms.h"
#include "util.h"

#include "licence.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	    {"CAPLAT_OCR_THREADS", CFG_INT, "1", 0, 8, &c->ocr_threads,
	        "business-licence recognition threads (~100 MB each; 0 = off)"},
	    {"CAPLAT_OCR_LANG", CFG_STR, "chi_sim", 0, 0, &c->ocr_lang,
	        "Tesseract languages of the licence recognition"},
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

/* Reads a whole file (at most ENT_FILE_MAX bytes) into *data. */
static int
read_file(const char *path, unsigned char **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		return -1;
	*data = xmalloc(ENT_FILE_MAX);
	n = fread(*data, 1, ENT_FILE_MAX, f);
	fclose(f);
	*len = n;
	return n > 0 ? 0 : -1;
}

/* caplat-enterprise ocr FILE...: the service's own recogniser on files, one
 * thread, one engine: {"file", "seconds", "reason", "fields"} per line. */
static int
ocr_files(int argc, char **argv)
{
	struct ocr_engine *e = ent_ocr_engine_new();

	for (int i = 2; i < argc; i++) {
		unsigned char *data = NULL;
		size_t len = 0;
		struct lic_read r;
		const char *reason;
		struct timespec t0, t1, c0, c1;

		if (read_file(argv[i], &data, &len) != 0) {
			fprintf(stderr, "ocr: cannot read %s\n", argv[i]);
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
		(void)ent_ocr_recognise(e, ent.cfg.ocr_lang, data, len, &r,
		    &reason);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
		json_t *o = json_pack("{s:s, s:f, s:f, s:o, s:o, s:b}", "file",
		    argv[i], "seconds",
		    (double)(t1.tv_sec - t0.tv_sec) +
		        (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
		    "cpu_seconds",
		    (double)(c1.tv_sec - c0.tv_sec) +
		        (double)(c1.tv_nsec - c0.tv_nsec) / 1e9,
		    "reason", reason ? json_string(reason) : json_null(),
		    "fields", lic_read_json(&r), "uscc_invalid",
		    r.uscc_invalid);
		char *line = json_dumps(o, JSON_COMPACT);
		printf("%s\n", line);
		fflush(stdout);
		free(line);
		json_decref(o);
		free(data);
	}
	ent_ocr_engine_free(e);
	return 0;
}

int
main(int argc, char **argv)
{
	ent_ocr_one_core(argv);
	ent_load_config();
	if (argc >= 2 && strcmp(argv[1], "ocr") == 0)
		return ocr_files(argc, argv);
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
	ent_ocr_start();
	ent_sweep_start();
	svc_run(&ent.svc);
	ent_sweep_stop();
	ent_ocr_stop();
	svc_free(&ent.svc);
	blob_store_free(ent.blobs);
	return 0;
}
