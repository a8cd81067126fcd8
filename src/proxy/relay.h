/*
 * relay.h - the byte relay between a proxied client and its upstream: splice(2) through pipes
 * taken from a per-worker pool, on N worker threads, each with an event_base of its own.
 *
 * A caller on the main thread connects, then relay_start() hands the two connected sockets
 * over and the relay moves bytes both ways until both directions are closed, one side resets,
 * or the session stays idle too long; the end is reported on the main thread's event_base.
 * A caller that runs on the workers themselves (the proxy accepts, parses and connects on
 * each worker's base) starts a session with relay_start_local() on its own worker: no
 * hand-over, and the end is reported on that worker's thread.  The relay never reads a byte it has no room for: while a writer cannot
 * take data, the other side is not read (the kernel's windows push back on the peer).
 */
#ifndef EGRESS_RELAY_H
#define EGRESS_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "httpproxy.h"

struct event_base;

struct relay_opts {
	int workers;		  /* 0: one per online CPU */
	uint32_t idle_timeout_ms; /* 0: none */
	int pipe_size;		  /* bytes, 0: default (64 KiB, 256 KiB under a bulk transfer) */
	bool no_splice;		  /* copy through a buffer instead (benchmarks, tests) */
};

/*
 * Bytes relayed: written by the relay, the to_server bytes of relay_start() included (they
 * are the client's, maybe rewritten), its to_client bytes not (they are the caller's own).
 * The worker writes them (relaxed atomics, on its wake-ups that moved bytes); any thread may
 * read them while the session runs, e.g. for a table of live connections.
 */
struct relay_counters {
	_Atomic uint64_t up, down; /* up: client -> server */
	_Atomic uint64_t last_ms;  /* now_ms() of the last byte moved; 0: none yet */
};

enum relay_end {
	RELAY_END_CLOSED,   /* both directions ended with EOF */
	RELAY_END_RESET,    /* a side reset (ECONNRESET/EPIPE); the other side got a reset too */
	RELAY_END_IDLE,	    /* no byte either way for idle_timeout_ms (reset if bytes were stuck) */
	RELAY_END_ERROR,    /* another socket error; both sides reset */
	RELAY_END_SHUTDOWN, /* reserved: relay_pool_free() ends sessions without a callback */
	_RELAY_END_MAX,
};

extern const char *const relay_end_name[_RELAY_END_MAX];

/* Called on the main base's thread; err: the errno of RELAY_END_ERROR/RESET, else 0. */
typedef void (*relay_done_cb)(void *arg, enum relay_end end, int err);

struct relay_pool;

/*
 * main: the caller's event_base, borrowed until relay_pool_free(); done callbacks run there.
 * o may be NULL (defaults).  Starts the worker threads.  *ret is the caller's.
 * libevent needs no thread locks for this (evthread_use_pthreads() is not required): each
 * worker base is used by its own thread only, and hand-overs go through eventfds.
 */
int relay_pool_new(struct event_base *main, const struct relay_opts *o, struct relay_pool **ret);

/*
 * Stops and joins the workers (main thread; idempotent): from here nothing runs on their
 * bases, whose events the caller may now free from its own thread; no callback of any
 * session runs after.  The bases and sessions stay until relay_pool_free().
 */
void relay_pool_stop(struct relay_pool *p);

/*
 * Stops and joins the workers, closes every session's sockets with a reset (the transfers are
 * cut; an EOF would pass for their end); no callback runs after (nor during) it, not even for
 * sessions that had ended but whose callback had not run yet.
 * NULL is fine.  May be called from a done callback.
 */
void relay_pool_free(struct relay_pool *p);

/*
 * Plain HTTP forwarding (RFC 9112): the relay follows one exchange instead of moving bytes
 * blindly.  The client may send the rest of its request's body and nothing more: what it
 * sends after (another request, which must not reach this origin) is read and dropped.  The
 * server's response head is parsed and passed on rewritten (http_response_head_parse()),
 * 1xx responses before it too (not to an HTTP/1.0 client), then exactly its body; bytes the
 * server sends after it never reach the client, which gets an EOF (it was told
 * "Connection: close").  Content-Length bodies are spliced; chunked ones too, by length,
 * their chunk-size lines read with MSG_PEEK.  A response head that is malformed, frames its
 * body ambiguously or does not come before the server's EOF gets the client a 502 and the
 * server a reset; a malformed chunked request body gets the client a 400 if no response has
 * begun, else both sides a reset (RELAY_END_ERROR, EPROTO), as does a malformed chunked
 * response body.
 */
struct relay_http {
	struct http_body request; /* the request's body after to_server's bytes */
	bool head;		  /* the request is HEAD: the response has no body */
	bool http10;		  /* the client speaks HTTP/1.0 */
};

/*
 * Takes ownership of both fds (connected stream sockets; made nonblocking here).
 * to_server/to_client: bytes to write first (copied; may be NULL/0); to_client is the
 * caller's own reply (a SOCKS reply, "200 Connection established") and does not count in the
 * counters.  http: NULL to relay bytes as they come both ways, else the exchange to follow
 * (see struct relay_http; copied).  counters: owned by the caller, must live until cb ran (or
 * relay_pool_free() returned); the relay only adds to them.
 * Main thread only.  Returns 0 or -errno (then the fds are still the caller's).
 */
int relay_start(struct relay_pool *p, int client_fd, int server_fd, const void *to_server,
	size_t n_to_server, const void *to_client, size_t n_to_client,
	const struct relay_http *http, struct relay_counters *counters, relay_done_cb cb,
	void *arg);

/*
 * As relay_start(), called on worker's own thread (a callback of its base): the session runs
 * on that worker and cb runs on that thread, from its loop (never from inside this call).
 */
int relay_start_local(struct relay_pool *p, int worker, int client_fd, int server_fd,
	const void *to_server, size_t n_to_server, const void *to_client, size_t n_to_client,
	const struct relay_http *http, struct relay_counters *counters, relay_done_cb cb,
	void *arg);

/* Run on each worker's thread, with its index and base. */
typedef void (*relay_each_fn)(int worker, struct event_base *base, void *arg);

/*
 * Runs fn on every worker's thread (between two of its callbacks) and returns once all have
 * run it; after relay_pool_stop(), on the calling thread.  Main thread only.  The caller must
 * hold no lock that the workers' callbacks may wait for (they would never get to fn).
 */
int relay_pool_each(struct relay_pool *p, relay_each_fn fn, void *arg);

/* Worker i's event_base (NULL if out of range): only its thread may use it while it runs. */
struct event_base *relay_pool_worker_base(const struct relay_pool *p, int i);

/* Sessions started whose callback has not run yet (for metrics). */
size_t relay_pool_sessions(const struct relay_pool *p);
/* Pipes allocated (holding data + free in the pools). */
size_t relay_pool_pipes(const struct relay_pool *p);
/* Pipes holding data right now. */
size_t relay_pool_pipes_busy(const struct relay_pool *p);
/* Number of worker threads, and the sessions worker i runs now (0 <= i < workers). */
int relay_pool_workers(const struct relay_pool *p);
size_t relay_pool_worker_sessions(const struct relay_pool *p, int i);
/* Capacity in bytes of the pipes this pool makes (after the kernel's rounding and limits). */
int relay_pool_pipe_size(const struct relay_pool *p);

#endif
