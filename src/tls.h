/* tls.h: the HTTPS front end's certificate and key, read and checked at start-up. */
#ifndef HOOKCAST_TLS_H
#define HOOKCAST_TLS_H

#include <stddef.h>

struct tls;

/*
 * Reads CERT_PATH (a PEM certificate, then any intermediates) and KEY_PATH
 * (its PEM private key, unencrypted) and checks them with GnuTLS, which
 * libmicrohttpd serves TLS with.  NULL after a level=error line naming the
 * file and what is wrong with it (missing, unreadable, not PEM, not a
 * pair).  Start-up only.
 */
struct tls *tls_load(const char *cert_path, const char *key_path);

/* NUL-terminated PEM text, valid until tls_free. */
const char *tls_cert(const struct tls *t);
const char *tls_key(const struct tls *t);

/* Wipes the key material and frees everything; NULL-safe. */
void tls_free(struct tls *t);

#endif
