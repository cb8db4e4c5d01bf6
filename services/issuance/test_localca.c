/* Unit tests for localca.c: the local CA created on first use (RSA and SM2
 * hierarchies, keys 0600 in a 0700 directory, a roots bundle), loaded again
 * unchanged, issuing renewals from CSRs (the subject of the renewed
 * certificate, the reserved serial and validity, the SM2 CA for SM2 keys),
 * refusing bad requests, and signing CRLs that verify. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto.h"
#include "util.h"
#include "vendor.h"

static char dir[64];

static int
setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/caplat-test-localca-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *
ca_dir(void)
{
	return xasprintf("%s/ca", dir);
}

/* A certificate of the API.md profile to renew, self-signed for brevity,
 * and its key. */
static void
make_renewed(enum crypto_key_type type, struct crypto_key **key, char **pem)
{
	const struct crypto_subject s = {"CN", "福州某某建设工程有限公司",
	    "master", "张三", "91350100M000100Y43"};
	const struct crypto_issue_spec spec = {"0A1B", time(NULL) - 86400,
	    time(NULL) + 30 * 86400, 0, -1, NULL};

	assert_int_equal(crypto_key_generate(key, type), 0);
	assert_int_equal(crypto_cert_create(pem, *key, &s, NULL, *key, &spec),
	    0);
}

static void
test_open_creates_once(void **state)
{
	struct localca *a, *b;
	char err[256], *d = ca_dir(), *path;
	struct stat st;

	assert_int_equal(localca_open(&a, d, "", err, sizeof(err)), 0);
	assert_int_equal(stat(d, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	for (int i = 0; i < 2; i++) {
		const char *names[] = {"rsa", "sm2"};
		const char *files[] = {"root.key", "ca.key"};
		for (int f = 0; f < 2; f++) {
			path = xasprintf("%s/%s-%s.pem", d, names[i], files[f]);
			assert_int_equal(stat(path, &st), 0);
			assert_int_equal(st.st_mode & 0777, 0600);
			free(path);
		}
	}
	/* opened again: the same CA, not a new one */
	assert_int_equal(localca_open(&b, d, "", err, sizeof(err)), 0);
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "sm2" : "rsa";
		assert_string_equal(localca_find(a, name)
		                        ->root->fingerprint_sha256,
		    localca_find(b, name)->root->fingerprint_sha256);
		assert_string_equal(localca_find(a, name)
		                        ->ca->fingerprint_sha256,
		    localca_find(b, name)->ca->fingerprint_sha256);
	}
	assert_int_equal(localca_find(a, "sm2")->ca->key_type, CRYPTO_KEY_SM2);
	assert_int_equal(localca_find(a, "rsa")->ca->key_type, CRYPTO_KEY_RSA);
	assert_null(localca_find(a, "ec"));
	assert_true(localca_issues(a, localca_find(a, "sm2")->ca->subject_dn));
	assert_false(
	    localca_issues(a, localca_find(a, "sm2")->root->subject_dn));
	localca_free(a);
	localca_free(b);
	free(d);
}

static void
test_issue_renewals(void **state)
{
	static const struct {
		enum crypto_key_type type;
		const char *ca;
	} cases[] = {
	    {CRYPTO_KEY_RSA, "rsa"},
	    {CRYPTO_KEY_SM2, "sm2"},
	    {CRYPTO_KEY_EC_P256, "rsa"},
	};
	struct crypto_trust *trust;
	struct localca *lca;
	char err[256], *d = ca_dir(), *roots = xasprintf("%s/roots.pem", d);
	time_t now = time(NULL);

	assert_int_equal(localca_open(&lca, d,
	                     "http://gw.test/api/v1/certs/crl/", err,
	                     sizeof(err)),
	    0);
	assert_int_equal(crypto_trust_load(&trust, roots), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct crypto_key *old_key, *new_key;
		struct crypto_cert *old, *got;
		char *old_pem, *csr, *cert = NULL, *chain = NULL;

		make_renewed(cases[i].type, &old_key, &old_pem);
		assert_int_equal(crypto_cert_parse(&old, old_pem, NULL), 0);
		assert_int_equal(crypto_key_generate(&new_key, cases[i].type),
		    0);
		assert_int_equal(crypto_csr_create(&csr, new_key, old), 0);
		const struct vendor_cert_request r = {"req-1", "5F00AA", csr,
		    old_pem, now - 300, now + 400 * 86400};
		assert_int_equal(localca_issue(lca, &r, &cert, &chain, err,
		                     sizeof(err)),
		    0);
		assert_int_equal(crypto_cert_parse(&got, cert, chain), 0);
		assert_string_equal(got->serial, "5F00AA");
		assert_int_equal(got->not_before, now - 300);
		assert_int_equal(got->not_after, now + 400 * 86400);
		assert_string_equal(got->subject_dn, old->subject_dn);
		assert_string_equal(got->issuer_dn,
		    localca_find(lca, cases[i].ca)->ca->subject_dn);
		assert_int_equal(got->key_type, cases[i].type);
		assert_int_equal(crypto_cert_verify(trust, got, now),
		    CRYPTO_CERT_OK);
		/* the chain: issuing CA first, root last */
		assert_non_null(
		    strstr(chain, localca_find(lca, cases[i].ca)->ca->pem));
		assert_true(
		    strstr(chain, localca_find(lca, cases[i].ca)->ca->pem) <
		    strstr(chain, localca_find(lca, cases[i].ca)->root->pem));
		crypto_cert_free(got);
		free(cert);
		free(chain);
		free(csr);
		crypto_cert_free(old);
		free(old_pem);
		crypto_key_free(old_key);
		crypto_key_free(new_key);
	}
	crypto_trust_free(trust);
	localca_free(lca);
	free(roots);
	free(d);
}

static void
test_issue_refusals(void **state)
{
	struct localca *lca;
	char err[256], *d = ca_dir(), *cert = NULL, *chain = NULL;
	time_t now = time(NULL);

	assert_int_equal(localca_open(&lca, d, "", err, sizeof(err)), 0);
	const struct vendor_cert_request garbage = {"r", "01", "not a csr",
	    NULL, now, now + 86400};
	assert_int_equal(localca_issue(lca, &garbage, &cert, &chain, err,
	                     sizeof(err)),
	    -1);
	assert_string_equal(err, "bad CSR");
	assert_null(cert);
	localca_free(lca);
	free(d);
}

static void
test_crl(void **state)
{
	struct localca *lca;
	char err[256], *d = ca_dir();
	time_t now = time(NULL);
	const struct crypto_crl_entry e[] = {
	    {"5F00AA", now - 60, CRYPTO_CRL_KEY_COMPROMISE}};

	assert_int_equal(localca_open(&lca, d, "", err, sizeof(err)), 0);
	for (int i = 0; i < 2; i++) {
		const struct localca_ca *c =
		    localca_find(lca, i ? "sm2" : "rsa");
		unsigned char *der;
		size_t len;

		assert_int_equal(localca_crl(c, e, 1, now, 24, &der, &len), 0);
		assert_int_equal(crypto_crl_verify(der, len, c->ca), 0);
		assert_int_equal(crypto_crl_verify(der, len, c->root), -1);
		free(der);
	}
	localca_free(lca);
	free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_creates_once),
	    cmocka_unit_test(test_issue_renewals),
	    cmocka_unit_test(test_issue_refusals),
	    cmocka_unit_test(test_crl),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
