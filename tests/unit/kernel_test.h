/*
 * kernel_test.h - helpers shared by the unit tests that talk to a real kernel.
 *
 * Those tests run in a private network namespace of their own (unshare(CLONE_NEWNET) in the
 * cmocka group setup); nothing here may touch the host's namespace.
 */
#ifndef EGRESS_KERNEL_TEST_H
#define EGRESS_KERNEL_TEST_H

#include <stdbool.h>

/* Bring lo up in the current namespace: 0 or -1. */
int kt_lo_up(void);

/*
 * Run argv (argv[0] looked up in PATH) with stdout captured, in the namespace netns_fd
 * when >= 0 (else ours); returns its output (caller frees) and its exit status in *status.
 * quiet: send its stderr to /dev/null.  Fails the test if it cannot run it.
 */
char *kt_run_capture(int netns_fd, char *const argv[], bool quiet, int *status);

/*
 * Skip the running test because the kernel lacks a feature egressd treats as optional (it has
 * a fallback, or only some hosts use it); the reason is printed and remembered.  Only for
 * such features: a missing feature egressd needs is a failure, not a skip.
 */
#define kt_skip(...)                                                                      \
	do {                                                                              \
		kt_skip_note(__VA_ARGS__);                                                 \
		skip();                                                                    \
	} while (0)
void kt_skip_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * main's return value from cmocka's count of failed tests: that count when any failed,
 * else 77 when a test was skipped (meson reports the program as SKIP, not OK), else 0.
 * Lists the skipped tests' reasons on stderr.
 */
int kt_exit_status(int failed);

#endif
