/*
 * store_restore.c: start-up: saved subscribers back, and the removed settled.
 *
 * Before the writer starts.  Each saved subscriber goes back through
 * subs_restore() (so the map's hooks queue it for the writer, which hands
 * it to delivery once running); one that cannot be put back leaves as if
 * deregistered.  Subscribers removed before a crash (or just now) still
 * owed messages: with dead_letter_on_evict those become dead letters, then
 * their retries, and their rows go.
 */
#include <stdlib.h>

#include <curl/curl.h>

#include "clock.h"
#include "log.h"
#include "store.h"
#include "store_int.h"

struct restoring {
	struct store *rs_st;
	struct subs *rs_subs;
	int64_t rs_now, rs_mono;
	size_t rs_restored, rs_dropped;
	int64_t *rs_skipped;
	size_t rs_nskipped;
	enum store_res rs_res;
};

/* One live subscriber: back into the map, or noted to be dropped. */
static int
restore_one(void *arg, const struct sub_saved *saved, int why)
{
	char la[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	struct restoring *rs = arg;
	struct sub_saved sv = *saved;
	CURLU *u = curl_url();
	int64_t *v;

	(void)why;
	/* The keep-alive clock ran on while the daemon was down. */
	sv.keepalive_mono = rs->rs_mono - (rs->rs_now - sv.keepalive_real);
	if (u != NULL &&
	    curl_url_set(u, CURLUPART_URL, sv.url_text, 0) == CURLUE_OK &&
	    subs_restore(rs->rs_subs, &sv, u) == SUBS_ADDED) {
		rs->rs_restored++;
		return 0;
	}
	/* Not listed, so not kept: it leaves as if deregistered. */
	curl_url_cleanup(u);
	log_warnx("saved subscriber not restored: deregistered",
	    "address=%s url=%s", log_value(la, sizeof(la), sv.address),
	    log_value(lv, sizeof(lv), sv.url_text));
	if ((v = realloc(rs->rs_skipped, (rs->rs_nskipped + 1) * sizeof(*v))) ==
	    NULL) {
		log_error("cannot read store", "reason=nomem");
		return -1;
	}
	rs->rs_skipped = v;
	rs->rs_skipped[rs->rs_nskipped++] = sv.store_id;
	return 0;
}

/* One removed subscriber: what it was owed becomes dead letters; it goes. */
static int
drop_one(void *arg, const struct sub_saved *sv, int why)
{
	struct restoring *rs = arg;
	struct store *st = rs->rs_st;
	const struct store_backend_ops *ops = st->st_ops;
	const char *reason = why >= 0 && why <= (int)SUB_GONE ?
	    sub_end_reason((enum sub_end)why) :
	    sub_end_reason(SUB_DEREGISTERED);
	int dead = st->st_cfg->dead_letter_on_evict;

	if ((dead &&
		(rs->rs_res = ops->sbo_dead_range(st->st_b, sv->store_id,
		     sv->address, sv->start, st->st_next_seq - 1, sv->topics,
		     reason, rs->rs_now)) != SR_OK) ||
	    (rs->rs_res = ops->sbo_dead_sub_gone(st->st_b, sv->store_id,
		 sv->address, reason, dead, rs->rs_now)) != SR_OK)
		return -1;
	rs->rs_dropped++;
	return 0;
}

int
store_restore_subs(struct store *st, struct subs *s)
{
	const struct store_backend_ops *ops = st->st_ops;
	char lp[LOG_VALUE_MAX], lv[LOG_VALUE_MAX];
	struct restoring rs = { .rs_st = st,
		.rs_subs = s,
		.rs_now = clock_real_ms(),
		.rs_mono = clock_mono_ms(),
		.rs_res = SR_OK };
	enum store_res res = SR_OK;

	if (ops->sbo_saved_subs(st->st_b, 0, restore_one, &rs) == -1 ||
	    (res = ops->sbo_begin(st->st_b)) != SR_OK)
		goto fail;
	for (size_t i = 0; i < rs.rs_nskipped; i++)
		if ((res = ops->sbo_sub_remove(st->st_b, rs.rs_skipped[i],
			 SUB_DEREGISTERED)) != SR_OK)
			goto fail;
	if (ops->sbo_saved_subs(st->st_b, 1, drop_one, &rs) == -1) {
		res = rs.rs_res;
		goto fail;
	}
	if ((res = ops->sbo_commit(st->st_b)) != SR_OK)
		goto fail;
	free(rs.rs_skipped);
	log_info("store restored", "subscribers=%zu removed_before=%zu",
	    rs.rs_restored, rs.rs_dropped);
	return 0;

fail:
	/* A failed read logged itself; a failed write is logged here. */
	if (res != SR_OK)
		log_error("cannot read store", "path=%s error=%s",
		    log_value(lp, sizeof(lp), st->st_where),
		    log_value(lv, sizeof(lv), ops->sbo_error(st->st_b)));
	ops->sbo_rollback(st->st_b);
	free(rs.rs_skipped);
	return -1;
}
