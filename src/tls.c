/* tls.c: the HTTPS front end's certificate and key, read and checked at start-up. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "log.h"
#include "tls.h"

#define PEM_MAX (1 << 20) /* a certificate chain is a few KiB */

struct tls {
	char *t_cert, *t_key;
	size_t t_cert_len, t_key_len;
};

/* Wipes and frees BUF of LEN bytes (plus its NUL); NULL-safe. */
static void
wipe(char *buf, size_t len)
{
	if (buf == NULL)
		return;
	explicit_bzero(buf, len + 1);
	free(buf);
}

/*
 * The whole of PATH, NUL-terminated, in *OUT.  read(2) rather than stdio,
 * so that no library buffer is left holding a copy of a key.  -1 after a
 * log line naming KEY and PATH.
 */
static int
read_pem(const char *key, const char *path, char **out, size_t *outlen)
{
	char *buf = NULL, lp[LOG_VALUE_MAX], ebuf[128];
	size_t len = 0, cap = 4096;
	ssize_t n;
	int fd;

	log_value(lp, sizeof(lp), path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_error("cannot read TLS file", "%s=%s error=\"%s\"", key, lp,
		    strerror_r(errno, ebuf, sizeof(ebuf)));
		return -1;
	}
	for (;;) {
		if (buf == NULL || len + 1 == cap) {
			char *p;

			if (buf != NULL)
				cap *= 2;
			if (cap > PEM_MAX + 1) {
				log_error("cannot read TLS file",
				    "%s=%s "
				    "error=\"larger than 1 MiB\"",
				    key, lp);
				goto fail;
			}
			/* Not realloc: the old buffer is wiped, not left behind. */
			if ((p = malloc(cap)) == NULL) {
				log_error("cannot read TLS file",
				    "%s=%s "
				    "error=\"out of memory\"",
				    key, lp);
				goto fail;
			}
			if (buf != NULL) {
				memcpy(p, buf, len);
				wipe(buf, len);
			}
			buf = p;
		}
		/* cppcheck-suppress nullPointerArithmeticRedundantCheck
		 * ; buf is never NULL here: the block above allocated it. */
		if ((n = read(fd, buf + len, cap - 1 - len)) == -1) {
			if (errno == EINTR)
				continue;
			log_error("cannot read TLS file", "%s=%s error=\"%s\"",
			    key, lp, strerror_r(errno, ebuf, sizeof(ebuf)));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (len == 0) {
		log_error("cannot read TLS file", "%s=%s error=\"empty\"", key,
		    lp);
		wipe(buf, len);
		return -1;
	}
	*out = buf;
	*outlen = len;
	return 0;

fail:
	close(fd);
	wipe(buf, len);
	return -1;
}

/* The same checks libmicrohttpd makes at start, each failure named. */
static int
check_pair(const struct tls *t, const char *cert_path, const char *key_path)
{
	gnutls_datum_t cert = { (unsigned char *)t->t_cert,
		(unsigned int)t->t_cert_len };
	gnutls_datum_t key = { (unsigned char *)t->t_key,
		(unsigned int)t->t_key_len };
	gnutls_certificate_credentials_t cred;
	gnutls_x509_privkey_t pk;
	gnutls_x509_crt_t *chain;
	char lc[LOG_VALUE_MAX], lk[LOG_VALUE_MAX];
	unsigned int n;
	int rc;

	if ((rc = gnutls_x509_crt_list_import2(&chain, &n, &cert,
		 GNUTLS_X509_FMT_PEM, 0)) < 0) {
		log_error("tls_cert is not a PEM certificate",
		    "tls_cert=%s "
		    "error=\"%s\"",
		    log_value(lc, sizeof(lc), cert_path), gnutls_strerror(rc));
		return -1;
	}
	for (unsigned int i = 0; i < n; i++)
		gnutls_x509_crt_deinit(chain[i]);
	gnutls_free(chain);

	if ((rc = gnutls_x509_privkey_init(&pk)) < 0)
		goto nomem;
	rc = gnutls_x509_privkey_import2(pk, &key, GNUTLS_X509_FMT_PEM, NULL,
	    0);
	gnutls_x509_privkey_deinit(pk);
	if (rc < 0) {
		log_error("tls_key is not an unencrypted PEM private key",
		    "tls_key=%s error=\"%s\"",
		    log_value(lk, sizeof(lk), key_path), gnutls_strerror(rc));
		return -1;
	}

	if ((rc = gnutls_certificate_allocate_credentials(&cred)) < 0)
		goto nomem;
	rc = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key,
	    GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_certificate_free_credentials(cred);
	if (rc < 0) {
		log_error("tls_key does not go with tls_cert",
		    "tls_cert=%s "
		    "tls_key=%s error=\"%s\"",
		    log_value(lc, sizeof(lc), cert_path),
		    log_value(lk, sizeof(lk), key_path), gnutls_strerror(rc));
		return -1;
	}
	return 0;

nomem:
	log_error("cannot check TLS files", "error=\"%s\"",
	    gnutls_strerror(rc));
	return -1;
}

struct tls *
tls_load(const char *cert_path, const char *key_path)
{
	struct tls *t;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		log_error("cannot read TLS files", "error=\"out of memory\"");
		return NULL;
	}
	if (read_pem("tls_cert", cert_path, &t->t_cert, &t->t_cert_len) == -1 ||
	    read_pem("tls_key", key_path, &t->t_key, &t->t_key_len) == -1 ||
	    check_pair(t, cert_path, key_path) == -1) {
		tls_free(t);
		return NULL;
	}
	return t;
}

const char *
tls_cert(const struct tls *t)
{
	return t->t_cert;
}

const char *
tls_key(const struct tls *t)
{
	return t->t_key;
}

void
tls_free(struct tls *t)
{
	if (t == NULL)
		return;
	free(t->t_cert);
	wipe(t->t_key, t->t_key_len);
	free(t);
}
