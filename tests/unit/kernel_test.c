/*
 * kernel_test.c - helpers shared by the unit tests that talk to a real kernel (see the header).
 */
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kernel_test.h"
#include "util.h"

int kt_lo_up(void)
{
	struct ifreq ifr = {0};
	int fd, r = -1;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		r = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
	return r;
}

char *kt_run_capture(int netns_fd, char *const argv[], bool quiet, int *status)
{
	size_t len = 0, cap = 4096;
	char *out = xmalloc(cap);
	int pfd[2];
	pid_t pid;
	ssize_t n;

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) < 0)
			_exit(126);
		dup2(pfd[1], STDOUT_FILENO);
		if (quiet) {
			int null = open("/dev/null", O_WRONLY);

			if (null >= 0)
				dup2(null, STDERR_FILENO);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], out + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 1024) {
			cap *= 2;
			out = xrealloc(out, cap);
		}
	}
	out[len] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, status, 0), pid);
	return out;
}

static char *g_skips;  /* the reasons of kt_skip, one a line */
static int g_n_skips;

void kt_skip_note(const char *fmt, ...)
{
	char *line, *all;
	va_list ap;

	va_start(ap, fmt);
	assert_true(vasprintf(&line, fmt, ap) >= 0);
	va_end(ap);
	fprintf(stderr, "    skipped: %s\n", line);
	assert_true(asprintf(&all, "%s  %s\n", g_skips ? g_skips : "", line) >= 0);
	free(g_skips);
	free(line);
	g_skips = all;
	g_n_skips++;
}

int kt_exit_status(int failed)
{
	if (failed)
		return failed;
	if (!g_n_skips)
		return 0;
	fprintf(stderr, "%d test(s) skipped (exit 77):\n%s", g_n_skips, g_skips);
	return 77;
}
