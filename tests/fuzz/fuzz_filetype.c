/* fuzz_filetype — an upload as enterprise/files.c judges it: the
 * Content-Type header (ent_file_content_type) and the bytes
 * (ent_file_sniff). Input: the header, '\n', the file. A type is one of the
 * three static names or NULL. After the merge of files15, common/filetype.c
 * replaces the sniff: this harness then calls its check. */
#include "fuzz.h"

#include "../../services/enterprise/rules.h"

static int
known(const char *t)
{
	return t == NULL || strcmp(t, "image/jpeg") == 0 ||
	    strcmp(t, "image/png") == 0 || strcmp(t, "application/pdf") == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[2];
	size_t len;
	char *buf = fuzz_split(data, size, f, 2, &len);

	FUZZ_CHECK(known(ent_file_content_type(f[0])));
	FUZZ_CHECK(known(ent_file_sniff(f[1], len)));
	FUZZ_CHECK(known(ent_file_sniff(data, size)));
	free(buf);
	return 0;
}
