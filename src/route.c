/* route.c: which targets a published message goes to, by topic. */
/*
 * Runs on the delivery thread only (see src/README.md).  A message with
 * topics goes to the targets filed under them in the topic index and to
 * those that take every topic: the work is in proportion to who gets it.
 * A message without topics goes to every target.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

#include "array.h"
#include "log.h"
#include "route.h"
#include "target.h"
#include "topics.h"

struct route {
	struct topic_index *ro_index; /* targets with topics */
	struct target **ro_every;     /* those that take every topic */
	size_t ro_nevery, ro_every_cap;
	struct topic_vec ro_match; /* scratch for one message */
};

struct route *
route_new(void)
{
	struct route *r;

	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->ro_index = topic_index_new()) == NULL) {
		log_error("cannot start delivery", "reason=nomem");
		free(r);
		return NULL;
	}
	return r;
}

void
route_free(struct route *r)
{
	if (r == NULL)
		return;
	topic_index_free(r->ro_index);
	free(r->ro_every);
	free(r->ro_match.v);
	free(r);
}

/* Files T by its topics: 0, or -1 (unchanged) when out of memory. */
static int
route_file(struct route *r, struct target *t)
{
	struct target **v;

	if (t->tg_topics != NULL)
		return topic_index_add(r->ro_index, t->tg_topics, t);
	if ((v = array_grow(r->ro_every, &r->ro_every_cap, r->ro_nevery + 1,
		 sizeof(*v))) == NULL)
		return -1;
	r->ro_every = v;
	t->tg_every = r->ro_nevery;
	r->ro_every[r->ro_nevery++] = t;
	return 0;
}

static void
route_unfile(struct route *r, struct target *t)
{
	struct target *last;

	if (t->tg_topics != NULL) {
		topic_index_remove(r->ro_index, t->tg_topics, t);
		return;
	}
	if (t->tg_every == SIZE_MAX)
		return; /* filed nowhere: see route_retopic */
	assert(t->tg_every < r->ro_nevery && r->ro_every[t->tg_every] == t);
	last = r->ro_every[--r->ro_nevery];
	r->ro_every[t->tg_every] = last;
	last->tg_every = t->tg_every;
}

int
route_add_target(struct dthread *d, struct target *t)
{
	struct target **v;

	if (route_file(d->d_route, t) == -1)
		return -1;
	if ((v = array_grow(d->d_targets, &d->d_targets_cap, d->d_ntargets + 1,
		 sizeof(*v))) == NULL) {
		route_unfile(d->d_route, t);
		return -1;
	}
	d->d_targets = v;
	t->tg_index = d->d_ntargets;
	d->d_targets[d->d_ntargets++] = t;
	return 0;
}

void
route_remove_target(struct dthread *d, struct target *t)
{
	struct target *last;

	assert(t->tg_index < d->d_ntargets && d->d_targets[t->tg_index] == t);
	last = d->d_targets[--d->d_ntargets];

	route_unfile(d->d_route, t);
	d->d_targets[t->tg_index] = last;
	last->tg_index = t->tg_index;
}

struct target *
route_find(struct dthread *d, int64_t id)
{
	for (size_t i = 0; i < d->d_ntargets; i++)
		if (d->d_targets[i]->tg_id == id)
			return d->d_targets[i];
	return NULL;
}

void
route_publish(struct dthread *d, struct msg *m)
{
	const struct topics *topics = msg_topics(m);
	int tight = msg_bytes_alive() > d->d_cfg->max_queued_bytes;
	struct route *r = d->d_route;

	d->d_last_seq = msg_seq(m);
	if (topics == NULL ||
	    topic_index_match(r->ro_index, topics, &r->ro_match) == -1) {
		for (size_t i = 0; i < d->d_ntargets; i++)
			if (topics_match(d->d_targets[i]->tg_topics, topics))
				target_offer(d, d->d_targets[i], m, tight);
	} else {
		for (size_t i = 0; i < r->ro_match.n; i++)
			target_offer(d, r->ro_match.v[i], m, tight);
		for (size_t i = 0; i < r->ro_nevery; i++)
			target_offer(d, r->ro_every[i], m, tight);
	}
	msg_unref(m);
}

void
route_retopic(struct dthread *d, struct target *t, struct topics *topics)
{
	char la[LOG_VALUE_MAX];
	struct topics *old;

	if (topics_equal(topics, t->tg_topics)) {
		topics_unref(topics);
		return;
	}
	route_unfile(d->d_route, t);
	old = t->tg_topics;
	t->tg_topics = topics;
	if (route_file(d->d_route, t) == -1) {
		/* Routed as if for every topic rather than not at all. */
		log_error("new topics not in effect",
		    "address=%s "
		    "reason=nomem",
		    log_value(la, sizeof(la), sub_address(t->tg_sub)));
		topics_unref(t->tg_topics);
		t->tg_topics = NULL;
		if (route_file(d->d_route, t) == -1) {
			t->tg_every = SIZE_MAX;
			sub_set_error(t->tg_sub,
			    "out of memory: not receiving");
		}
	}
	target_keep_topics(d, t, old);
}
