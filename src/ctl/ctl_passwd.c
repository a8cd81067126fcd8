/*
 * ctl_passwd.c - reading a password for `egressctl passwd`: twice without echo from the
 * terminal, or one line of standard input when it is not one (for scripts).
 *
 * What it must not do: keep a password in memory it does not wipe, or echo it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "ctl.h"
#include "util.h"

static void wipe(char *s, size_t cap)
{
	if (s) {
		explicit_bzero(s, cap);
		free(s);
	}
}

/* One line of f without its line end; NULL at EOF or error.  *cap_ret: its allocation. */
static char *read_line(FILE *f, size_t *cap_ret)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);

	*cap_ret = cap;
	if (n < 0) {
		wipe(line, cap);
		return NULL;
	}
	if (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	return line;
}

/* Prompt on the terminal tty and read a line with echo off.  Echo goes off before the
 * prompt shows, so nothing typed after it is echoed or discarded. */
static char *prompt(FILE *tty, const char *what, size_t *cap_ret)
{
	struct termios old, quiet;
	bool restore = false;
	char *line;

	if (tcgetattr(fileno(tty), &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
		restore = tcsetattr(fileno(tty), TCSANOW, &quiet) == 0;
	}
	fputs(what, tty);
	fflush(tty);
	line = read_line(tty, cap_ret);
	if (restore)
		tcsetattr(fileno(tty), TCSANOW, &old);
	fputc('\n', tty);
	return line;
}

char *ctl_read_password(FILE *err)
{
	size_t cap1, cap2;
	char *pw, *again;
	FILE *tty;

	if (!isatty(STDIN_FILENO)) {
		pw = read_line(stdin, &cap1);
		if (!pw || !*pw) {
			fprintf(err, "egressctl: no password on standard input\n");
			wipe(pw, cap1);
			return NULL;
		}
		return pw;
	}
	tty = fopen("/dev/tty", "r+e");
	if (!tty) {
		fprintf(err, "egressctl: /dev/tty: %s\n", strerror(errno));
		return NULL;
	}
	pw = prompt(tty, "New password: ", &cap1);
	again = pw && *pw ? prompt(tty, "Again: ", &cap2) : NULL;
	fclose(tty);
	if (!pw || !*pw) {
		fprintf(err, "egressctl: no password given\n");
		wipe(pw, cap1);
		return NULL;
	}
	if (!again || !streq(pw, again)) {
		fprintf(err, "egressctl: the passwords differ\n");
		wipe(pw, cap1);
		wipe(again, again ? cap2 : 0);
		return NULL;
	}
	wipe(again, cap2);
	return pw;
}
