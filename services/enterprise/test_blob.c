/* Unit tests for blob (the local store, in a temporary directory): put and
 * get, the same bytes stored once, malformed keys (no path traversal), a
 * missing blob, the size cap, and a bad spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "crypto.h"

static char dir[] = "/tmp/caplat-blob-test-XXXXXX";

static int
setup(void **state)
{
	char spec[64], err[256];
	struct blob_store *bs;

	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(spec, sizeof(spec), "local:%s/var/blobs",
	    dir); /* parents made */
	if (blob_store_open(&bs, spec, err, sizeof(err)) != 0)
		return -1;
	*state = bs;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	blob_store_free(*state);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_put_get(void **state)
{
	struct blob_store *bs = *state;
	static const char data[] = "%PDF-1.4 some bytes";
	char sha[65], path[256];
	unsigned char *out = NULL;
	size_t len = 0;
	struct stat st;

	crypto_sha256_hex(data, sizeof(data) - 1, sha);
	assert_int_equal(blob_put(bs, sha, data, sizeof(data) - 1), 0);
	assert_int_equal(blob_put(bs, sha, data, sizeof(data) - 1),
	    0); /* again: no-op */
	snprintf(path, sizeof(path), "%s/var/blobs/%.2s/%s", dir, sha, sha);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, sizeof(data) - 1);
	assert_int_equal(blob_get(bs, sha, 1024, &out, &len), 0);
	assert_int_equal(len, sizeof(data) - 1);
	assert_memory_equal(out, data, len);
	free(out);

	/* Larger than the reader's cap. */
	assert_int_equal(blob_get(bs, sha, 4, &out, &len), -1);
	assert_int_equal(errno, EFBIG);
}

static void
test_bad_keys_and_missing(void **state)
{
	struct blob_store *bs = *state;
	unsigned char *out = NULL;
	size_t len = 0;
	char upper[65];

	memset(upper, 'A', 64);
	upper[64] = '\0';
	assert_int_equal(blob_put(bs, "../../etc/passwd", "x", 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(blob_put(bs, upper, "x", 1), -1);
	assert_int_equal(blob_get(bs, "abc", 10, &out, &len), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(
	    blob_get(bs,
	        "0000000000000000000000000000000000000000000000000000000000000000",
	        10, &out, &len),
	    -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_bad_spec(void **state)
{
	struct blob_store *bs = NULL;
	char err[256];

	assert_int_equal(blob_store_open(&bs, "s3://bucket", err, sizeof(err)),
	    -1);
	assert_true(strlen(err) > 0);
	assert_int_equal(blob_store_open(&bs, "local:", err, sizeof(err)), -1);
	assert_int_equal(blob_store_open(&bs, "local:/proc/caplat-no-such/dir",
	                     err, sizeof(err)),
	    -1);
	assert_null(bs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get),
	    cmocka_unit_test(test_bad_keys_and_missing),
	    cmocka_unit_test(test_bad_spec),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
