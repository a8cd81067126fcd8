/*
 * relay.c - moves bytes between a client socket and its upstream with splice(2), on worker
 * threads (see relay.h).  HAProxy's splice relay is the model.
 *
 * Threads.  Each worker owns an event_base, its sessions and its pipe pool; only the worker's
 * thread touches them.  The main thread hands a session over through the worker's inbox (a
 * mutex-guarded queue) and an eventfd; a worker reports an ended session through the pool's
 * done queue and another eventfd that the main base watches.  So no event_base is ever used
 * from two threads and libevent needs no locking (evthread_use_pthreads() would not help the
 * main base anyway: libevent gives locks only to bases created after it was called).  An
 * eventfd is written only when its queue was empty: the reader drains the eventfd before it
 * takes the whole queue, so a session queued behind others rides on their wake-up (one write
 * and one wake-up per batch, not per session, under load).
 *
 * A caller may also run on the workers (the proxy accepts and handshakes there):
 * relay_start_local() starts a session on the calling worker without a hand-over and reports
 * its end on that worker's thread (through a local queue and an event activated on its own
 * base); relay_pool_each() runs a function on every worker's thread (listeners and resolvers
 * are made and freed there) and waits for all of them.
 *
 * I/O.  Both sockets are registered once, edge-triggered, for read and write (EV_ET): no
 * epoll_ctl() per back-pressure change.  rd_ok/wr_ok remember what the last edge said until a
 * call returns EAGAIN.  A direction reads only into an empty pipe, so EAGAIN from
 * splice(socket -> pipe) always means "socket empty" (with data in the pipe it could also mean
 * "pipe slots full"); while the pipe holds bytes the writer cannot take, that direction does not
 * read: the socket buffers fill and TCP pushes back on the sender.  A pipe is taken from the
 * worker's free list only while it holds data, so an idle session holds none.
 *
 * HTTP (plain forwarding, struct relay_http).  A direction follows a message: `left` is how many
 * bytes are known to belong to it; at 0 the framing says what comes next (dir_next()).  The
 * response head is read into the worker's scratch (a partial one is kept, at most
 * HTTP_HEAD_MAX bytes) and goes out rewritten through dir->buf with the body's first bytes;
 * a chunk-size line is looked at with MSG_PEEK, then spliced with the chunk's data by length.
 *
 * Must not: buffer without bound (at most one pipe, RELAY_SCRATCH bytes and a response head
 * per direction), block, call the caller's callback from a worker thread, or touch a session
 * after reporting it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "log.h"
#include "relay.h"
#include "util.h"

#define RELAY_PIPE_DEFAULT   (64 * 1024)
#define RELAY_PIPE_BULK	     (256 * 1024) /* what a default pipe grows to under a bulk transfer */
#define RELAY_WORKERS_MAX    64
#define RELAY_FREE_PIPES_MAX 256 /* per worker; more are closed when they empty */
#define RELAY_SPARE_SESS_MAX 1024
#define RELAY_BUDGET	     16		 /* syscalls per direction per wake-up, then others' turn */
#define RELAY_SCRATCH	     (64 * 1024) /* copy fallback: per-worker read buffer */
#define RELAY_SPLICE_FLAGS   (SPLICE_F_NONBLOCK | SPLICE_F_MOVE)
#define RELAY_PEEK	     2048 /* what is looked at for a chunk-size line */
#define RELAY_NO_LIMIT	     UINT64_MAX

_Static_assert(RELAY_SCRATCH >= HTTP_HEAD_MAX && RELAY_SCRATCH >= RELAY_PEEK, "scratch too small");
_Static_assert(RELAY_NO_LIMIT == HTTP_BODY_UNBOUNDED, "a close-delimited body has no limit");

const char *const relay_end_name[_RELAY_END_MAX] = {
	[RELAY_END_CLOSED] = "closed",
	[RELAY_END_RESET] = "reset",
	[RELAY_END_IDLE] = "idle",
	[RELAY_END_ERROR] = "error",
	[RELAY_END_SHUTDOWN] = "shutdown",
};

struct relay_pipe {
	int rd, wr; /* rd < 0: none */
	int cap;    /* bytes */
};

/* What a direction's reader sends, as far as the relay follows it. */
enum relay_frame {
	FRAME_RAW,  /* bytes as they come (left is RELAY_NO_LIMIT) */
	FRAME_HEAD, /* HTTP: a response head (1xx ones included) to come */
	FRAME_BODY, /* HTTP: the message body, followed by body */
	FRAME_DONE, /* HTTP: the message has ended; what the reader sends is dropped */
};

/* One direction: reads fd[d], writes fd[!d] (d 0: client -> server). */
struct relay_dir {
	struct relay_pipe pipe; /* held only while in_pipe > 0 */
	size_t in_pipe;
	uint8_t *buf; /* bytes to write before anything else (ours); NULL when len is 0 */
	size_t off, len;
	size_t uncounted; /* how many of buf's first bytes are the caller's own (not relayed) */
	uint64_t left;	  /* bytes the reader may still send (RELAY_NO_LIMIT: any) */
	bool held;	  /* at its message's end, the reader sent more: it is dropped */
	bool eof;  /* the reader said EOF */
	bool shut; /* shutdown(writer, SHUT_WR) done */
	bool copy; /* splice refused (EINVAL): recv/send from now on */
	enum relay_frame frame;
	struct http_body body; /* FRAME_BODY */
	uint8_t *part;	       /* FRAME_HEAD: the start of a head not yet complete */
	size_t part_len;
};

struct relay_sess {
	struct relay_worker *w;
	int fd[2]; /* client, server */
	bool rd_ok[2], wr_ok[2];
	struct event ev[2];
	struct relay_dir dir[2];
	uint64_t last_ms;
	struct relay_counters *counters; /* the caller's */
	relay_done_cb cb;
	void *arg;
	enum relay_end end;
	int err;
	bool local; /* relay_start_local(): reported on its worker's thread */
	bool http_head, http10;		/* struct relay_http's head and http10 */
	bool answered;			/* HTTP: a response head was queued for the client */
	TAILQ_ENTRY(relay_sess) link;	/* worker's sessions, least recently active first */
	STAILQ_ENTRY(relay_sess) qlink; /* inbox, done queue or spare list */
};

TAILQ_HEAD(sess_list, relay_sess);
STAILQ_HEAD(sess_queue, relay_sess);

struct relay_worker {
	struct relay_pool *pool;
	int idx;
	pthread_t thread;
	bool started;
	struct event_base *base;
	int wake_fd;
	struct event *wake_ev, *tick_ev;
	pthread_mutex_t lock; /* inbox, calls, stop */
	struct sess_queue inbox;
	struct relay_call *calls;
	bool stop;
	/* worker thread only: */
	struct sess_list sessions;
	struct sess_queue local_done; /* ended relay_start_local() sessions to report */
	struct event *local_done_ev;
	struct relay_pipe *free_pipes;
	size_t n_free;
	uint8_t *scratch;
	_Atomic size_t n_sessions; /* started on this worker and not ended */
};

/* A function relay_pool_each() runs on a worker's thread. */
struct relay_call {
	relay_each_fn fn;
	void *arg;
};

struct relay_pool {
	struct event_base *main;
	struct relay_opts o;
	int pipe_cap; /* what a new pipe got when probed */
	bool grow;    /* pipes of the default size grow to RELAY_PIPE_BULK under bulk transfers */
	uint32_t tick_ms;
	int n_workers;
	struct relay_worker *w;
	unsigned rr;
	int done_fd;
	struct event *done_ev;
	pthread_mutex_t lock; /* done, calls_left */
	pthread_cond_t calls_cond;
	int calls_left; /* relay_pool_each(): workers that have not run the call yet */
	bool stopped;	/* relay_pool_stop(): the threads are joined */
	struct sess_queue done;
	/* main thread only: */
	struct sess_queue spare;
	size_t n_spare;
	bool dispatching; /* done callbacks are running */
	bool freed;	  /* relay_pool_free() ran in one of them: the dispatcher frees p */
	_Atomic size_t sessions, pipes, pipes_busy;
};

static void efd_signal(int fd)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is already non-zero, the reader wakes anyway. */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("relay: eventfd write: %s", strerror(errno));
}

static void efd_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("relay: eventfd read: %s", strerror(errno));
}

/* ---- pipes ---------------------------------------------------------------------------- */

/* A pipe of about want bytes: 0 or -errno.  *ret is the caller's (close both ends). */
static int pipe_make(int want, struct relay_pipe *ret)
{
	int fds[2], cap;

	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	/*
	 * F_SETPIPE_SZ rounds up to a power-of-two number of pages and fails above
	 * /proc/sys/fs/pipe-max-size; once a user's pipes exceed pipe-user-pages-soft, new pipes
	 * get as little as one page.  So take the size the kernel reports, not the one asked for.
	 */
	cap = fcntl(fds[1], F_SETPIPE_SZ, want);
	if (cap < 0)
		cap = fcntl(fds[1], F_GETPIPE_SZ);
	if (cap <= 0) {
		int err = cap < 0 ? -errno : -EIO;

		close(fds[0]);
		close(fds[1]);
		return err;
	}
	ret->rd = fds[0];
	ret->wr = fds[1];
	ret->cap = cap;
	return 0;
}

static int pipe_get(struct relay_worker *w, struct relay_pipe *ret)
{
	struct relay_pool *p = w->pool;
	int r;

	if (w->n_free > 0) {
		*ret = w->free_pipes[--w->n_free];
	} else {
		r = pipe_make(p->o.pipe_size, ret);
		if (r < 0)
			return r;
		atomic_fetch_add(&p->pipes, 1);
	}
	atomic_fetch_add(&p->pipes_busy, 1);
	return 0;
}

/*
 * A read that half fills the pipe or more is a bulk transfer: a bigger pipe moves it in fewer
 * splices and wake-ups (measured: about a fifth less CPU per byte at 256 KiB than at 64 KiB).
 * Idle and chatty sessions hold no pipe or a small one; a grown pipe keeps its size in the
 * free list.  The kernel may refuse (pipe-user-pages-soft and friends): the pipe stays as it is.
 */
static void pipe_grow(struct relay_pipe *pp)
{
	int cap = fcntl(pp->wr, F_SETPIPE_SZ, RELAY_PIPE_BULK);

	if (cap > pp->cap)
		pp->cap = cap;
}

/* Back to the free list if it is empty and there is room, else closed. */
static void pipe_put(struct relay_worker *w, struct relay_pipe *pp, size_t in_pipe)
{
	struct relay_pool *p = w->pool;

	if (pp->rd < 0)
		return;
	atomic_fetch_sub(&p->pipes_busy, 1);
	if (in_pipe == 0 && w->n_free < RELAY_FREE_PIPES_MAX) {
		w->free_pipes[w->n_free++] = *pp;
	} else {
		close(pp->rd);
		close(pp->wr);
		atomic_fetch_sub(&p->pipes, 1);
	}
	pp->rd = pp->wr = -1;
}

/* ---- sessions (worker thread) --------------------------------------------------------- */

static void account(struct relay_sess *s, int d, size_t n)
{
	atomic_fetch_add_explicit(
		d == 0 ? &s->counters->up : &s->counters->down, n, memory_order_relaxed);
}

static void set_linger0(int fd)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};

	/* close() then sends a RST instead of a FIN: the peer learns the session failed. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

/* Read and drop what fd holds (a bounded amount): closing a socket with unread bytes sends a
 * reset, which can overtake the last bytes its peer has not read yet. */
static void drain(int fd)
{
	char buf[4096];

	for (int k = 0; k < 64 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; k++)
		;
}

/* Close the sockets, give back or close the pipes, free the buffers.  Events already deleted. */
static void sess_release(struct relay_worker *w, struct relay_sess *s, bool reset)
{
	for (int i = 0; i < 2; i++) {
		if (reset) {
			set_linger0(s->fd[i]);
		} else if (s->dir[i].held || s->dir[i].frame == FRAME_DONE) {
			drain(s->fd[i]);
		}
		close(s->fd[i]);
		s->fd[i] = -1;
		pipe_put(w, &s->dir[i].pipe, s->dir[i].in_pipe);
		s->dir[i].in_pipe = 0;
		FREE_AND_NULL(s->dir[i].buf);
		s->dir[i].len = 0;
		FREE_AND_NULL(s->dir[i].part);
		s->dir[i].part_len = 0;
	}
}

/* End s and report it to the main thread; s is not touched afterwards. */
static void sess_end(struct relay_sess *s, enum relay_end end, int err)
{
	struct relay_worker *w = s->w;
	struct relay_pool *p = w->pool;
	bool was_empty;

	event_del(&s->ev[0]);
	event_del(&s->ev[1]);
	sess_release(w, s, end == RELAY_END_RESET || end == RELAY_END_ERROR);
	TAILQ_REMOVE(&w->sessions, s, link);
	atomic_fetch_sub(&w->n_sessions, 1);
	log_debug("relay: session on worker %d ended: %s%s%s", w->idx, relay_end_name[end],
		err ? ": " : "", err ? strerror(err) : "");
	s->end = end;
	s->err = err;
	if (s->local) { /* reported on this thread, from the loop (not from inside s's I/O) */
		STAILQ_INSERT_TAIL(&w->local_done, s, qlink);
		event_active(w->local_done_ev, EV_TIMEOUT, 0);
		return;
	}
	pthread_mutex_lock(&p->lock);
	was_empty = STAILQ_EMPTY(&p->done);
	STAILQ_INSERT_TAIL(&p->done, s, qlink);
	pthread_mutex_unlock(&p->lock);
	if (was_empty) /* else the main thread has a wake-up coming that takes this one too */
		efd_signal(p->done_fd);
}

/* send() what is left in dir->buf: 0 (done or blocked) or -errno. */
static int dir_flush_buf(struct relay_sess *s, int d, bool *moved)
{
	struct relay_dir *dir = &s->dir[d];
	ssize_t n;

	n = send(s->fd[!d], dir->buf + dir->off, dir->len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			s->wr_ok[!d] = false;
			return 0;
		}
		return errno == EINTR ? 0 : -errno;
	}
	if ((size_t)n > dir->uncounted)
		account(s, d, (size_t)n - dir->uncounted);
	dir->uncounted -= MIN((size_t)n, dir->uncounted);
	*moved = true;
	dir->off += (size_t)n;
	dir->len -= (size_t)n;
	if (dir->len == 0) {
		FREE_AND_NULL(dir->buf);
		dir->off = 0;
	}
	return 0;
}

/*
 * splice(pipe -> writer).  EINVAL: the writer cannot take spliced pages - move what the pipe
 * holds into dir->buf and copy from now on.
 */
static int dir_flush_pipe(struct relay_sess *s, int d, bool *moved)
{
	struct relay_dir *dir = &s->dir[d];
	ssize_t n;

	n = splice(dir->pipe.rd, NULL, s->fd[!d], NULL, dir->in_pipe, RELAY_SPLICE_FLAGS);
	if (n < 0) {
		if (errno == EAGAIN) {
			s->wr_ok[!d] = false;
			return 0;
		}
		if (errno == EINTR)
			return 0;
		if (errno != EINVAL)
			return -errno;
		dir->buf = xmalloc(dir->in_pipe);
		n = read(dir->pipe.rd, dir->buf, dir->in_pipe);
		if (n != (ssize_t)dir->in_pipe)
			return n < 0 ? -errno : -EIO;
		dir->off = 0;
		dir->len = dir->in_pipe;
		dir->in_pipe = 0;
		dir->copy = true;
		pipe_put(s->w, &dir->pipe, 0);
		return 0;
	}
	account(s, d, (size_t)n);
	*moved = true;
	dir->in_pipe -= (size_t)n;
	if (dir->in_pipe == 0)
		pipe_put(s->w, &dir->pipe, 0);
	return 0;
}

/* The worker's buffer of RELAY_SCRATCH bytes: only where splice is off or refused, or HTTP. */
static uint8_t *worker_scratch(struct relay_worker *w)
{
	if (!w->scratch)
		w->scratch = xmalloc(RELAY_SCRATCH);
	return w->scratch;
}

/*
 * recv() from direction d's reader (flags: MSG_DONTWAIT added): the bytes (> 0), 0 if there
 * is nothing now - EOF (dir->eof set), EAGAIN (rd_ok cleared) or EINTR - or -errno.
 */
static ssize_t dir_recv(struct relay_sess *s, int d, void *buf, size_t len, int flags)
{
	ssize_t n = recv(s->fd[d], buf, len, flags | MSG_DONTWAIT);

	if (n > 0)
		return n;
	if (n == 0) {
		s->dir[d].eof = true;
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		s->rd_ok[d] = false;
		return 0;
	}
	return errno == EINTR ? 0 : -errno;
}

/* recv() into the worker's scratch, send() at once, keep what the writer refused. */
static int dir_copy(struct relay_sess *s, int d, bool *moved)
{
	struct relay_dir *dir = &s->dir[d];
	uint8_t *scratch = worker_scratch(s->w);
	ssize_t n, m = 0;

	n = dir_recv(s, d, scratch, (size_t)MIN((uint64_t)RELAY_SCRATCH, dir->left), 0);
	if (n <= 0)
		return (int)n;
	*moved = true;
	if (dir->left != RELAY_NO_LIMIT)
		dir->left -= (uint64_t)n;
	if (s->wr_ok[!d]) {
		m = send(s->fd[!d], scratch, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (m < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return -errno;
			if (errno != EINTR)
				s->wr_ok[!d] = false;
			m = 0;
		}
		account(s, d, (size_t)m);
	}
	if (m < n) {
		dir->len = (size_t)(n - m);
		dir->off = 0;
		dir->buf = xmalloc(dir->len);
		memcpy(dir->buf, scratch + m, dir->len);
	}
	return 0;
}

/* splice(reader -> empty pipe).  Takes a pipe first; none to be had: copy this once. */
static int dir_fill(struct relay_sess *s, int d, bool *moved)
{
	struct relay_dir *dir = &s->dir[d];
	ssize_t n;

	if (dir->pipe.rd < 0 && pipe_get(s->w, &dir->pipe) < 0)
		return dir_copy(s, d, moved); /* out of fds or pipe quota: degrade, don't fail */
	n = splice(s->fd[d], NULL, dir->pipe.wr, NULL,
		(size_t)MIN((uint64_t)dir->pipe.cap, dir->left), RELAY_SPLICE_FLAGS);
	if (n > 0) {
		if (n >= dir->pipe.cap / 2 && dir->pipe.cap < RELAY_PIPE_BULK && s->w->pool->grow)
			pipe_grow(&dir->pipe);
		dir->in_pipe = (size_t)n;
		if (dir->left != RELAY_NO_LIMIT)
			dir->left -= (uint64_t)n;
		*moved = true;
		return 0;
	}
	pipe_put(s->w, &dir->pipe, 0);
	if (n == 0) {
		dir->eof = true;
		return 0;
	}
	switch (errno) {
	case EAGAIN: /* the pipe is empty, so this is the socket */
		s->rd_ok[d] = false;
		return 0;
	case EINTR:
		return 0;
	case EINVAL:
		/*
		 * The reader has no splice_read (before Linux 6.5 some socket families returned
		 * EINVAL here instead of falling back to a copy; so do fds that are not sockets).
		 * recv/send through a buffer for the rest of the session.
		 */
		dir->copy = true;
		return 0;
	default:
		return -errno;
	}
}

/*
 * The reader is at its limit (see relay_start()): what it sends now is read and dropped, and
 * the direction is held; its EOF is passed on as usual and its reset ends the session.
 */
static int dir_drop(struct relay_sess *s, int d)
{
	char buf[4096];
	ssize_t n = dir_recv(s, d, buf, sizeof(buf), 0);

	if (n > 0)
		s->dir[d].held = true;
	return n < 0 ? (int)n : 0;
}

/* ---- HTTP exchanges (plain forwarding) --------------------------------------------------- */

/* Append p[0..n) to the bytes dir writes before anything else. */
static void dir_queue(struct relay_dir *dir, const void *p, size_t n)
{
	if (!n)
		return;
	if (dir->off) {
		memmove(dir->buf, dir->buf + dir->off, dir->len);
		dir->off = 0;
	}
	dir->buf = xrealloc(dir->buf, dir->len + n);
	memcpy(dir->buf + dir->len, p, n);
	dir->len += n;
}

/*
 * The server's side of the exchange is over (its response has ended, or is replaced by ours):
 * the client gets its EOF once what is queued for it has gone, and nothing more of the
 * client's reaches the server - its request is complete, or no longer wanted (a server that
 * answered before the body's end; what is in flight is discarded, so that its write cannot
 * reset the session before the client has the response).
 */
static void http_over(struct relay_sess *s)
{
	struct relay_dir *up = &s->dir[0];

	s->dir[1].frame = FRAME_DONE;
	s->dir[1].eof = true;
	up->frame = FRAME_DONE;
	up->left = 0;
	pipe_put(s->w, &up->pipe, up->in_pipe);
	up->in_pipe = 0;
	FREE_AND_NULL(up->buf);
	up->off = up->len = up->uncounted = 0;
}

/* Answer the client with status ourselves (not counted) in place of a response, and end the
 * exchange; the server gets a reset at the close: its request or response was cut. */
static void http_fail(struct relay_sess *s, int status)
{
	struct relay_dir *down = &s->dir[1];
	const char *resp = http_response(status);

	FREE_AND_NULL(down->buf);
	down->off = down->len = 0;
	dir_queue(down, resp, strlen(resp));
	down->uncounted = down->len;
	FREE_AND_NULL(down->part);
	down->part_len = 0;
	s->answered = true;
	set_linger0(s->fd[1]);
	http_over(s);
}

/* FRAME_BODY at left 0: the message has ended, or `left` is what is known to follow. */
static void body_next(struct relay_sess *s, int d)
{
	struct relay_dir *dir = &s->dir[d];

	if (!http_body_done(&dir->body)) {
		dir->left = http_body_take(&dir->body);
	} else if (d == 1) {
		http_over(s);
	} else {
		dir->frame = FRAME_DONE;
	}
}

/*
 * FRAME_BODY, nothing known to follow: a chunk-size line or trailers come.  Look at them
 * (MSG_PEEK) and let the splice take what belongs to the body by length.  The decoder takes
 * at least one byte of what it is shown, so each look moves the stream on.
 */
static int dir_body(struct relay_sess *s, int d)
{
	struct relay_dir *dir = &s->dir[d];
	uint8_t *peek;
	ssize_t n, c;

	body_next(s, d);
	if (dir->frame != FRAME_BODY || dir->left)
		return 0;
	peek = worker_scratch(s->w);
	n = dir_recv(s, d, peek, RELAY_PEEK, MSG_PEEK);
	if (n <= 0)
		return (int)n;
	c = http_body_feed(&dir->body, peek, (size_t)n);
	if (c < 0) {
		if (d == 0 && !s->answered) {
			http_fail(s, 400);
			return 0;
		}
		return (int)c; /* a response has begun: both sides are reset */
	}
	dir->left = (uint64_t)c + http_body_take(&dir->body);
	return 0;
}

/*
 * FRAME_HEAD: read what the server sent after the part of a head kept from before, queue
 * each complete head rewritten for the client (1xx ones: not for HTTP/1.0), then the first
 * bytes of the final response's body.  A bad head, or the server's EOF first: 502.
 */
static int dir_head(struct relay_sess *s, int d, bool *moved)
{
	struct relay_dir *dir = &s->dir[d];
	uint8_t *buf = worker_scratch(s->w);
	struct http_response_head rh;
	size_t have = dir->part_len, off = 0, len;
	ssize_t n, r;

	if (have)
		memcpy(buf, dir->part, have);
	n = dir_recv(s, d, buf + have, HTTP_HEAD_MAX - have, 0);
	if (n <= 0) {
		if (dir->eof) /* RFC 9112 8: the response is incomplete */
			http_fail(s, 502);
		return (int)n;
	}
	*moved = true;
	len = have + (size_t)n;
	for (;;) {
		r = http_response_head_parse(buf + off, len - off, s->http_head, &rh);
		if (r <= 0)
			break;
		off += (size_t)r;
		if (!rh.interim || !s->http10) { /* RFC 9110 15.2 */
			dir_queue(dir, rh.client_head, rh.client_len);
			s->answered = true;
		}
		if (!rh.interim)
			break;
		http_response_head_clear(&rh);
	}
	if (r < 0) {
		http_fail(s, 502);
		return 0;
	}
	if (r == 0) {
		dir->part_len = len - off;
		dir->part = xrealloc(dir->part, MAX(dir->part_len, (size_t)1));
		memcpy(dir->part, buf + off, dir->part_len);
		return 0;
	}
	FREE_AND_NULL(dir->part);
	dir->part_len = 0;
	dir->body = rh.body;
	http_response_head_clear(&rh);
	r = http_body_feed(&dir->body, buf + off, len - off);
	if (r < 0) {
		http_fail(s, 502);
		return 0;
	}
	dir_queue(dir, buf + off, (size_t)r);
	dir->frame = FRAME_BODY;
	body_next(s, d);
	return 0;
}

/* left is 0: what comes next from the reader (see enum relay_frame). */
static int dir_next(struct relay_sess *s, int d, bool *moved)
{
	switch (s->dir[d].frame) {
	case FRAME_HEAD:
		return dir_head(s, d, moved);
	case FRAME_BODY:
		return dir_body(s, d);
	default:
		return dir_drop(s, d);
	}
}

/*
 * Move what can be moved in direction d now: 0 or -errno.  *moved: some byte moved;
 * *more: the budget ran out while there was still work (the caller comes back later).
 */
static int dir_pump(struct relay_sess *s, int d, bool *moved, bool *more)
{
	struct relay_dir *dir = &s->dir[d];
	int r = 0;

	for (int round = 0; round < RELAY_BUDGET; round++) {
		if (dir->len > 0) {
			if (!s->wr_ok[!d])
				break;
			r = dir_flush_buf(s, d, moved);
		} else if (dir->in_pipe > 0) {
			if (!s->wr_ok[!d])
				break;
			r = dir_flush_pipe(s, d, moved);
		} else if (dir->eof) {
			if (d == 1 && dir->frame != FRAME_RAW)
				http_over(s); /* the server's EOF ends the exchange too */
			if (!dir->shut) {
				/* half-close: EOF passed on after the last byte */
				if (shutdown(s->fd[!d], SHUT_WR) < 0 && errno != ENOTCONN)
					return -errno;
				dir->shut = true;
			}
			break;
		} else if (!s->rd_ok[d]) {
			break;
		} else if (dir->left == 0) {
			r = dir_next(s, d, moved);
		} else if (dir->copy || s->w->pool->o.no_splice) {
			r = dir_copy(s, d, moved);
		} else {
			r = dir_fill(s, d, moved);
		}
		if (r < 0)
			return r;
		if (round == RELAY_BUDGET - 1)
			*more = true;
	}
	return 0;
}

static void sess_touch(struct relay_sess *s)
{
	struct relay_worker *w = s->w;

	s->last_ms = now_ms();
	atomic_store_explicit(&s->counters->last_ms, s->last_ms, memory_order_relaxed);
	if (TAILQ_NEXT(s, link)) {
		TAILQ_REMOVE(&w->sessions, s, link);
		TAILQ_INSERT_TAIL(&w->sessions, s, link);
	}
}

static void sess_fail(struct relay_sess *s, int err)
{
	bool reset = err == ECONNRESET || err == EPIPE;

	sess_end(s, reset ? RELAY_END_RESET : RELAY_END_ERROR, err);
}

static void sess_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_sess *s = arg;
	bool moved = false, more = false;
	int i = fd == s->fd[1], r, soerr = 0;
	socklen_t len = sizeof(soerr);

	if (what & EV_READ)
		s->rd_ok[i] = true;
	if (what & EV_WRITE)
		s->wr_ok[i] = true;
	/*
	 * A socket that is no longer read (EOF seen) and has nothing to write would keep a
	 * reset to itself; epoll reports it as readable, so ask the socket.  With bytes waiting
	 * for it, the next write reports the error anyway (and a half-closed download does not
	 * pay a getsockopt() per write edge).
	 */
	if ((what & EV_READ) && s->dir[i].eof && !s->dir[!i].len && !s->dir[!i].in_pipe &&
		!(i == 1 && s->dir[1].frame == FRAME_DONE) && /* a server done: its reset is moot */
		getsockopt(s->fd[i], SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr) {
		sess_fail(s, soerr);
		return;
	}
	for (int d = 0; d < 2; d++) {
		r = dir_pump(s, d, &moved, &more);
		if (r < 0) {
			sess_fail(s, -r);
			return;
		}
	}
	if (moved)
		sess_touch(s);
	if ((s->dir[0].shut || s->dir[0].held || s->dir[0].frame == FRAME_DONE) && s->dir[1].shut) {
		sess_end(s, RELAY_END_CLOSED, 0);
		return;
	}
	/* Edge-triggered: no new edge will come for data we left; come back after the others. */
	if (more)
		event_active(&s->ev[0], EV_TIMEOUT, 0);
}

static void sess_begin(struct relay_worker *w, struct relay_sess *s)
{
	s->w = w;
	for (int i = 0; i < 2; i++) {
		event_assign(&s->ev[i], w->base, s->fd[i], EV_READ | EV_WRITE | EV_ET | EV_PERSIST,
			sess_io_cb, s);
		if (event_add(&s->ev[i], NULL) < 0) {
			if (i == 1)
				event_del(&s->ev[0]);
			TAILQ_INSERT_TAIL(&w->sessions, s, link);
			sess_end(s, RELAY_END_ERROR, ENOMEM);
			return;
		}
	}
	s->last_ms = now_ms();
	TAILQ_INSERT_TAIL(&w->sessions, s, link);
}

/* ---- worker thread -------------------------------------------------------------------- */

static void worker_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_worker *w = arg;
	struct sess_queue q = STAILQ_HEAD_INITIALIZER(q);
	struct relay_sess *s;
	struct relay_call *c;
	bool stop;

	efd_drain(fd);
	pthread_mutex_lock(&w->lock);
	stop = w->stop;
	if (!stop)
		STAILQ_CONCAT(&q, &w->inbox);
	c = w->calls;
	w->calls = NULL;
	pthread_mutex_unlock(&w->lock);
	if (c) {
		struct relay_pool *p = w->pool;

		c->fn(w->idx, w->base, c->arg);
		pthread_mutex_lock(&p->lock);
		if (--p->calls_left == 0)
			pthread_cond_signal(&p->calls_cond);
		pthread_mutex_unlock(&p->lock);
	}
	if (stop) {
		event_base_loopbreak(w->base);
		return;
	}
	while ((s = STAILQ_FIRST(&q))) {
		STAILQ_REMOVE_HEAD(&q, qlink);
		sess_begin(w, s);
	}
}

/* Ended relay_start_local() sessions: their callbacks, on this worker's thread. */
static void worker_local_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_worker *w = arg;
	struct sess_queue q = STAILQ_HEAD_INITIALIZER(q);
	struct relay_sess *s;

	STAILQ_CONCAT(&q, &w->local_done);
	while ((s = STAILQ_FIRST(&q))) {
		STAILQ_REMOVE_HEAD(&q, qlink);
		atomic_fetch_sub(&w->pool->sessions, 1);
		s->cb(s->arg, s->end, s->err);
		free(s);
	}
}

/* Coarse idle check: the list is in last-activity order, so only the expired are visited. */
static void worker_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_worker *w = arg;
	uint64_t now = now_ms(), idle = w->pool->o.idle_timeout_ms;
	struct relay_sess *s;

	while ((s = TAILQ_FIRST(&w->sessions)) && now - s->last_ms >= idle) {
		/* bytes stuck for a peer that stopped reading: a FIN would pass for a whole
		 * transfer, a reset says it was cut */
		if (s->dir[0].len || s->dir[0].in_pipe || s->dir[1].len || s->dir[1].in_pipe) {
			set_linger0(s->fd[0]);
			set_linger0(s->fd[1]);
		}
		sess_end(s, RELAY_END_IDLE, 0);
	}
}

static void *worker_main(void *arg)
{
	struct relay_worker *w = arg;

	event_base_dispatch(w->base);
	return NULL;
}

static int worker_init(struct relay_pool *p, int idx)
{
	struct relay_worker *w = &p->w[idx];
	struct timeval tv = {p->tick_ms / 1000, (p->tick_ms % 1000) * 1000};

	w->pool = p;
	w->idx = idx;
	STAILQ_INIT(&w->inbox);
	STAILQ_INIT(&w->local_done);
	TAILQ_INIT(&w->sessions);
	pthread_mutex_init(&w->lock, NULL);
	w->free_pipes = xcalloc(RELAY_FREE_PIPES_MAX, sizeof(*w->free_pipes));
	w->base = event_base_new();
	if (!w->base)
		return -ENOMEM;
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wake_fd < 0)
		return -errno;
	w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, worker_wake_cb, w);
	if (!w->wake_ev || event_add(w->wake_ev, NULL) < 0)
		return -ENOMEM;
	w->local_done_ev = event_new(w->base, -1, 0, worker_local_done_cb, w);
	if (!w->local_done_ev)
		return -ENOMEM;
	if (p->o.idle_timeout_ms) {
		w->tick_ev = event_new(w->base, -1, EV_PERSIST, worker_tick_cb, w);
		if (!w->tick_ev || event_add(w->tick_ev, &tv) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* After the thread was joined (or never started): close and free everything. */
static void worker_clear(struct relay_worker *w)
{
	struct relay_sess *s;

	/* sessions cut by the pool's end: their peers get a reset, not an EOF that would pass
	 * for the end of a whole transfer */
	while ((s = TAILQ_FIRST(&w->sessions))) {
		TAILQ_REMOVE(&w->sessions, s, link);
		event_del(&s->ev[0]);
		event_del(&s->ev[1]);
		sess_release(w, s, true);
		free(s);
	}
	while ((s = STAILQ_FIRST(&w->inbox))) {
		STAILQ_REMOVE_HEAD(&w->inbox, qlink);
		s->dir[0].pipe.rd = s->dir[1].pipe.rd = -1;
		sess_release(w, s, false);
		free(s);
	}
	/* ended, not reported: no callback after relay_pool_stop() */
	while ((s = STAILQ_FIRST(&w->local_done))) {
		STAILQ_REMOVE_HEAD(&w->local_done, qlink);
		free(s);
	}
	while (w->n_free > 0) {
		struct relay_pipe *pp = &w->free_pipes[--w->n_free];

		close(pp->rd);
		close(pp->wr);
		atomic_fetch_sub(&w->pool->pipes, 1);
	}
	free(w->free_pipes);
	free(w->scratch);
	if (w->tick_ev)
		event_free(w->tick_ev);
	if (w->local_done_ev)
		event_free(w->local_done_ev);
	if (w->wake_ev)
		event_free(w->wake_ev);
	if (w->base)
		event_base_free(w->base);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	pthread_mutex_destroy(&w->lock);
}

/* ---- pool (main thread) --------------------------------------------------------------- */

static void pool_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_pool *p = arg;
	struct sess_queue q = STAILQ_HEAD_INITIALIZER(q);
	struct relay_sess *s;

	efd_drain(fd);
	pthread_mutex_lock(&p->lock);
	STAILQ_CONCAT(&q, &p->done);
	pthread_mutex_unlock(&p->lock);
	p->dispatching = true;
	while ((s = STAILQ_FIRST(&q))) {
		STAILQ_REMOVE_HEAD(&q, qlink);
		if (p->freed) { /* relay_pool_free() ran inside a callback: no more callbacks */
			free(s);
			continue;
		}
		atomic_fetch_sub(&p->sessions, 1);
		s->cb(s->arg, s->end, s->err);
		if (!p->freed && p->n_spare < RELAY_SPARE_SESS_MAX) {
			STAILQ_INSERT_HEAD(&p->spare, s, qlink);
			p->n_spare++;
		} else {
			free(s);
		}
	}
	p->dispatching = false;
	if (p->freed)
		free(p);
}

int relay_pool_new(struct event_base *main, const struct relay_opts *o, struct relay_pool **ret)
{
	struct relay_opts def = {0};
	struct relay_pool *p;
	struct relay_pipe probe;
	sigset_t all, old;
	long ncpu;
	int r;

	if (!main || !ret)
		return -EINVAL;
	if (!o)
		o = &def;
	if (o->workers < 0 || o->pipe_size < 0)
		return -EINVAL;
	p = xcalloc(1, sizeof(*p));
	p->main = main;
	p->o = *o;
	p->done_fd = -1;
	STAILQ_INIT(&p->done);
	STAILQ_INIT(&p->spare);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->calls_cond, NULL);
	if (!p->o.pipe_size) {
		p->o.pipe_size = RELAY_PIPE_DEFAULT;
		p->grow = true;
	}
	if (!p->o.workers) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		p->o.workers = ncpu > 0 ? (int)ncpu : 1;
	}
	p->o.workers = MIN(p->o.workers, RELAY_WORKERS_MAX);
	p->tick_ms = MAX(10u, MIN(1000u, p->o.idle_timeout_ms / 8));

	/* Learn the size pipes get here (and fail early if pipes cannot be made at all). */
	r = pipe_make(p->o.pipe_size, &probe);
	if (r < 0)
		goto fail;
	p->pipe_cap = probe.cap;
	close(probe.rd);
	close(probe.wr);

	p->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->done_fd < 0) {
		r = -errno;
		goto fail;
	}
	p->done_ev = event_new(main, p->done_fd, EV_READ | EV_PERSIST, pool_done_cb, p);
	if (!p->done_ev || event_add(p->done_ev, NULL) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	/* Bases are made here, on one thread, before any worker runs. */
	p->w = xcalloc((size_t)p->o.workers, sizeof(*p->w));
	p->n_workers = p->o.workers;
	for (int i = 0; i < p->n_workers; i++)
		p->w[i].wake_fd = -1;
	for (int i = 0; i < p->n_workers; i++) {
		r = worker_init(p, i);
		if (r < 0)
			goto fail;
	}
	/*
	 * Workers block every signal: signals stay with the main thread's handlers, and a
	 * SIGPIPE raised by splice() to a reset socket (splice has no MSG_NOSIGNAL) stays
	 * pending on the worker instead of killing the process.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < p->n_workers; i++) {
		char name[32];

		r = -pthread_create(&p->w[i].thread, NULL, worker_main, &p->w[i]);
		if (r < 0)
			break;
		p->w[i].started = true;
		snprintf(name, sizeof(name), "relay/%d", i);
		name[15] = '\0'; /* the kernel's limit */
		pthread_setname_np(p->w[i].thread, name);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		goto fail;
	*ret = p;
	return 0;
fail:
	relay_pool_free(p);
	return r;
}

void relay_pool_stop(struct relay_pool *p)
{
	if (!p || p->stopped)
		return;
	p->stopped = true;
	for (int i = 0; i < p->n_workers; i++) {
		if (!p->w[i].started)
			continue;
		pthread_mutex_lock(&p->w[i].lock);
		p->w[i].stop = true;
		pthread_mutex_unlock(&p->w[i].lock);
		efd_signal(p->w[i].wake_fd);
	}
	for (int i = 0; i < p->n_workers; i++)
		if (p->w[i].started)
			pthread_join(p->w[i].thread, NULL);
}

void relay_pool_free(struct relay_pool *p)
{
	struct relay_sess *s;

	if (!p)
		return;
	relay_pool_stop(p);
	for (int i = 0; i < p->n_workers; i++)
		worker_clear(&p->w[i]);
	free(p->w);
	/* Ended sessions whose callback did not run: their sockets are closed already. */
	while ((s = STAILQ_FIRST(&p->done))) {
		STAILQ_REMOVE_HEAD(&p->done, qlink);
		free(s);
	}
	while ((s = STAILQ_FIRST(&p->spare))) {
		STAILQ_REMOVE_HEAD(&p->spare, qlink);
		free(s);
	}
	if (p->done_ev)
		event_free(p->done_ev);
	if (p->done_fd >= 0)
		close(p->done_fd);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->calls_cond);
	if (p->dispatching) {
		p->freed = true;
		return;
	}
	free(p);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Least-loaded worker; ties go round-robin so that equal load still spreads. */
static struct relay_worker *pool_pick(struct relay_pool *p)
{
	struct relay_worker *best = NULL;
	size_t best_n = SIZE_MAX;

	for (int k = 0; k < p->n_workers; k++) {
		struct relay_worker *w = &p->w[(p->rr + (unsigned)k) % (unsigned)p->n_workers];
		size_t n = atomic_load(&w->n_sessions);

		if (n < best_n) {
			best = w;
			best_n = n;
		}
	}
	p->rr++;
	return best;
}

static uint8_t *dup_bytes(const void *src, size_t n)
{
	uint8_t *b;

	if (!n)
		return NULL;
	b = xmalloc(n);
	memcpy(b, src, n);
	return b;
}

/* A session for fds, filled from relay_start()'s arguments; not yet on a worker. */
static struct relay_sess *sess_new(int client_fd, int server_fd, const void *to_server,
	size_t n_to_server, const void *to_client, size_t n_to_client,
	const struct relay_http *http, struct relay_counters *counters, relay_done_cb cb,
	void *arg, struct relay_sess *reuse)
{
	struct relay_sess *s = reuse ? reuse : xmalloc(sizeof(*s));

	memset(s, 0, sizeof(*s));
	s->fd[0] = client_fd;
	s->fd[1] = server_fd;
	for (int i = 0; i < 2; i++)
		s->dir[i].pipe.rd = s->dir[i].pipe.wr = -1;
	s->dir[0].buf = dup_bytes(to_server, n_to_server);
	s->dir[0].len = n_to_server;
	s->dir[1].buf = dup_bytes(to_client, n_to_client);
	s->dir[1].len = n_to_client;
	s->dir[1].uncounted = n_to_client; /* the caller's reply, not the server's bytes */
	if (http) {
		s->http_head = http->head;
		s->http10 = http->http10;
		s->dir[0].frame = FRAME_BODY;
		s->dir[0].body = http->request;
		body_next(s, 0);
		s->dir[1].frame = FRAME_HEAD;
	} else {
		s->dir[0].left = s->dir[1].left = RELAY_NO_LIMIT;
	}
	s->counters = counters;
	s->cb = cb;
	s->arg = arg;
	return s;
}

static int start_check(struct relay_pool *p, int client_fd, int server_fd, const void *to_server,
	size_t n_to_server, const void *to_client, size_t n_to_client,
	struct relay_counters *counters, relay_done_cb cb)
{
	int r;

	if (!p || client_fd < 0 || server_fd < 0 || client_fd == server_fd || !counters || !cb ||
		(n_to_server && !to_server) || (n_to_client && !to_client))
		return -EINVAL;
	r = set_nonblock(client_fd);
	if (r < 0)
		return r;
	return set_nonblock(server_fd);
}

int relay_start(struct relay_pool *p, int client_fd, int server_fd, const void *to_server,
	size_t n_to_server, const void *to_client, size_t n_to_client,
	const struct relay_http *http, struct relay_counters *counters, relay_done_cb cb, void *arg)
{
	struct relay_worker *w;
	struct relay_sess *s;
	bool was_empty;
	int r;

	r = start_check(p, client_fd, server_fd, to_server, n_to_server, to_client, n_to_client,
		counters, cb);
	if (r < 0)
		return r;
	s = STAILQ_FIRST(&p->spare);
	if (s) {
		STAILQ_REMOVE_HEAD(&p->spare, qlink);
		p->n_spare--;
	}
	s = sess_new(client_fd, server_fd, to_server, n_to_server, to_client, n_to_client, http,
		counters, cb, arg, s);

	w = pool_pick(p);
	atomic_fetch_add(&w->n_sessions, 1);
	atomic_fetch_add(&p->sessions, 1);
	pthread_mutex_lock(&w->lock);
	was_empty = STAILQ_EMPTY(&w->inbox);
	STAILQ_INSERT_TAIL(&w->inbox, s, qlink);
	pthread_mutex_unlock(&w->lock);
	if (was_empty) /* else the worker has a wake-up coming that takes this one too */
		efd_signal(w->wake_fd);
	return 0;
}

int relay_start_local(struct relay_pool *p, int worker, int client_fd, int server_fd,
	const void *to_server, size_t n_to_server, const void *to_client, size_t n_to_client,
	const struct relay_http *http, struct relay_counters *counters, relay_done_cb cb,
	void *arg)
{
	struct relay_worker *w;
	struct relay_sess *s;
	int r;

	if (p && (worker < 0 || worker >= p->n_workers))
		return -EINVAL;
	r = start_check(p, client_fd, server_fd, to_server, n_to_server, to_client, n_to_client,
		counters, cb);
	if (r < 0)
		return r;
	w = &p->w[worker];
	s = sess_new(client_fd, server_fd, to_server, n_to_server, to_client, n_to_client, http,
		counters, cb, arg, NULL);
	s->local = true;
	atomic_fetch_add(&w->n_sessions, 1);
	atomic_fetch_add(&p->sessions, 1);
	sess_begin(w, s);
	return 0;
}

int relay_pool_each(struct relay_pool *p, relay_each_fn fn, void *arg)
{
	struct relay_call *calls;

	if (!p || !fn)
		return -EINVAL;
	if (p->stopped) { /* no thread runs the bases: this one may */
		for (int i = 0; i < p->n_workers; i++)
			fn(i, p->w[i].base, arg);
		return 0;
	}
	calls = xcalloc((size_t)p->n_workers, sizeof(*calls));
	pthread_mutex_lock(&p->lock);
	p->calls_left = p->n_workers;
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->n_workers; i++) {
		calls[i] = (struct relay_call){.fn = fn, .arg = arg};
		pthread_mutex_lock(&p->w[i].lock);
		p->w[i].calls = &calls[i];
		pthread_mutex_unlock(&p->w[i].lock);
		efd_signal(p->w[i].wake_fd);
	}
	pthread_mutex_lock(&p->lock);
	while (p->calls_left > 0)
		pthread_cond_wait(&p->calls_cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
	free(calls);
	return 0;
}

size_t relay_pool_sessions(const struct relay_pool *p)
{
	return atomic_load(&p->sessions);
}

size_t relay_pool_pipes(const struct relay_pool *p)
{
	return atomic_load(&p->pipes);
}

size_t relay_pool_pipes_busy(const struct relay_pool *p)
{
	return atomic_load(&p->pipes_busy);
}

int relay_pool_workers(const struct relay_pool *p)
{
	return p->n_workers;
}

size_t relay_pool_worker_sessions(const struct relay_pool *p, int i)
{
	if (i < 0 || i >= p->n_workers)
		return 0;
	return atomic_load(&p->w[i].n_sessions);
}

struct event_base *relay_pool_worker_base(const struct relay_pool *p, int i)
{
	if (i < 0 || i >= p->n_workers)
		return NULL;
	return p->w[i].base;
}

int relay_pool_pipe_size(const struct relay_pool *p)
{
	return p->pipe_cap;
}
