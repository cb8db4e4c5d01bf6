/* fuzz_filetype — an upload as enterprise/files.c judges it: the
 * Content-Type header (ent_file_content_type), the magic number
 * (ent_file_sniff) and, once common/filetype.h is in the tree (files15,
 * issue 15 part 5), the structural check filetype_check of the bytes as
 * each of PNG, JPEG and PDF under a pixel limit. Input: the header, '\n',
 * the file. */
#include "fuzz.h"

#include "../../services/enterprise/rules.h"

#if defined(__has_include)
#if __has_include("filetype.h")
#include "filetype.h"
#define FUZZ_HAVE_FILETYPE 1
#endif
#endif

static int
known(const char *t)
{
	return t == NULL || strcmp(t, "image/jpeg") == 0 ||
	    strcmp(t, "image/png") == 0 || strcmp(t, "application/pdf") == 0;
}

#ifdef FUZZ_HAVE_FILETYPE
/* A file accepted is within the pixel limit, an image has both sides. */
static void
structure(const char *data, size_t len)
{
	static const enum filetype types[] = {FILETYPE_PNG, FILETYPE_JPEG,
	    FILETYPE_PDF};
	const uint64_t max_pixels = 1u << 24;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct filetype_info info;
		enum filetype_reason r;

		memset(&info, 0xa5, sizeof(info));
		r = filetype_check(types[i], data, len, max_pixels, &info);
		FUZZ_CHECK(filetype_reason_name(r) != NULL &&
		    filetype_reason_text(r) != NULL);
		if (r == FILETYPE_OK && types[i] != FILETYPE_PDF)
			FUZZ_CHECK(info.width > 0 && info.height > 0 &&
			    (uint64_t)info.width * info.height <= max_pixels);
	}
}
#endif

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[2];
	size_t len;
	char *buf = fuzz_split(data, size, f, 2, &len);

	FUZZ_CHECK(known(ent_file_content_type(f[0])));
	FUZZ_CHECK(known(ent_file_sniff(f[1], len)));
	FUZZ_CHECK(known(ent_file_sniff(data, size)));
#ifdef FUZZ_HAVE_FILETYPE
	/* An exact-size copy, so that ASan sees any read past the end. */
	char *file = malloc(len ? len : 1);
	memcpy(file, f[1], len);
	structure(file, len);
	free(file);
#endif
	free(buf);
	return 0;
}
