/* fuzz_importfile — a bulk import file of certificate records
 * (issuance/import.c): the UTF-8 check, the CSV and JSON Lines readers,
 * and the cells read as times, platform lists and COPY fields. The body is
 * NUL-terminated as http.c hands it over. */
#include "fuzz.h"

#include "../../services/issuance/issuance.h"

static void
cell(const char *s, struct importfile_buf *copy)
{
	time_t t;
	char pg[32];
	char *platforms;

	for (int date_only = 0; date_only <= 1; date_only++)
		if (importfile_time(s, &t, date_only) == 0)
			importfile_pg_time(t, pg);
	platforms = importfile_platforms(s);
	if (platforms != NULL)
		FUZZ_CHECK(platforms[0] == '{' &&
		    platforms[strlen(platforms) - 1] == '}');
	free(platforms);
	importfile_copy_field(copy, s, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = malloc(size + 1);
	struct importfile_record r;
	struct importfile_reader rd;
	struct importfile_buf copy = {0};
	size_t bad;
	int rc;

	memcpy(body, data, size);
	body[size] = '\0';
	if (importfile_utf8_check(data, size, &bad) != 0) {
		FUZZ_CHECK(bad < size);
		FUZZ_CHECK(importfile_line_of(data, bad) >= 1);
	}
	memset(&r, 0, sizeof(r));
	rd = (struct importfile_reader){body, body + size, 1};
	while ((rc = importfile_csv_next(&rd, &r)) == 1) {
		FUZZ_CHECK(r.n >= 1 && r.line >= 1 && rd.p <= rd.end);
		for (size_t i = 0; i < r.n; i++)
			cell(r.fields[i], &copy);
		importfile_copy_field(&copy, NULL, 1);
	}
	importfile_record_clear(&r);
	free(r.fields);
	memset(&r, 0, sizeof(r));
	rd = (struct importfile_reader){body, body + size, 1};
	while (importfile_jsonl_next(&rd, &r) == 1) {
		const char *k;
		json_t *v;
		FUZZ_CHECK(rd.p <= rd.end);
		json_object_foreach(r.obj, k, v)
		{
			if (json_is_string(v))
				cell(json_string_value(v), &copy);
		}
	}
	importfile_record_clear(&r);
	free(r.fields);
	free(copy.data);
	free(body);
	return 0;
}
