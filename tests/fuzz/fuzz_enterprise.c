/* fuzz_enterprise — the enterprise service's JSON bodies, where the Chinese
 * identifiers arrive (services/enterprise/rules.c): an enterprise record
 * update merged into a skeleton and checked, a profile update, an
 * administrator application and a reviewer's opinion. A refusal names a
 * status, a code and a message. */
#include "fuzz.h"

#include "../../services/enterprise/rules.h"
#include "http.h"

static void
refused(const struct ent_err *err)
{
	FUZZ_CHECK(err->status == 400 || err->status == 422);
	FUZZ_CHECK(err->code != NULL && err->message[0] != '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char uscc[] = "91350100M000100Y43";
	struct ent_err err;
	struct ent_refs refs;
	struct ent_profile_update profile;
	struct ent_admin_application app;
	json_t *body, *patch, *skel, *merged, *missing;
	const char *opinion;

	if (!http_text_valid(data, size))
		return 0;
	body =
	    json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (body == NULL || !json_is_object(body)) {
		json_decref(body);
		return 0;
	}
	memset(&err, 0, sizeof(err));
	memset(&refs, 0, sizeof(refs));
	if (ent_record_parse(body, uscc, &patch, &refs, &err) == 0) {
		FUZZ_CHECK(refs.nfiles <= ENT_MAX_FILE_REFS);
		skel = ent_record_skeleton(uscc, "某某公司");
		merged = ent_record_merge(skel, patch);
		memset(&err, 0, sizeof(err));
		if (ent_record_check(merged, patch, &err) != 0)
			refused(&err);
		missing = ent_record_missing(merged);
		json_decref(missing);
		json_decref(ent_record_parts(merged));
		json_decref(merged);
		json_decref(skel);
		json_decref(patch);
	} else {
		refused(&err);
	}
	memset(&err, 0, sizeof(err));
	if (ent_profile_parse(body, &profile, &err) != 0)
		refused(&err);
	memset(&err, 0, sizeof(err));
	if (ent_admin_application_parse(body, &app, &err) == 0)
		FUZZ_CHECK(
		    strlen(app.uscc) == 18 && strlen(app.id_number) == 18);
	else
		refused(&err);
	for (int required = 0; required <= 1; required++) {
		memset(&err, 0, sizeof(err));
		if (ent_opinion_parse(body, required, &opinion, &err) != 0)
			refused(&err);
	}
	json_decref(body);
	return 0;
}
