/*
 * store_maint.c: maintenance jobs, run by the writer between batches.
 *
 * Every PERIODIC_MS the garbage (a tenth of a second's worth: a short
 * transaction that does not hold publishers up); every second keep-alives,
 * a probe while writes fail, and the backend's tidying (the WAL, free
 * pages, the disk reserve); once a minute a full collection, the
 * idempotency window and the dead-letter bounds.  One function a job.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "array.h"
#include "clock.h"
#include "log.h"
#include "store.h"
#include "store_int.h"

#define KEEPALIVE_MS 1000  /* keep-alives saved, backend tidied */
#define SWEEP_MS     60000 /* full collection, dead-letter bounds */

void
store_known_add(struct store *st, struct sub *sub)
{
	struct known *v = array_grow(st->st_known, &st->st_known_cap,
	    st->st_nknown + 1, sizeof(*v));

	if (v == NULL)
		return; /* its keep-alives are saved no more */
	st->st_known = v;
	st->st_known[st->st_nknown].k_sub = sub_ref(sub);
	st->st_known[st->st_nknown++].k_saved_ka = sub_keepalive_ms(sub);
}

void
store_known_remove(struct store *st, struct sub *sub)
{
	for (size_t i = 0; i < st->st_nknown; i++)
		if (st->st_known[i].k_sub == sub) {
			sub_unref(sub);
			st->st_known[i] = st->st_known[--st->st_nknown];
			return;
		}
}

/* Keep-alives refreshed since they were last saved. */
static enum store_res
job_keepalives(struct store *st)
{
	enum store_res res;

	for (size_t i = 0; i < st->st_nknown; i++) {
		struct known *k = &st->st_known[i];
		int64_t ka = sub_keepalive_ms(k->k_sub);

		if (ka == k->k_saved_ka || sub_store_id(k->k_sub) == 0)
			continue;
		if ((res = st->st_ops->sbo_sub_keepalive(st->st_b,
			 sub_store_id(k->k_sub), ka)) != SR_OK)
			return res;
		k->k_saved_ka = ka;
	}
	return SR_OK;
}

/* Publishes' idempotency keys older than the window. */
static enum store_res
job_idempotency(struct store *st, int64_t now)
{
	return st->st_ops->sbo_idem_expire(st->st_b,
	    now - st->st_cfg->idempotency_window * 1000);
}

/* dead_letter_retention, then dead_letter_max (the newest are kept). */
static enum store_res
job_dead_bounds(struct store *st, int64_t now)
{
	enum store_res res;
	long n = 0;

	if ((res = st->st_ops->sbo_dead_expire(st->st_b,
		 now - st->st_cfg->dead_letter_retention * 1000, &n)) != SR_OK)
		return res;
	if (n > 0)
		log_info("dead letters expired", "count=%ld", n);
	n = 0;
	if ((res = st->st_ops->sbo_dead_trim(st->st_b,
		 st->st_cfg->dead_letter_max, &n)) != SR_OK)
		return res;
	if (n > 0)
		log_warnx("dead letters over dead_letter_max deleted",
		    "count=%ld", n);
	return SR_OK;
}

/* Messages no one needs any more (ALL: not just behind the last change). */
static enum store_res
job_collect(struct store *st, int all)
{
	enum store_res res;
	size_t freed = 0, had;

	if ((res = st->st_ops->sbo_collect(st->st_b, all, st->st_next_seq,
		 &freed)) != SR_OK)
		return res;
	had = atomic_load(&st->st_backlog);
	atomic_fetch_sub(&st->st_backlog, freed > had ? had : freed);
	return SR_OK;
}

/* Outside a transaction: space given back; the disk may take writes again. */
static void
job_tidy(struct store *st)
{
	char lp[LOG_VALUE_MAX];

	if (st->st_ops->sbo_tidy(st->st_b, atomic_load(&st->st_full)) &&
	    atomic_exchange(&st->st_full, 0))
		log_info("disk space back: publishing again", "path=%s",
		    log_value(lp, sizeof(lp), st->st_where));
}

void
store_maintain(struct store *st)
{
	const struct store_backend_ops *ops = st->st_ops;
	int64_t mono = clock_mono_ms(), now = clock_real_ms();
	int sweep = mono >= st->st_next_sweep, second, probe;
	enum store_res res;

	if (mono < st->st_next_periodic)
		return;
	st->st_next_periodic = mono + PERIODIC_MS;
	second = mono >= st->st_next_second;
	/*
	 * Once a write has failed, a small one each second finds out whether
	 * writing works again, with no publish needed to try: /readyz follows
	 * st_fault.
	 */
	probe = second && atomic_load(&st->st_fault) != NULL;
	if ((res = ops->sbo_begin(st->st_b)) != SR_OK ||
	    (probe && (res = ops->sbo_probe(st->st_b)) != SR_OK) ||
	    (second && (res = job_keepalives(st)) != SR_OK) ||
	    (sweep &&
		((res = job_idempotency(st, now)) != SR_OK ||
		    (res = job_dead_bounds(st, now)) != SR_OK)) ||
	    /* After the dead-letter bounds, so that what they free goes now. */
	    (res = job_collect(st, sweep)) != SR_OK ||
	    (res = ops->sbo_commit(st->st_b)) != SR_OK)
		goto fail;
	if (probe)
		store_writable(st);
	if (sweep)
		st->st_next_sweep = mono + SWEEP_MS;
	if (!second)
		return;
	st->st_next_second = mono + KEEPALIVE_MS;
	job_tidy(st);
	return;

fail:
	ops->sbo_rollback(st->st_b);
	atomic_store(&st->st_fault, ops->sbo_error(st->st_b));
	if (res == SR_FULL)
		ops->sbo_full(st->st_b, 0);
	store_log_error(st, "store maintenance failed", res);
}
