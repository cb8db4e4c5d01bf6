/* renewbench — certificate renewals per second through the gateway, and the
 * same kind of CSRs signed by `cfssl serve` as the same-run reference.
 *
 * LIST holds one renewable certificate a line (tests/bench/renewals_setup.py:
 * "cert_id TAB token TAB key.pem TAB cert.pem"). Before the clock starts,
 * every line gets a new key pair of its certificate's type and a CSR with
 * its subject (as the USB key makes them). Then THREADS keep-alive
 * connections each loop: take the next certificate, POST
 * /certs/{id}/renewal/challenge, sign the nonce with the current key, POST
 * /certs/{id}/renewal with the CSR; a renewal is ok on 201. It ends when the
 * list is used up or SECONDS have passed.
 *
 *   renewbench caplat HOST PORT LIST THREADS SECONDS
 *   renewbench cfssl HOST PORT LIST THREADS SECONDS
 *
 * cfssl mode POSTs the same CSRs (cycling through them) to
 * /api/v1/cfssl/sign for SECONDS. Both print one line:
 *   RESULT <mode> <alg> n=<ok> rate=<per s> p50=<ms> p99=<ms> p999=<ms>
 *   errors=<n> secs=<elapsed> client_us=<client crypto per op>
 * RENEWBENCH_BEFORE and RENEWBENCH_AFTER, when set, are shell commands run
 * once the CSRs are made, just before the clock starts, and when it stops.
 * Reports; never fails on time. */
#include "crypto.h"
#include "util.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct item {
	char *cert_id, *token;
	struct crypto_key *key;
	char *csr_json; /* the CSR PEM as a JSON string literal */
};

static const char *host;
static int port;
static int cfssl_mode;
static struct item *items;
static size_t nitems;
static atomic_size_t next_item;
static int64_t deadline_us;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t *samples;
static size_t nsamples;
static long errors, client_us_total, client_ops;
static char first_error[256];

static __thread int conn_closing; /* the server said Connection: close */

static int
connect_to(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	inet_pton(AF_INET, host, &sin.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		fatal("connect %s:%d failed", host, port);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* POSTs body to path (with a bearer token when not NULL); returns the
 * answer parsed (new ref, NULL when not JSON) and its status in *status,
 * 0 when the connection broke. */
static json_t *
post(int *fdp, const char *path, const char *token, const char *body,
    int *status)
{
	char head[1024], auth[600] = "";
	static __thread char buf[262144];
	size_t have = 0, need, blen = strlen(body);
	char *end, *cl;
	int n;

	*status = 0;
	if (token != NULL)
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n",
		    token);
	n = snprintf(head, sizeof(head),
	    "POST %s HTTP/1.1\r\nHost: bench\r\n%s"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	    path, auth, blen);
	if (conn_closing) {
		close(*fdp);
		*fdp = connect_to();
		conn_closing = 0;
	}
	int fd = *fdp;
	if (write(fd, head, (size_t)n) != n ||
	    write(fd, body, blen) != (ssize_t)blen)
		return NULL;
	for (;;) {
		ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (r <= 0)
			return NULL;
		have += (size_t)r;
		buf[have] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL)
			break;
	}
	cl = strcasestr(buf, "Content-Length:");
	need = (size_t)(end + 4 - buf) + (cl ? (size_t)atol(cl + 15) : 0);
	if (need >= sizeof(buf))
		return NULL;
	while (have < need) {
		ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (r <= 0)
			return NULL;
		have += (size_t)r;
	}
	buf[need] = '\0';
	*status = atoi(buf + 9);
	/* nginx closes a keep-alive connection after keepalive_requests
	 * (1000): the worker reconnects instead of writing into it. */
	if (strcasestr(buf, "\r\nConnection: close") != NULL &&
	    strcasestr(buf, "\r\nConnection: close") < end)
		conn_closing = 1;
	return json_loads(end + 4, 0, NULL);
}

static void
note_error(const char *what, int status, json_t *answer)
{
	pthread_mutex_lock(&mu);
	errors++;
	if (first_error[0] == '\0') {
		char *s = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
		snprintf(first_error, sizeof(first_error), "%s: %d %.200s",
		    what, status, s ? s : "");
		free(s);
	}
	pthread_mutex_unlock(&mu);
}

/* One caplat renewal: challenge, signature, renewal. Returns 1 when ok. */
static int
renew_one(int *fdp, const struct item *it)
{
	char path[256];
	int status, ok = 0;
	json_t *ch, *r;
	const char *nonce64, *id;
	unsigned char *nonce, *sig;
	size_t nonce_len, sig_len;

	snprintf(path, sizeof(path), "/api/v1/certs/%s/renewal/challenge",
	    it->cert_id);
	ch = post(fdp, path, it->token, "{}", &status);
	nonce64 = json_string_value(json_object_get(ch, "nonce"));
	id = json_string_value(json_object_get(ch, "challenge_id"));
	if (status != 200 || !nonce64 || !id ||
	    crypto_base64_decode(&nonce, &nonce_len, nonce64,
	        strlen(nonce64)) != 0) {
		note_error("challenge", status, ch);
		json_decref(ch);
		return 0;
	}
	int64_t s0 = now_mono_us();
	if (crypto_sign(it->key, nonce, nonce_len, &sig, &sig_len) != 0)
		fatal("sign failed");
	int64_t s1 = now_mono_us();
	char *sig64 = crypto_base64_encode(sig, sig_len);
	char *body = xasprintf(
	    "{\"challenge_id\":\"%s\",\"csr\":%s,\"signature\":\"%s\"}", id,
	    it->csr_json, sig64);
	snprintf(path, sizeof(path), "/api/v1/certs/%s/renewal", it->cert_id);
	r = post(fdp, path, it->token, body, &status);
	ok = status == 201 &&
	    json_string_value(json_object_get(r, "certificate")) != NULL;
	if (!ok)
		note_error("renewal", status, r);
	json_decref(r);
	json_decref(ch);
	free(body);
	free(sig64);
	free(sig);
	free(nonce);
	pthread_mutex_lock(&mu);
	client_us_total += s1 - s0;
	client_ops++;
	pthread_mutex_unlock(&mu);
	return ok;
}

/* One cfssl signature of a CSR. Returns 1 when ok. */
static int
cfssl_one(int *fdp, const struct item *it)
{
	char *body = xasprintf("{\"certificate_request\":%s}", it->csr_json);
	int status;
	json_t *r = post(fdp, "/api/v1/cfssl/sign", NULL, body, &status);
	int ok = status == 200 && json_is_true(json_object_get(r, "success"));

	if (!ok)
		note_error("cfssl sign", status, r);
	json_decref(r);
	free(body);
	return ok;
}

static void *
worker(void *unused)
{
	int fd = connect_to();

	while (now_mono_us() < deadline_us) {
		size_t i = atomic_fetch_add(&next_item, 1);
		int64_t t0 = now_mono_us();
		int ok;

		if (cfssl_mode)
			i %= nitems;
		else if (i >= nitems)
			break;
		ok = cfssl_mode ? cfssl_one(&fd, &items[i])
		                : renew_one(&fd, &items[i]);
		pthread_mutex_lock(&mu);
		if (ok)
			samples[nsamples++] = now_mono_us() - t0;
		pthread_mutex_unlock(&mu);
		if (!ok) {
			close(fd);
			fd = connect_to();
		}
	}
	close(fd);
	return NULL;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static char *
read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	if (f == NULL)
		fatal("%s: cannot open", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s = xmalloc((size_t)n + 1);
	if (fread(s, 1, (size_t)n, f) != (size_t)n)
		fatal("%s: cannot read", path);
	s[n] = '\0';
	fclose(f);
	return s;
}

static char *
json_literal(const char *s)
{
	json_t *j = json_string(s);
	char *out = json_dumps(j, JSON_ENCODE_ANY);

	json_decref(j);
	return out;
}

/* Reads LIST and makes every line's new key pair and CSR. */
static const char *
load_items(const char *list)
{
	char *text = read_all(list), *save = NULL, *line;
	size_t cap = 0;
	const char *alg = "none";

	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f[4], *p = line;
		struct crypto_cert *cert;
		struct crypto_key *newkey;
		char *certpem, *csr;

		for (int k = 0; k < 4; k++) {
			f[k] = strsep(&p, "\t");
			if (f[k] == NULL)
				fatal("%s: a line needs 4 fields", list);
		}
		if (nitems == cap) {
			cap = cap ? cap * 2 : 256;
			items = realloc(items, cap * sizeof(*items));
			if (items == NULL)
				fatal("out of memory");
		}
		struct item *it = &items[nitems++];
		it->cert_id = xstrdup(f[0]);
		it->token = xstrdup(f[1]);
		if (crypto_key_load_file(&it->key, f[2]) != 0)
			fatal("%s: not a key", f[2]);
		certpem = read_all(f[3]);
		if (crypto_cert_parse(&cert, certpem, NULL) != 0)
			fatal("%s: not a certificate", f[3]);
		if (crypto_key_generate(&newkey, crypto_key_type_of(it->key)) !=
		        0 ||
		    crypto_csr_create(&csr, newkey, cert) != 0)
			fatal("cannot make a CSR for %s", f[3]);
		it->csr_json = json_literal(csr);
		alg = crypto_key_type_name(crypto_key_type_of(it->key));
		free(csr);
		free(certpem);
		crypto_key_free(newkey);
		crypto_cert_free(cert);
	}
	free(text);
	if (nitems == 0)
		fatal("%s: no certificates", list);
	return alg;
}

/* Runs the shell command in the environment variable name, if set: the
 * benchmark's snapshots just before the clock starts and right after. */
static void
run_hook(const char *name)
{
	const char *cmd = getenv(name);

	if (cmd != NULL && *cmd && system(cmd) != 0)
		fprintf(stderr, "renewbench: %s failed\n", name);
}

int
main(int argc, char **argv)
{
	if (argc != 7 ||
	    (strcmp(argv[1], "caplat") != 0 && strcmp(argv[1], "cfssl") != 0))
		fatal("usage: renewbench caplat|cfssl HOST PORT LIST THREADS "
		      "SECONDS");
	cfssl_mode = strcmp(argv[1], "cfssl") == 0;
	host = argv[2];
	port = atoi(argv[3]);
	const char *alg = load_items(argv[4]);
	int threads = atoi(argv[5]);
	double secs = atof(argv[6]);

	samples = xcalloc(cfssl_mode ? 4000000 : nitems, sizeof(int64_t));
	run_hook("RENEWBENCH_BEFORE");
	deadline_us = now_mono_us() + (int64_t)(secs * 1e6);
	pthread_t *t = xcalloc((size_t)threads, sizeof(pthread_t));
	int64_t start = now_mono_us();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	double elapsed = (double)(now_mono_us() - start) / 1e6;
	run_hook("RENEWBENCH_AFTER");
	qsort(samples, nsamples, sizeof(int64_t), cmp64);
#define PCT(q)                                                               \
	(nsamples ? (double)samples[(size_t)((double)nsamples * (q))] / 1000 \
	          : 0)
	printf("RESULT %s %s n=%zu rate=%.1f p50=%.1f p99=%.1f p999=%.1f "
	       "errors=%ld secs=%.1f client_us=%.0f\n",
	    argv[1], alg, nsamples, (double)nsamples / elapsed, PCT(0.5),
	    PCT(0.99), PCT(0.999), errors, elapsed,
	    client_ops ? (double)client_us_total / (double)client_ops : 0);
	if (first_error[0])
		printf("first error: %s\n", first_error);
	return 0;
}
