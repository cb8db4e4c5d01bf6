/* fuzz_json — a request body as http_read_json() takes it (UTF-8 check,
 * then jansson with duplicate keys refused), then every json_field_*
 * reader on each of its keys and on absent ones, checking the readers'
 * promises: an error names its field with 400 or 422 and a code, a string
 * read is 1..max bytes without a NUL, an integer is within its range. */
#include "fuzz.h"

#include "http.h"
#include "json.h"

static const char *const kinds[] = {"master", "agent", "personal", NULL};

static void
check_err(const struct json_field_err *err, const char *field)
{
	FUZZ_CHECK(err->status == 400 || err->status == 422);
	FUZZ_CHECK(err->code != NULL && err->message != NULL);
	FUZZ_CHECK(err->field == field);
}

static void
read_field(json_t *obj, const char *field)
{
	struct json_field_err err;
	const char *s;
	long long v;
	int present;
	json_t *arr;

	for (int required = 0; required <= 1; required++) {
		memset(&err, 0, sizeof(err));
		if (json_field_str(obj, field, required, 16, &s, &err) == 0) {
			FUZZ_CHECK(s != NULL || !required);
			if (s != NULL)
				FUZZ_CHECK(strlen(s) >= 1 && strlen(s) <= 16);
		} else {
			check_err(&err, field);
		}
		memset(&err, 0, sizeof(err));
		if (json_field_int(obj, field, required, -5, 1000, &v, &present,
		        &err) == 0) {
			FUZZ_CHECK(present || !required);
			if (present)
				FUZZ_CHECK(v >= -5 && v <= 1000);
		} else {
			check_err(&err, field);
		}
		memset(&err, 0, sizeof(err));
		if (json_field_enum(obj, field, required, kinds, &s, &err) ==
		    0) {
			if (s != NULL)
				FUZZ_CHECK(strcmp(s, "master") == 0 ||
				    strcmp(s, "agent") == 0 ||
				    strcmp(s, "personal") == 0);
		} else {
			check_err(&err, field);
		}
		for (int k = 0; k < 2; k++) {
			memset(&err, 0, sizeof(err));
			if (json_field_str_array(obj, field, required, 4,
			        k ? kinds : NULL, &arr, &err) == 0) {
				FUZZ_CHECK(arr != NULL || !required);
				if (arr != NULL)
					FUZZ_CHECK(json_array_size(arr) >= 1 &&
					    json_array_size(arr) <= 4);
			} else {
				check_err(&err, field);
			}
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *obj;
	const char *key;
	json_t *value;

	if (!http_text_valid(data, size))
		return 0;
	obj =
	    json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (obj == NULL)
		return 0;
	/* Non-objects too: the readers must refuse them, not crash. */
	read_field(obj, "name");
	read_field(obj, "absent");
	if (json_is_object(obj)) {
		json_object_foreach(obj, key, value)
		{
			read_field(obj, key);
		}
	}
	json_decref(obj);
	return 0;
}
