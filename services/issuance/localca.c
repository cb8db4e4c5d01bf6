/* localca — the local CA: an RSA and an SM2 hierarchy (root → issuing CA)
 * kept under $CAPLAT_VAR_DIR/ca, created on first use, issuing renewed
 * certificates from CSRs and signing CRLs. All OpenSSL work goes through
 * common/crypto. Synchronous: the adapter (vendor.c) runs it off the loop. */
#include "vendor.h"

#include "crypto.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCALCA_NCAS 2
#define ROOT_YEARS 20
#define CA_YEARS 15
#define MAX_FILE (1024 * 1024)

struct localca {
	char *dir;
	char *crl_base_url;
	struct localca_ca cas[LOCALCA_NCAS];
};

static const struct {
	const char *name;
	enum crypto_key_type type;
	const char *label;
} hierarchies[LOCALCA_NCAS] = {
    {"rsa", CRYPTO_KEY_RSA, "RSA"},
    {"sm2", CRYPTO_KEY_SM2, "SM2"},
};

static char *
path_of(const char *dir, const char *name, const char *what)
{
	return xasprintf("%s/%s-%s.pem", dir, name, what);
}

static int
read_text(const char *path, char **out)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL)
		return -1;
	buf = xmalloc(MAX_FILE + 1);
	n = fread(buf, 1, MAX_FILE, f);
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	return 0;
}

/* Writes text to path atomically (temp file + rename) with mode. */
static int
write_text(const char *path, const char *text, mode_t mode)
{
	char *tmp = xasprintf("%s.tmp", path);
	size_t len = strlen(text);
	int fd, rc = -1;

	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd >= 0) {
		if (write(fd, text, len) == (ssize_t)len && fsync(fd) == 0 &&
		    close(fd) == 0)
			rc = rename(tmp, path);
		else
			close(fd);
	}
	if (rc != 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* Creates one hierarchy's four files. */
static int
create_hierarchy(const char *dir, int i, char *err, size_t err_size)
{
	struct crypto_key *root_key = NULL, *ca_key = NULL;
	struct crypto_cert *root = NULL;
	char cn_root[64], cn_ca[64], serial[33];
	char *root_pem = NULL, *ca_pem = NULL, *pem, *path;
	time_t now = time(NULL);
	int rc = -1;

	snprintf(cn_root, sizeof(cn_root), "caplat local %s root",
	    hierarchies[i].label);
	snprintf(cn_ca, sizeof(cn_ca), "caplat local %s issuing CA",
	    hierarchies[i].label);
	const struct crypto_subject root_subject = {"CN", "caplat local CA",
	    NULL, cn_root, NULL};
	const struct crypto_subject ca_subject = {"CN", "caplat local CA", NULL,
	    cn_ca, NULL};
	struct crypto_issue_spec spec = {serial, now - 3600,
	    now + (time_t)ROOT_YEARS * 365 * 86400, 1, -1, NULL};

	if (crypto_key_generate(&root_key, hierarchies[i].type) != 0 ||
	    crypto_key_generate(&ca_key, hierarchies[i].type) != 0) {
		snprintf(err, err_size, "%s: key generation failed",
		    hierarchies[i].name);
		goto out;
	}
	crypto_random_serial(serial);
	if (crypto_cert_create(&root_pem, root_key, &root_subject, NULL,
	        root_key, &spec) != 0 ||
	    crypto_cert_parse(&root, root_pem, NULL) != 0) {
		snprintf(err, err_size, "%s: cannot make the root",
		    hierarchies[i].name);
		goto out;
	}
	crypto_random_serial(serial);
	spec.not_after = now + (time_t)CA_YEARS * 365 * 86400;
	spec.path_len = 0;
	if (crypto_cert_create(&ca_pem, ca_key, &ca_subject, root, root_key,
	        &spec) != 0) {
		snprintf(err, err_size, "%s: cannot make the issuing CA",
		    hierarchies[i].name);
		goto out;
	}
	/* Keys first, certificates last: a certificate on disk means its
	 * hierarchy is complete. */
	const struct {
		const char *what;
		char *text;
		mode_t mode;
	} files[] = {
	    {"root.key", crypto_key_private_pem(root_key), 0600},
	    {"ca.key", crypto_key_private_pem(ca_key), 0600},
	    {"root.cert", xstrdup(root_pem), 0644},
	    {"ca.cert", xstrdup(ca_pem), 0644},
	};
	rc = 0;
	for (size_t f = 0; f < ARRAY_LEN(files); f++) {
		pem = files[f].text;
		path = path_of(dir, hierarchies[i].name, files[f].what);
		if (rc == 0 && write_text(path, pem, files[f].mode) != 0) {
			snprintf(err, err_size, "%s: %s", path,
			    strerror(errno));
			rc = -1;
		}
		crypto_wipe(pem, strlen(pem));
		free(pem);
		free(path);
	}
out:
	crypto_key_free(root_key);
	crypto_key_free(ca_key);
	crypto_cert_free(root);
	free(root_pem);
	free(ca_pem);
	return rc;
}

static int
load_hierarchy(struct localca *lca, int i, char *err, size_t err_size)
{
	struct localca_ca *c = &lca->cas[i];
	char *root_path = path_of(lca->dir, hierarchies[i].name, "root.cert");
	char *ca_path = path_of(lca->dir, hierarchies[i].name, "ca.cert");
	char *key_path = path_of(lca->dir, hierarchies[i].name, "ca.key");
	char *root_pem = NULL, *ca_pem = NULL;
	int rc = -1;

	c->name = hierarchies[i].name;
	if (read_text(root_path, &root_pem) != 0 ||
	    read_text(ca_path, &ca_pem) != 0 ||
	    crypto_cert_parse(&c->root, root_pem, NULL) != 0 ||
	    crypto_cert_parse(&c->ca, ca_pem, NULL) != 0) {
		snprintf(err, err_size,
		    "%s: cannot read the %s CA certificates", lca->dir,
		    c->name);
		goto out;
	}
	if (crypto_key_load_file(&c->key, key_path) != 0) {
		snprintf(err, err_size, "%s: cannot read the key", key_path);
		goto out;
	}
	c->chain_pem = xasprintf("%s%s", c->ca->pem, c->root->pem);
	rc = 0;
out:
	free(root_path);
	free(ca_path);
	free(key_path);
	free(root_pem);
	free(ca_pem);
	return rc;
}

int
localca_open(struct localca **out, const char *dir, const char *crl_base_url,
    char *err, size_t err_size)
{
	struct localca *lca = xcalloc(1, sizeof(*lca));
	char *lock_path = xasprintf("%s/.lock", dir), *roots = NULL,
	     *roots_path;
	struct stat st;
	int lock_fd, rc = -1;

	lca->dir = xstrdup(dir);
	lca->crl_base_url = xstrdup(crl_base_url ? crl_base_url : "");
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, err_size, "%s: %s", dir, strerror(errno));
		free(lock_path);
		localca_free(lca);
		return -1;
	}
	/* Processes starting together create the CA once. */
	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0) {
		snprintf(err, err_size, "%s: %s", lock_path, strerror(errno));
		goto out;
	}
	for (int i = 0; i < LOCALCA_NCAS; i++) {
		char *ca_path = path_of(dir, hierarchies[i].name, "ca.cert");
		int missing = stat(ca_path, &st) != 0;

		free(ca_path);
		if (missing) {
			if (create_hierarchy(dir, i, err, err_size) != 0)
				goto out;
			log_info(NULL, "msg=local_ca_created ca=%s dir=%s",
			    hierarchies[i].name, dir);
		}
		if (load_hierarchy(lca, i, err, err_size) != 0)
			goto out;
	}
	roots = xstrdup("");
	for (int i = 0; i < LOCALCA_NCAS; i++) {
		char *more = xasprintf("%s%s", roots, lca->cas[i].root->pem);
		free(roots);
		roots = more;
	}
	for (int i = 0; i < LOCALCA_NCAS; i++) {
		char *more = xasprintf("%s%s", roots, lca->cas[i].ca->pem);
		free(roots);
		roots = more;
	}
	roots_path = xasprintf("%s/roots.pem", dir);
	rc = write_text(roots_path, roots, 0644);
	if (rc != 0)
		snprintf(err, err_size, "%s: %s", roots_path, strerror(errno));
	free(roots_path);
out:
	if (lock_fd >= 0)
		close(lock_fd); /* releases the lock */
	free(lock_path);
	free(roots);
	if (rc != 0) {
		localca_free(lca);
		return -1;
	}
	*out = lca;
	return 0;
}

void
localca_free(struct localca *lca)
{
	if (lca == NULL)
		return;
	for (int i = 0; i < LOCALCA_NCAS; i++) {
		crypto_cert_free(lca->cas[i].root);
		crypto_cert_free(lca->cas[i].ca);
		crypto_key_free(lca->cas[i].key);
		free(lca->cas[i].chain_pem);
	}
	free(lca->dir);
	free(lca->crl_base_url);
	free(lca);
}

const struct localca_ca *
localca_find(const struct localca *lca, const char *name)
{
	for (int i = 0; i < LOCALCA_NCAS; i++)
		if (lca->cas[i].name != NULL &&
		    strcmp(lca->cas[i].name, name) == 0)
			return &lca->cas[i];
	return NULL;
}

int
localca_issues(const struct localca *lca, const char *issuer_dn)
{
	for (int i = 0; i < LOCALCA_NCAS; i++)
		if (strcmp(lca->cas[i].ca->subject_dn, issuer_dn) == 0)
			return 1;
	return 0;
}

int
localca_issue(const struct localca *lca, const struct vendor_cert_request *r,
    char **cert_pem, char **chain_pem, char *err, size_t err_size)
{
	return localca_issue_csr(lca, r, NULL, cert_pem, chain_pem, err,
	    err_size);
}

int
localca_issue_csr(const struct localca *lca,
    const struct vendor_cert_request *r, const struct crypto_csr *parsed,
    char **cert_pem, char **chain_pem, char *err, size_t err_size)
{
	struct crypto_cert *renewed = NULL;
	struct crypto_csr *owned = NULL;
	const struct crypto_csr *csr = parsed;
	const struct localca_ca *c;
	char *crl_url = NULL;
	int rc = -1;

	if (csr == NULL) {
		if (crypto_csr_parse_verify(&owned, r->csr_pem) != 0) {
			snprintf(err, err_size, "bad CSR");
			return -1;
		}
		csr = owned;
	}
	if (csr->key_type == CRYPTO_KEY_OTHER) {
		snprintf(err, err_size, "key type not supported");
		goto out;
	}
	if (r->renewed_pem != NULL &&
	    crypto_cert_parse(&renewed, r->renewed_pem, NULL) != 0) {
		snprintf(err, err_size, "bad renewed certificate");
		goto out;
	}
	c = &lca->cas[csr->key_type == CRYPTO_KEY_SM2 ? 1 : 0];
	if (lca->crl_base_url[0] != '\0')
		crl_url = xasprintf("%s%s.crl", lca->crl_base_url, c->name);
	const struct crypto_issue_spec spec = {r->serial, r->not_before,
	    r->not_after, 0, -1, crl_url};
	if (crypto_cert_issue(cert_pem, csr, renewed, c->ca, c->key, &spec) !=
	    0) {
		snprintf(err, err_size, "signing failed");
		goto out;
	}
	*chain_pem = xstrdup(c->chain_pem);
	rc = 0;
out:
	free(crl_url);
	crypto_cert_free(renewed);
	crypto_csr_free(owned);
	return rc;
}

int
localca_crl(const struct localca_ca *c, const struct crypto_crl_entry *entries,
    size_t n, time_t now, long hours, unsigned char **der, size_t *len)
{
	return crypto_crl_create(der, len, c->ca, c->key, entries, n, now,
	    now + (time_t)hours * 3600, (long)now);
}

/* ---- the directory of what the local CA issued at its desk ---- */

int
localca_directory_add(const struct localca *lca, const char *cert_pem,
    const char *uscc, json_t *meta, char *err, size_t err_size)
{
	char *path = xasprintf("%s/issued.jsonl", lca->dir), *line, buf[4096];
	long seq = 0;
	int fd, rc = -1;
	FILE *f;

	fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) != 0 ||
	    (f = fdopen(fd, "r+")) == NULL) {
		snprintf(err, err_size, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(path);
		return -1;
	}
	while (fgets(buf, sizeof(buf), f) != NULL)
		if (strchr(buf, '\n') != NULL)
			seq++;
	json_object_set_new(meta, "seq", json_integer(seq + 1));
	json_object_set_new(meta, "uscc",
	    uscc ? json_string(uscc) : json_null());
	json_object_set_new(meta, "certificate", json_string(cert_pem));
	line = json_dumps(meta, JSON_COMPACT);
	if (line != NULL && fprintf(f, "%s\n", line) > 0 && fflush(f) == 0 &&
	    fsync(fd) == 0)
		rc = 0;
	else
		snprintf(err, err_size, "%s: %s", path, strerror(errno));
	free(line);
	fclose(f); /* closes fd, releases the lock */
	free(path);
	return rc;
}

int
localca_directory(const struct localca *lca,
    const struct vendor_list_request *r, json_t **items, char **next, int *more,
    char *err, size_t err_size)
{
	char *path = xasprintf("%s/issued.jsonl", lca->dir);
	long since = r->since ? atol(r->since) : 0, last = 0;
	json_t *out = json_array();
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;

	*more = 0;
	if (f == NULL && errno != ENOENT) {
		snprintf(err, err_size, "%s: %s", path, strerror(errno));
		json_decref(out);
		free(path);
		return -1;
	}
	while (f != NULL && getline(&line, &cap, f) > 0) {
		json_t *e = json_loads(line, 0, NULL);
		long seq = (long)json_integer_value(json_object_get(e, "seq"));
		const char *uscc =
		    json_string_value(json_object_get(e, "uscc"));

		if (e == NULL || (r->uscc == NULL && seq <= since) ||
		    (r->uscc != NULL &&
		        (uscc == NULL || strcmp(uscc, r->uscc) != 0))) {
			json_decref(e);
			continue;
		}
		if ((long)json_array_size(out) == r->limit) {
			*more = 1;
			json_decref(e);
			break;
		}
		last = seq;
		json_array_append_new(out, e);
	}
	free(line);
	if (f != NULL)
		fclose(f);
	free(path);
	*items = out;
	*next = last > 0 ? xasprintf("%ld", last) : NULL;
	return 0;
}
