/* blob — the local-directory blob store: <dir>/<first two hex digits>/<sha256>.
 * A blob is written to a temporary name in its directory, fsynced, renamed
 * into place and the directory fsynced, so a reader sees a whole blob or
 * none, even across crashes and concurrent writers of the same bytes. */
#include "blob.h"

#include "crypto.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct blob_ops {
	int (*put)(struct blob_store *bs, const char *sha256, const void *data,
	    size_t len);
	int (*get)(struct blob_store *bs, const char *sha256, size_t max_len,
	    unsigned char **out, size_t *out_len);
};

struct blob_store {
	const struct blob_ops *ops;
	char dir[1024]; /* local: the root directory */
};

static int
blob_key_ok(const char *sha256)
{
	if (strlen(sha256) != 64)
		return 0;
	for (const char *p = sha256; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static int
write_all(int fd, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int
local_put(struct blob_store *bs, const char *sha256, const void *data,
    size_t len)
{
	char dir[1100], path[1200], tmp[1300], rnd[17];
	struct stat st;
	int fd, saved;

	snprintf(dir, sizeof(dir), "%s/%.2s", bs->dir, sha256);
	snprintf(path, sizeof(path), "%s/%s", dir, sha256);
	if (stat(path, &st) == 0 && (size_t)st.st_size == len)
		return 0;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -1;
	unsigned char r[8];
	crypto_random_bytes(r, sizeof(r));
	for (int i = 0; i < 8; i++)
		snprintf(rnd + 2 * i, 3, "%02x", r[i]);
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%s-%s", dir, sha256, rnd);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return fsync_dir(dir);
}

static int
local_get(struct blob_store *bs, const char *sha256, size_t max_len,
    unsigned char **out, size_t *out_len)
{
	char path[1200];
	struct stat st;
	unsigned char *buf;
	size_t got = 0;
	int fd, saved;

	snprintf(path, sizeof(path), "%s/%.2s/%s", bs->dir, sha256, sha256);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if ((size_t)st.st_size > max_len) {
		close(fd);
		errno = EFBIG;
		return -1;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			saved = n == 0 ? EIO : errno;
			free(buf);
			close(fd);
			errno = saved;
			return -1;
		}
		got += (size_t)n;
	}
	close(fd);
	*out = buf;
	*out_len = got;
	return 0;
}

static const struct blob_ops blob_local_ops = {local_put, local_get};

/* mkdir -p; 0, or -1 with errno set. */
static int
mkdir_parents(const char *dir)
{
	char path[1024];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int
blob_store_open(struct blob_store **out, const char *spec, char *err,
    size_t err_size)
{
	struct blob_store *bs;
	const char *dir;

	if (strncmp(spec, "local:", 6) != 0 || spec[6] == '\0') {
		snprintf(err, err_size,
		    "unknown blob store \"%s\" (want local:<dir>)", spec);
		return -1;
	}
	dir = spec + 6;
	if (strlen(dir) >= sizeof(bs->dir)) {
		snprintf(err, err_size, "blob directory path too long");
		return -1;
	}
	if (mkdir_parents(dir) != 0) {
		snprintf(err, err_size, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (access(dir, W_OK | X_OK) != 0) {
		snprintf(err, err_size, "%s: %s", dir, strerror(errno));
		return -1;
	}
	bs = xcalloc(1, sizeof(*bs));
	bs->ops = &blob_local_ops;
	snprintf(bs->dir, sizeof(bs->dir), "%s", dir);
	*out = bs;
	return 0;
}

void
blob_store_free(struct blob_store *bs)
{
	free(bs);
}

int
blob_put(struct blob_store *bs, const char *sha256, const void *data,
    size_t len)
{
	if (!blob_key_ok(sha256)) {
		errno = EINVAL;
		return -1;
	}
	return bs->ops->put(bs, sha256, data, len);
}

int
blob_get(struct blob_store *bs, const char *sha256, size_t max_len,
    unsigned char **out, size_t *out_len)
{
	if (!blob_key_ok(sha256)) {
		errno = EINVAL;
		return -1;
	}
	return bs->ops->get(bs, sha256, max_len, out, out_len);
}
