/* check_xfer.c: which HTTP version a delivery asks libcurl for. */
#include <check.h>
#include <curl/curl.h>

#include "xfer.h"
#include "unit.h"

/* https:// is offered HTTP/2 by ALPN while http2 is on; nothing else is. */
START_TEST(https_offers_http2)
{
	ck_assert_int_eq(xfer_http_version(1, "https://127.0.0.1:8443/event"),
	    CURL_HTTP_VERSION_2TLS);
	ck_assert_int_eq(xfer_http_version(1, "HTTPS://hooks.example/in"),
	    CURL_HTTP_VERSION_2TLS);
	ck_assert_int_eq(xfer_http_version(0, "https://127.0.0.1:8443/event"),
	    CURL_HTTP_VERSION_1_1);
}
END_TEST

/* Plain http stays HTTP/1.1 whatever http2 says: never h2c. */
START_TEST(http_stays_http11)
{
	ck_assert_int_eq(xfer_http_version(1, "http://127.0.0.1:8080/event"),
	    CURL_HTTP_VERSION_1_1);
	ck_assert_int_eq(xfer_http_version(0, "http://127.0.0.1:8080/event"),
	    CURL_HTTP_VERSION_1_1);
	/* A scheme that only starts like https is not https. */
	ck_assert_int_eq(xfer_http_version(1, "http://https.example/event"),
	    CURL_HTTP_VERSION_1_1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("xfer");
	TCase *tc = tcase_create("xfer");

	tcase_add_test(tc, https_offers_http2);
	tcase_add_test(tc, http_stays_http11);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
