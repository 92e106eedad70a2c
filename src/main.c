/*
 * main.c: command line, start-up order, signals and shutdown.
 *
 * DESIGN
 * The main thread waits for signals with sigwaitinfo; daemon.c starts and
 * stops every other thread.  Every signal hookcast handles is blocked
 * before any thread starts, so no asynchronous handler exists at all.  The
 * threads, and the locks in the only orders they nest, are in src/README.md.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>

#include "config.h"
#include "daemon.h"
#include "deliver.h"
#include "log.h"
#include "notify.h"

#define MAX_OVERRIDES 64

/* What the command line asks for besides running: *check in parse_args. */
#define CHECK_CONFIG 1 /* validate and exit */
#define DUMP_CONFIG  2 /* validate, print every key, exit */

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: hookcast [--config FILE] [--listen HOST:PORT]\n"
	    "                [--keepalive-ttl SECONDS] [--reap-interval SECONDS]\n"
	    "                [--max-body BYTES] [--log-level error|warn|info|debug]\n"
	    "                [--KEY VALUE ...] [--check-config] [--dump-config]\n"
	    "                [--version] [--help]\n"
	    "\n"
	    "  -c, --config FILE    read `key value` lines from FILE\n"
	    "  --KEY VALUE          set any configuration key (dashes for underscores),\n"
	    "                       overriding the file; see hookcast.conf for them all\n"
	    "  -t, --check-config   validate the configuration and exit\n"
	    "  --dump-config        validate, print every key with the value in\n"
	    "                       effect (secrets as \"(set)\") and exit\n"
	    "  -v, --version        print the version and exit\n"
	    "  -h, --help           print this help and exit\n"
	    "\n"
	    "HOOKCAST_PUBLISH_TOKEN, HOOKCAST_SUBSCRIBE_TOKEN and HOOKCAST_ADMIN_TOKEN\n"
	    "in the environment override the file's tokens; flags override both.\n");
}

struct override {
	char key[64];
	const char *value;
};

/*
 * Parses argv: -1 to go on, else the status for main to return at once: 0
 * after --help or --version, 2 after a usage error (reported).
 */
static int
parse_args(int argc, char **argv, const char **config_path, int *check,
    struct override *ov, size_t *nov)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value, *eq;
		char key[64];

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(arg, "-v") == 0 || strcmp(arg, "--version") == 0) {
			printf("hookcast %s\n", HOOKCAST_VERSION);
			return 0;
		}
		if (strcmp(arg, "-t") == 0 ||
		    strcmp(arg, "--check-config") == 0) {
			*check = CHECK_CONFIG;
			continue;
		}
		if (strcmp(arg, "--dump-config") == 0) {
			*check = DUMP_CONFIG;
			continue;
		}
		if (strncmp(arg, "--", 2) != 0 && strcmp(arg, "-c") != 0) {
			fprintf(stderr,
			    "hookcast: unexpected argument \"%s\"\n", arg);
			usage(stderr);
			return 2;
		}
		/* --key=value or --key value */
		if ((eq = strchr(arg, '=')) != NULL) {
			snprintf(key, sizeof(key), "%.*s", (int)(eq - arg),
			    arg);
			value = eq + 1;
		} else {
			snprintf(key, sizeof(key), "%s", arg);
			if (i + 1 == argc) {
				fprintf(stderr, "hookcast: %s needs a value\n",
				    arg);
				return 2;
			}
			value = argv[++i];
		}
		if (strcmp(key, "-c") == 0 || strcmp(key, "--config") == 0) {
			*config_path = value;
			continue;
		}
		if (*nov == MAX_OVERRIDES) {
			fprintf(stderr, "hookcast: too many options\n");
			return 2;
		}
		memcpy(ov[*nov].key, key, sizeof(key));
		ov[(*nov)++].value = value;
	}
	return -1;
}

/* The command line, kept: a reload reads the file again, and it wins again. */
struct cmdline {
	const char *path;
	struct override ov[MAX_OVERRIDES];
	size_t nov;
	int check;
};

/*
 * Fills CFG from the config file, then the environment (tokens), then the
 * command line.  -1 (a bad file or combination) or -2 (a bad option), with
 * the reason in ERR.
 */
static int
build_config(struct config *cfg, const struct cmdline *cl,
    char err[CONFIG_ERRLEN])
{
	char why[CONFIG_ERRLEN];

	config_init(cfg);
	if (cl->path != NULL && config_load(cfg, cl->path, err) == -1)
		return -1;
	if (config_load_env(cfg, err) == -1)
		return -1;
	for (size_t i = 0; i < cl->nov; i++)
		if (config_set(cfg, cl->ov[i].key, cl->ov[i].value, why) ==
		    -1) {
			snprintf(err, CONFIG_ERRLEN, "%.60s: %.180s",
			    cl->ov[i].key, why);
			return -2;
		}
	if (config_validate(cfg, why) == -1) {
		snprintf(err, CONFIG_ERRLEN, "%.100s%s%.140s",
		    cl->path ? cl->path : "", cl->path ? ": " : "", why);
		return -1;
	}
	return 0;
}

/*
 * SIGHUP: reads the configuration again and hands it to every part, or
 * refuses it whole (logged) and keeps CUR.  Connections and queued
 * messages are not touched.  Returns the configuration now in force.
 */
static const struct config *
reload(const struct config *cur, const struct cmdline *cl, struct daemon *dm)
{
	char err[CONFIG_ERRLEN], changed[1024], restart[256];
	char lv[LOG_VALUE_MAX];
	const struct config *snap = NULL;
	struct config next;

	if (build_config(&next, cl, err) != 0 ||
	    deliver_check(&next, err) == -1) {
		log_error("reload refused, the running configuration stays",
		    "reason=%s", log_value(lv, sizeof(lv), err));
		goto done;
	}
	config_reconcile(&next, cur, changed, sizeof(changed), restart,
	    sizeof(restart));
	if ((snap = config_share(&next)) == NULL ||
	    daemon_reload(dm, snap) == -1) {
		log_error("reload refused, the running configuration stays",
		    "reason=nomem");
		config_release(snap);
		snap = NULL;
		goto done;
	}
	if (*restart != '\0')
		log_warnx("settings need a restart to change", "keys=\"%s\"",
		    restart);
	log_set_level(snap->log_level);
	log_info("configuration reloaded", "changed=\"%s\"",
	    *changed ? changed : "");
done:
	/* The tokens and secrets of the copy on the stack. */
	explicit_bzero(&next, sizeof(next));
	return snap != NULL ? snap : cur;
}

int
main(int argc, char **argv)
{
	static struct cmdline cl;
	struct config cfg;
	const struct config *cur = &cfg, *next;
	char err[CONFIG_ERRLEN];
	struct daemon *dm;
	struct rlimit rl;
	sigset_t sigs;
	siginfo_t si;
	int rc, sig;

	if ((rc = parse_args(argc, argv, &cl.path, &cl.check, cl.ov,
		 &cl.nov)) != -1)
		return rc;
	if ((rc = build_config(&cfg, &cl, err)) != 0) {
		fprintf(stderr, "hookcast: %s\n", err);
		return rc == -2 ? 2 : 1;
	}
	if (cl.check == DUMP_CONFIG) {
		static char dump[32768];

		config_dump(&cfg, dump, sizeof(dump));
		fputs(dump, stdout);
		return 0;
	}
	if (cl.check == CHECK_CONFIG) {
		printf("hookcast: configuration ok\n");
		return 0;
	}
	log_set_level(cfg.log_level);

	/* Every subscriber connection and client is a descriptor: take them all. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* Before any thread exists, so that every thread inherits the mask. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("cannot initialise libcurl", NULL);
	if ((dm = daemon_start(&cfg, DAEMON_ALL)) == NULL)
		return 1;
	log_info("started",
	    "version=%s keepalive_ttl=%ld reap_interval=%ld "
	    "max_body=%zu",
	    HOOKCAST_VERSION, cfg.keepalive_ttl, cfg.reap_interval,
	    cfg.max_body);
	/* Only now: api_run() has the front end answering, not just bound. */
	notify_ready();

	for (;;) {
		if ((sig = sigwaitinfo(&sigs, &si)) == -1)
			continue;
		if (sig == SIGHUP) {
			notify_reloading();
			/* The first stays with the parts that borrowed it. */
			if ((next = reload(cur, &cl, dm)) != cur && cur != &cfg)
				config_release(cur);
			cur = next;
			notify_ready();
			continue;
		}
		break;
	}

	notify_stopping();
	log_info("stopping", "signal=%s grace_s=%ld",
	    sig == SIGINT ? "SIGINT" : "SIGTERM", cur->shutdown_grace);
	daemon_stop(dm, cur->shutdown_grace * 1000);
	curl_global_cleanup();
	if (cur != &cfg)
		config_release(cur);
	explicit_bzero(&cfg, sizeof(cfg));
	log_info("stopped", NULL);
	return 0;
}
