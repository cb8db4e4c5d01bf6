/* loginbench — USB-key logins per second through the gateway: each thread
 * loops challenge → sign the nonce (as the key would) → login, on one
 * keep-alive connection, for a fixed time. Prints logins/s, p50/p99 of the
 * whole login (both round trips) and the error count. The client's signing
 * runs on the same cores as the suite; its cost is reported apart.
 *
 *   loginbench HOST PORT KEY.pem CERT.pem THREADS SECONDS */
#include "crypto.h"
#include "util.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SAMPLES 2000000

static const char *host;
static int port;
static struct crypto_key *key;
static char *cert_json; /* the certificate as a JSON string literal */
static int64_t deadline_us;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t *samples;
static size_t nsamples;
static long errors, sign_us_total, signs;
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

/* POSTs body to path; returns the response body parsed (new ref) or NULL,
 * and the status in *status. */
static json_t *
post(int *fdp, const char *path, const char *body, int *status)
{
	char head[512], buf[65536];
	size_t have = 0, need;
	char *end, *cl;
	int n = snprintf(head, sizeof(head),
	    "POST %s HTTP/1.1\r\nHost: bench\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	    path, strlen(body));

	if (conn_closing) {
		close(*fdp);
		*fdp = connect_to();
		conn_closing = 0;
	}
	int fd = *fdp;
	if (write(fd, head, (size_t)n) != n ||
	    write(fd, body, strlen(body)) != (ssize_t)strlen(body))
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
	*status = atoi(buf + 9);
	/* nginx closes a keep-alive connection after keepalive_requests
	 * (1000): the worker reconnects instead of writing into it. */
	if (strcasestr(buf, "\r\nConnection: close") != NULL &&
	    strcasestr(buf, "\r\nConnection: close") < end)
		conn_closing = 1;
	cl = strcasestr(buf, "Content-Length:");
	need = (size_t)(end + 4 - buf) + (cl ? (size_t)atol(cl + 15) : 0);
	while (have < need) {
		ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (r <= 0)
			return NULL;
		have += (size_t)r;
	}
	buf[need] = '\0';
	return json_loads(end + 4, 0, NULL);
}

static void *
worker(void *unused)
{
	int fd = connect_to(), *fdp = &fd;

	while (now_mono_us() < deadline_us) {
		int64_t t0 = now_mono_us();
		int status = 0, ok = 0;
		json_t *ch =
		    post(fdp, "/api/v1/auth/ca/challenge", "{}", &status);
		const char *nonce64 =
		    json_string_value(json_object_get(ch, "nonce"));
		const char *id =
		    json_string_value(json_object_get(ch, "challenge_id"));
		unsigned char *nonce, *sig;
		size_t nonce_len, sig_len;

		if (status == 200 && nonce64 && id &&
		    crypto_base64_decode(&nonce, &nonce_len, nonce64,
		        strlen(nonce64)) == 0) {
			int64_t s0 = now_mono_us();
			if (crypto_sign(key, nonce, nonce_len, &sig,
			        &sig_len) != 0)
				fatal("sign failed");
			int64_t s1 = now_mono_us();
			char *sig64 = crypto_base64_encode(sig, sig_len);
			char *body = xasprintf(
			    "{\"challenge_id\":\"%s\",\"certificate\":%s,\"signature\":\"%s\"}",
			    id, cert_json, sig64);
			json_t *r =
			    post(fdp, "/api/v1/auth/ca/login", body, &status);
			const char *st =
			    json_string_value(json_object_get(r, "status"));
			ok = status == 200 && st && strcmp(st, "ok") == 0;
			if (!ok) {
				char *txt =
				    r ? json_dumps(r, JSON_COMPACT) : NULL;
				pthread_mutex_lock(&mu);
				if (first_error[0] == '\0')
					snprintf(first_error,
					    sizeof(first_error),
					    "login: %d %.200s", status,
					    txt ? txt : "");
				pthread_mutex_unlock(&mu);
				free(txt);
			}
			json_decref(r);
			free(body);
			free(sig64);
			free(sig);
			free(nonce);
			pthread_mutex_lock(&mu);
			sign_us_total += s1 - s0;
			signs++;
			pthread_mutex_unlock(&mu);
		}
		if (status != 200 && nonce64 == NULL) {
			pthread_mutex_lock(&mu);
			if (first_error[0] == '\0')
				snprintf(first_error, sizeof(first_error),
				    "challenge: %d", status);
			pthread_mutex_unlock(&mu);
		}
		json_decref(ch);
		pthread_mutex_lock(&mu);
		if (ok && nsamples < MAX_SAMPLES)
			samples[nsamples++] = now_mono_us() - t0;
		else if (!ok)
			errors++;
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

int
main(int argc, char **argv)
{
	if (argc != 7)
		fatal(
		    "usage: loginbench HOST PORT KEY.pem CERT.pem THREADS SECONDS");
	host = argv[1];
	port = atoi(argv[2]);
	if (crypto_key_load_file(&key, argv[3]) != 0)
		fatal("%s: not a key", argv[3]);
	FILE *f = fopen(argv[4], "rb");
	char pem[16384];
	size_t n = f ? fread(pem, 1, sizeof(pem) - 1, f) : 0;
	if (f)
		fclose(f);
	pem[n] = '\0';
	json_t *s = json_string(pem);
	cert_json = json_dumps(s, JSON_ENCODE_ANY);
	json_decref(s);
	int threads = atoi(argv[5]);
	double secs = atof(argv[6]);
	samples = xcalloc(MAX_SAMPLES, sizeof(int64_t));
	deadline_us = now_mono_us() + (int64_t)(secs * 1e6);
	pthread_t *t = xcalloc((size_t)threads, sizeof(pthread_t));
	int64_t start = now_mono_us();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	double elapsed = (double)(now_mono_us() - start) / 1e6;
	qsort(samples, nsamples, sizeof(int64_t), cmp64);
	printf(
	    "%s logins: %zu ok in %.1fs = %.0f logins/s, p50 %.2f ms, p99 %.2f ms, errors %ld, "
	    "client signing %.0f us each\n",
	    crypto_key_type_name(crypto_key_type_of(key)), nsamples, elapsed,
	    (double)nsamples / elapsed,
	    nsamples ? (double)samples[nsamples / 2] / 1000 : 0,
	    nsamples ? (double)samples[nsamples * 99 / 100] / 1000 : 0, errors,
	    signs ? (double)sign_us_total / (double)signs : 0);
	if (first_error[0])
		printf("first error: %s\n", first_error);
	return 0;
}
