/*
 * nft.c - egress's nftables layer over libnftables.
 *
 * Builds nft-syntax text, hands it to one long-lived struct nft_ctx in ONE
 * nft_run_cmd_from_buffer() call (one call is one netlink batch, which the kernel commits
 * entirely or not at all) and returns libnftables' error text when it fails.  A small scanner
 * checks that what we send only names tables of ours (egress*).
 *
 * It must not: log above debug, touch a table whose name lacks the egress prefix (except in the
 * explicit ruleset backup/restore), run the nft binary, or keep state beyond the context.
 *
 * libnftables quirks handled here (nftables 1.0.6):
 *  - Output and error buffers are rewound only when read (nft_ctx_get_*_buffer()), and the next
 *    run appends to whatever was not read.  nft_exec() reads both after every run.
 *  - The context opens its netlink socket in nft_ctx_new(): it stays in the network namespace
 *    current at that moment even if the thread later moves (tests create it after unshare()).
 *  - Every statement in a block needs a separator before the closing brace: "table t { chain c
 *    { } }" and "chain c { jump x }" are syntax errors ("expecting newline or semicolon").  We
 *    put the body between newlines so that callers need only terminate their own statements.
 *  - `delete table` of an absent table fails (-ENOENT; `destroy` only exists from 1.0.8), so a
 *    delete is `add table` + `delete table` in one batch, which is a no-op when absent.
 *  - Dry run sends the batch and aborts it, so kernel-side errors (a jump to a missing chain:
 *    ENOENT, more elements than a set's size: ENFILE) are reported in check mode too.
 *  - Errors in text given as a buffer are shown under the buffer's FIRST line, without a line
 *    number; text read from a file gets "file:line:col" and the right line.  Batches therefore
 *    go through a memfd (nft_exec_text()), and the locations are relabelled for the caller.
 *  - The return value is only 0/-1: the errno is recovered from the error text, which has the
 *    form "Error: Could not process rule: <strerror(errno)>" for kernel rejections and
 *    "Error: <strerror(errno)>" for failed lookups (list of a missing table).
 *  - A set element of the wrong type that looks like a name (e.g. "foo" in an ipv4_addr set) is
 *    resolved with getaddrinfo() during evaluation: callers should only emit literal addresses.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <nftables/libnftables.h>

#include "log.h"
#include "nft.h"
#include "util.h"

/* NFT_TABLE_MAXNAMELEN in linux/netfilter/nf_tables.h, including the NUL. */
#define NFT_NAME_MAX 256

struct nft {
	struct nft_ctx *ctx;
};

static const char *const nft_families[] = { "ip", "ip6", "inet", "arp", "bridge", "netdev" };

/* ---- growable buffer ------------------------------------------------------------------ */

void nft_buf_init(struct nft_buf *buf)
{
	buf->cap = 256;
	buf->len = 0;
	buf->data = xmalloc(buf->cap);
	buf->data[0] = '\0';
}

void nft_buf_clear(struct nft_buf *buf)
{
	FREE_AND_NULL(buf->data);
	buf->len = 0;
	buf->cap = 0;
}

void nft_buf_reset(struct nft_buf *buf)
{
	buf->len = 0;
	if (buf->data)
		buf->data[0] = '\0';
}

/* Make room for n more characters plus the NUL. */
static void nft_buf_reserve(struct nft_buf *buf, size_t n)
{
	size_t cap = buf->cap ? buf->cap : 256;

	if (buf->data && buf->len + n + 1 <= cap)
		return;
	while (buf->len + n + 1 > cap)
		cap *= 2;
	buf->data = xrealloc(buf->data, cap);
	if (!buf->cap)
		buf->data[0] = '\0';
	buf->cap = cap;
}

void nft_buf_add(struct nft_buf *buf, const char *s)
{
	size_t n = strlen(s);

	nft_buf_reserve(buf, n);
	memcpy(buf->data + buf->len, s, n + 1);
	buf->len += n;
}

void nft_buf_vprintf(struct nft_buf *buf, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	nft_buf_reserve(buf, 0);
	va_copy(aq, ap);
	n = vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, aq);
	va_end(aq);
	if (n < 0)
		fatalx("nft_buf: bad format \"%s\"", fmt);
	if ((size_t)n >= buf->cap - buf->len) {
		nft_buf_reserve(buf, (size_t)n);
		vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, ap);
	}
	buf->len += (size_t)n;
}

void nft_buf_printf(struct nft_buf *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	nft_buf_vprintf(buf, fmt, ap);
	va_end(ap);
}

char *nft_buf_steal(struct nft_buf *buf)
{
	char *s = buf->data;

	nft_buf_init(buf);
	return s;
}

/* *err = formatted message (caller frees), when err is not NULL. */
static void set_err(char **err, const char *fmt, ...) LOG_PRINTF(2, 3);
static void set_err(char **err, const char *fmt, ...)
{
	struct nft_buf b;
	va_list ap;

	if (!err)
		return;
	nft_buf_init(&b);
	va_start(ap, fmt);
	nft_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	*err = b.data;
}

/* ---- names ---------------------------------------------------------------------------- */

int nft_family_valid(const char *family)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(nft_families); i++)
		if (streq(family, nft_families[i]))
			return 1;
	return 0;
}

/* nft's identifier: ({letter}|[_.])({letter}|{digit}|[/\-_\.])*; we leave out '/'. */
static int name_char_ok(char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '.')
		return 1;
	return !first && ((c >= '0' && c <= '9') || c == '-');
}

int nft_table_name_check(const char *name)
{
	size_t i, n = strlen(name);

	if (strncmp(name, NFT_TABLE_PREFIX, strlen(NFT_TABLE_PREFIX)) != 0)
		return -EPERM;
	if (n >= NFT_NAME_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!name_char_ok(name[i], i == 0))
			return -EINVAL;
	return 0;
}

/* Any identifier nft would accept as a table or set name (read-only uses). */
static bool name_ok(const char *name)
{
	if (!*name || strlen(name) >= NFT_NAME_MAX || !name_char_ok(name[0], true))
		return false;
	for (size_t i = 1; name[i]; i++)
		if (!name_char_ok(name[i], false) && name[i] != '/')
			return false;
	return true;
}

/* Family and (when owned) name of a table we are about to change or read. */
static int table_args_check(const char *family, const char *name, bool owned, char **err)
{
	int r;

	if (!family || !nft_family_valid(family)) {
		set_err(err, "nft: unknown table family \"%s\"", family ? family : "(null)");
		return -EINVAL;
	}
	if (!name) {
		set_err(err, "nft: no table name");
		return -EINVAL;
	}
	if (!owned) {
		if (!name_ok(name))
			goto bad;
		return 0;
	}
	r = nft_table_name_check(name);
	if (r == -EPERM)
		set_err(err, "nft: table %s %s is not ours (name must start with \"%s\")", family,
			name, NFT_TABLE_PREFIX);
	else if (r < 0)
		goto bad;
	return r;
bad:
	set_err(err, "nft: invalid table name \"%s\"", name);
	return -EINVAL;
}

/* ---- running commands ----------------------------------------------------------------- */

/*
 * errno of a failed run, recovered from libnftables' error text (see the quirks above);
 * -EINVAL for syntax and evaluation errors, which carry no errno.
 */
static int errno_from_text(const char *text)
{
	static const char *const prefixes[] = {
		"Could not process rule: ",
		"cache initialization failed: ",
		"",
	};
	const char *line, *end, *msg, *rest, *s;
	size_t i, pl, sl;
	int e;

	for (line = text; *line; line = *end ? end + 1 : end) {
		end = strchrnul(line, '\n');
		msg = memmem(line, (size_t)(end - line), "Error: ", 7);
		if (!msg)
			continue;
		msg += 7;
		for (i = 0; i < ARRAY_SIZE(prefixes); i++) {
			pl = strlen(prefixes[i]);
			if (strncmp(msg, prefixes[i], pl) != 0)
				continue;
			rest = msg + pl;
			for (e = 1; e <= EHWPOISON; e++) {
				s = strerror(e);
				sl = strlen(s);
				if (strncmp(rest, s, sl) == 0 &&
					(rest[sl] == '\0' || rest[sl] == '\n' || rest[sl] == ';'))
					return -e;
			}
		}
	}
	return -EINVAL;
}

/*
 * Copy libnftables' error text to *err (caller frees), making file locations readable: the
 * text was read from /proc/self/fd/N (see nft_exec_text()), and its first skip lines were ours,
 * so "PATH:L:C-C: Error: ..." becomes "LABEL:L-skip:C-C: Error: ...".
 */
static char *err_text(const char *e, const char *path, const char *label, unsigned skip)
{
	size_t pl = path ? strlen(path) : 0;
	const char *line, *end, *p;
	struct nft_buf b;
	unsigned long l;

	if (!*e)
		return xstrdup("nft: libnftables failed without a message\n");
	nft_buf_init(&b);
	for (line = e; *line; line = end) {
		end = strchrnul(line, '\n');
		if (*end)
			end++;
		if (pl && strncmp(line, path, pl) == 0 && line[pl] == ':') {
			char *q;

			l = strtoul(line + pl + 1, &q, 10);
			p = q;
			if (*p == ':') {
				if (l > skip)
					nft_buf_printf(&b, "%s:%lu", label, l - skip);
				else
					nft_buf_printf(&b, "%s:(header)", label);
				line = p;
			}
		}
		nft_buf_printf(&b, "%.*s", (int)(end - line), line);
	}
	return b.data;
}

/* Read both buffers after every run: reading is what rewinds them.  Returns 0 or -errno. */
static int nft_finish(struct nft *nft, int rc, const char *path, const char *label, unsigned skip,
	char **out, char **err)
{
	const char *o = nft_ctx_get_output_buffer(nft->ctx);
	const char *e = nft_ctx_get_error_buffer(nft->ctx);
	int r;

	if (rc == 0) {
		if (out)
			*out = xstrdup(o);
		return 0;
	}
	r = errno_from_text(e);
	log_debug("nft: %s failed (%s): %s", label, strerror(-r), e);
	if (err)
		*err = err_text(e, path, label, skip);
	return r;
}

/*
 * Run a short command (list, a table delete) from a buffer with output flags oflags.  On success
 * *out (if out) holds a copy of the output (caller frees); on failure *err (if err) holds the
 * error text (caller frees).  Returns 0 or -errno.
 */
static int nft_exec(struct nft *nft, const char *cmd, unsigned oflags, char **out, char **err)
{
	int rc;

	nft_ctx_output_set_flags(nft->ctx, oflags);
	rc = nft_run_cmd_from_buffer(nft->ctx, cmd);
	return nft_finish(nft, rc, NULL, cmd, 0, out, err);
}

/*
 * Run a batch (dry run if dry) that may span many lines.  Quirk: for buffer input, libnftables
 * 1.0.6 prints the FIRST line of the buffer under the error caret, whatever line the error is
 * on, and no line number.  For file input it prints "file:line:col" and the right line, so the
 * text goes through a memfd read back as /proc/self/fd/N (one read, still one transaction); the
 * first skip lines are our header, and errors are labelled "label:line" counted from the
 * caller's text.  Falls back to the buffer if there is no memfd or /proc.
 */
static int nft_exec_text(struct nft *nft, const char *text, const char *label, unsigned skip,
	bool dry, char **err)
{
	char path[64];
	size_t len = strlen(text), off = 0;
	ssize_t n;
	int fd, rc;

	nft_ctx_output_set_flags(nft->ctx, 0);
	nft_ctx_set_dry_run(nft->ctx, dry);
	fd = memfd_create("egress-nft", MFD_CLOEXEC);
	if (fd >= 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		while (off < len) {
			n = write(fd, text + off, len - off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		if (off < len || access(path, R_OK) < 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0) {
		rc = nft_run_cmd_from_filename(nft->ctx, path);
		close(fd);
	} else {
		log_debug("nft: no memfd/proc (%s): error locations will be vague", strerror(errno));
		rc = nft_run_cmd_from_buffer(nft->ctx, text);
	}
	nft_ctx_set_dry_run(nft->ctx, false);
	return nft_finish(nft, rc, fd >= 0 ? path : NULL, label, skip, NULL, err);
}

struct nft *nft_new(void)
{
	struct nft *nft = xcalloc(1, sizeof(*nft));

	nft->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!nft->ctx)
		goto fail;
	if (nft_ctx_buffer_output(nft->ctx) || nft_ctx_buffer_error(nft->ctx))
		goto fail;
	return nft;
fail:
	log_debug("nft: cannot set up a libnftables context");
	nft_free(nft);
	errno = ENOMEM;
	return NULL;
}

void nft_free(struct nft *nft)
{
	if (!nft)
		return;
	if (nft->ctx)
		nft_ctx_free(nft->ctx);
	free(nft);
}

/* ---- the scanner behind the ownership checks ------------------------------------------ */

/*
 * Just enough of nft's lexer to find where commands start and end: words, "quoted strings"
 * (no escapes and may span lines, as in nft's scanner), # comments to the end of the line,
 * braces, and ';' / newline as separators.  A backslash before a newline joins lines.  Where
 * this scanner and nft could disagree, the disagreement makes a command look incomplete or
 * foreign, so it is refused rather than let through.
 */
enum scan_tok {
	SCAN_END,
	SCAN_WORD,
	SCAN_SEP,
	SCAN_OPEN,
	SCAN_CLOSE,
	SCAN_ERROR,
};

struct scan_word {
	const char *s;
	size_t len;
	bool quoted;
};

struct scan {
	const char *p;
	struct scan_word word; /* SCAN_WORD */
};

static int scan_word_char(const char *p)
{
	return *p && !strchr(" \t\r\n;{}#\"", *p) && !(p[0] == '\\' && p[1] == '\n');
}

static enum scan_tok scan_next(struct scan *sc)
{
	const char *p = sc->p, *q;

	for (;;) {
		if (p[0] == '\\' && p[1] == '\n')
			p += 2;
		else if (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		else if (*p == '#')
			while (*p && *p != '\n')
				p++;
		else
			break;
	}
	sc->p = p + 1;
	switch (*p) {
	case '\0':
		sc->p = p;
		return SCAN_END;
	case '\n':
	case ';':
		return SCAN_SEP;
	case '{':
		return SCAN_OPEN;
	case '}':
		return SCAN_CLOSE;
	case '"':
		q = strchr(p + 1, '"');
		if (!q)
			return SCAN_ERROR;
		sc->word = (struct scan_word){ .s = p + 1, .len = (size_t)(q - p - 1), .quoted = true };
		sc->p = q + 1;
		return SCAN_WORD;
	}
	for (q = p; scan_word_char(q); q++)
		;
	sc->word = (struct scan_word){ .s = p, .len = (size_t)(q - p), .quoted = false };
	sc->p = q;
	return SCAN_WORD;
}

static bool word_is(const struct scan_word *w, const char *kw)
{
	return !w->quoted && w->len == strlen(kw) && memcmp(w->s, kw, w->len) == 0;
}

static bool word_in(const struct scan_word *w, const char *const *kws, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (word_is(w, kws[i]))
			return true;
	return false;
}

/* Braces balance, never close more than was opened, no `include`. */
static int body_check(const char *body, char **err)
{
	struct scan sc = { .p = body };
	enum scan_tok t;
	int depth = 0;

	while ((t = scan_next(&sc)) != SCAN_END) {
		if (t == SCAN_ERROR) {
			set_err(err, "nft: body: unterminated quoted string");
			return -EINVAL;
		}
		if (t == SCAN_OPEN) {
			depth++;
		} else if (t == SCAN_CLOSE && --depth < 0) {
			set_err(err, "nft: body: '}' closes more than the body opened");
			return -EINVAL;
		} else if (t == SCAN_WORD && word_is(&sc.word, "include")) {
			set_err(err, "nft: body: include is not allowed");
			return -EINVAL;
		}
	}
	if (depth != 0) {
		set_err(err, "nft: body: %d unclosed '{'", depth);
		return -EINVAL;
	}
	return 0;
}

#define CMD_WORDS 6

/*
 * One command's leading words: [VERB] OBJECT [FAMILY] TABLE ...  Returns 0 if it names a table
 * of ours, -EPERM (and *err) otherwise.
 */
static int cmd_check(const struct scan_word *w, int n, char **err)
{
	static const char *const verbs[] = {
		"add", "create", "insert", "replace", "delete", "destroy", "flush", "reset",
		"rename",
	};
	static const char *const objects[] = {
		"table", "chain", "rule", "set", "map", "element", "counter", "quota", "limit",
		"flowtable", "secmark", "synproxy",
	};
	/* plural forms take an optional "table" keyword before the table: reset counters
	 * table inet egress */
	static const char *const plurals[] = {
		"chains", "rules", "sets", "maps", "counters", "quotas", "limits", "flowtables",
		"secmarks", "synproxys",
	};
	static const char *const ct_objects[] = {
		"helper", "timeout", "expectation", "helpers", "timeouts", "expectations",
	};
	char name[NFT_NAME_MAX];
	int i = 0;

	if (n > 0 && word_in(&w[0], verbs, ARRAY_SIZE(verbs)))
		i++;
	if (i >= n)
		goto refuse;
	if (word_is(&w[i], "ct")) {
		i++;
		if (i >= n || !word_in(&w[i], ct_objects, ARRAY_SIZE(ct_objects)))
			goto refuse;
		i++;
	} else if (word_in(&w[i], objects, ARRAY_SIZE(objects))) {
		i++;
	} else if (word_in(&w[i], plurals, ARRAY_SIZE(plurals))) {
		i++;
		if (i < n && word_is(&w[i], "table"))
			i++;
	} else {
		goto refuse;
	}
	if (i < n && word_in(&w[i], nft_families, ARRAY_SIZE(nft_families)))
		i++;
	if (i >= n || w[i].len >= sizeof(name))
		goto refuse;
	memcpy(name, w[i].s, w[i].len);
	name[w[i].len] = '\0';
	if (nft_table_name_check(name) != 0)
		goto refuse;
	return 0;
refuse:
	set_err(err, "nft: refused: command \"%.*s%s\" does not name a table of ours (%s*)",
		n > 0 ? (int)(w[n - 1].s + w[n - 1].len - w[0].s) : 0, n > 0 ? w[0].s : "",
		n == CMD_WORDS ? " ..." : "", NFT_TABLE_PREFIX);
	return -EPERM;
}

int nft_cmds_check_owned(const char *cmds, char **err)
{
	static const char *const banned[] = { "include", "define", "redefine", "undefine" };
	struct scan sc = { .p = cmds };
	struct scan_word w[CMD_WORDS];
	enum scan_tok t;
	int depth = 0, n = 0, r, ncmds = 0;
	bool opened = false; /* this command has opened a block at depth 0 */

	if (err)
		*err = NULL;
	for (;;) {
		t = scan_next(&sc);
		switch (t) {
		case SCAN_ERROR:
			set_err(err, "nft: unterminated quoted string");
			return -EINVAL;
		case SCAN_WORD:
			if (depth == 0 && word_in(&sc.word, banned, ARRAY_SIZE(banned))) {
				set_err(err, "nft: refused: %.*s is not allowed", (int)sc.word.len,
					sc.word.s);
				return -EPERM;
			}
			if (depth == 0 && !opened && n < CMD_WORDS)
				w[n++] = sc.word;
			continue;
		case SCAN_OPEN:
			if (depth == 0 && n == 0) {
				set_err(err, "nft: refused: a command must start with a keyword "
					     "(JSON input is not accepted)");
				return -EINVAL;
			}
			if (depth++ == 0)
				opened = true;
			continue;
		case SCAN_CLOSE:
			if (--depth < 0) {
				set_err(err, "nft: unbalanced '}'");
				return -EINVAL;
			}
			continue;
		case SCAN_SEP:
			if (depth > 0)
				continue;
			break;
		case SCAN_END:
			if (depth > 0) {
				set_err(err, "nft: %d unclosed '{'", depth);
				return -EINVAL;
			}
			break;
		}
		/* end of a command at depth 0 */
		if (n > 0) {
			r = cmd_check(w, n, err);
			if (r < 0)
				return r;
			ncmds++;
		}
		n = 0;
		opened = false;
		if (t == SCAN_END)
			break;
	}
	if (ncmds == 0) {
		set_err(err, "nft: no command");
		return -EINVAL;
	}
	return 0;
}

/* ---- tables --------------------------------------------------------------------------- */

static bool name_in(const char *const *names, const char *name, size_t len)
{
	for (size_t i = 0; names && names[i]; i++)
		if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
			return true;
	return false;
}

/* An unquoted identifier (what we can put back into a command as it is). */
static bool word_is_name(const struct scan_word *w)
{
	if (w->quoted || !w->len || w->len >= NFT_NAME_MAX || !name_char_ok(w->s[0], true))
		return false;
	for (size_t i = 1; i < w->len; i++)
		if (!name_char_ok(w->s[i], false))
			return false;
	return true;
}

/*
 * The commands that empty the table `family name` that old (a body, borrowed) made, but for
 * the sets in keep[], into b: flush its rules, delete its chains, its other sets and maps
 * (old's declarations at the top level: `chain|set|map NAME {`).  The number of lines in
 * *lines.  -ENOENT if a set of keep[] is not declared in old.
 */
static int table_empty_cmds(struct nft_buf *b, const char *family, const char *name,
	const char *old, const char *const *keep, unsigned *lines, char **err)
{
	static const char *const kinds[] = {"chain", "set", "map"};
	struct scan sc = {.p = old};
	struct scan_word w[2];
	size_t found = 0, n_keep = 0;
	enum scan_tok t;
	int depth = 0, n = 0;

	nft_buf_printf(b, "add table %s %s\nflush table %s %s\n", family, name, family, name);
	*lines = 2;
	while ((t = scan_next(&sc)) != SCAN_END && t != SCAN_ERROR) {
		if (t == SCAN_WORD && depth == 0 && n < 2)
			w[n++] = sc.word;
		else if (t == SCAN_WORD && depth == 0)
			n = 3; /* longer than a declaration's head */
		if (t == SCAN_OPEN && depth++ == 0 && n == 2 &&
			word_in(&w[0], kinds, ARRAY_SIZE(kinds))) {
			if (!word_is_name(&w[1])) {
				set_err(err, "nft: old body: %.*s \"%.*s\": not a plain name",
					(int)w[0].len, w[0].s, (int)w[1].len, w[1].s);
				return -EINVAL;
			}
			if (word_is(&w[0], "set") && name_in(keep, w[1].s, w[1].len)) {
				found++;
			} else {
				nft_buf_printf(b, "delete %.*s %s %s %.*s\n", (int)w[0].len, w[0].s,
					family, name, (int)w[1].len, w[1].s);
				(*lines)++;
			}
		}
		if (t == SCAN_CLOSE)
			depth--;
		if ((t == SCAN_SEP && depth == 0) || t == SCAN_CLOSE)
			n = 0;
	}
	while (keep && keep[n_keep])
		n_keep++;
	if (found != n_keep) {
		set_err(err, "nft: table %s %s: a set to keep is not in the old body", family, name);
		return -ENOENT;
	}
	return 0;
}

/*
 * The one-transaction replacement text in *ret (caller frees) and the number of lines before
 * the body in *skip: the table is deleted and made again, or with keep, emptied but for the
 * sets in keep[] (old: the body it was made from).
 */
static int table_replace_text(const char *family, const char *name, const char *body,
	const char *old, const char *const *keep, char **ret, unsigned *skip, char **err)
{
	struct nft_buf b;
	int r = 0;

	nft_buf_init(&b);
	nft_buf_reserve(&b, strlen(body) + 3 * strlen(name) + 128);
	if (keep) {
		r = table_empty_cmds(&b, family, name, old, keep, skip, err);
	} else {
		nft_buf_printf(&b, "add table %s %s\ndelete table %s %s\n", family, name, family,
			name);
		*skip = 2;
	}
	if (r < 0) {
		nft_buf_clear(&b);
		return r;
	}
	nft_buf_printf(&b, "table %s %s {\n", family, name);
	(*skip)++;
	nft_buf_add(&b, body);
	nft_buf_add(&b, "\n}\n");
	*ret = b.data;
	return 0;
}

static int table_apply(struct nft *nft, const char *family, const char *name, const char *body,
	const char *old, const char *const *keep, bool dry, char **err)
{
	char label[NFT_NAME_MAX + 32], *text = NULL;
	unsigned skip;
	int r;

	if (err)
		*err = NULL;
	r = table_args_check(family, name, true, err);
	if (r < 0)
		return r;
	if (!body || (keep && !old)) {
		set_err(err, "nft: no body");
		return -EINVAL;
	}
	r = body_check(body, err);
	if (r == 0 && keep)
		r = body_check(old, err);
	if (r < 0)
		return r;
	r = table_replace_text(family, name, body, old, keep, &text, &skip, err);
	if (r < 0)
		return r;
	snprintf(label, sizeof(label), "table %s %s", family, name);
	r = nft_exec_text(nft, text, label, skip, dry, err);
	free(text);
	return r;
}

int nft_table_apply(struct nft *nft, const char *family, const char *name, const char *body,
	char **err)
{
	return table_apply(nft, family, name, body, NULL, NULL, false, err);
}

int nft_table_apply_keep(struct nft *nft, const char *family, const char *name, const char *old,
	const char *body, const char *const *keep, char **err)
{
	static const char *const none[] = {NULL};

	return table_apply(nft, family, name, body, old, keep ? keep : none, false, err);
}

int nft_table_check(struct nft *nft, const char *family, const char *name, const char *body,
	char **err)
{
	return table_apply(nft, family, name, body, NULL, NULL, true, err);
}

int nft_table_delete(struct nft *nft, const char *family, const char *name, char **err)
{
	char text[2 * NFT_NAME_MAX + 64];
	int r;

	if (err)
		*err = NULL;
	r = table_args_check(family, name, true, err);
	if (r < 0)
		return r;
	snprintf(text, sizeof(text), "add table %s %s\ndelete table %s %s\n", family, name, family,
		name);
	return nft_exec(nft, text, 0, NULL, err);
}

int nft_table_exists(struct nft *nft, const char *family, const char *name)
{
	char cmd[64], *out = NULL;
	json_t *root = NULL, *arr, *item, *t;
	size_t i;
	int r;

	r = table_args_check(family, name, false, NULL);
	if (r < 0)
		return r;
	/* `list tables FAMILY` fetches table names only, never chains, rules or elements */
	snprintf(cmd, sizeof(cmd), "list tables %s", family);
	r = nft_exec(nft, cmd, NFT_CTX_OUTPUT_JSON, &out, NULL);
	if (r < 0)
		goto out;
	root = json_loads(out, 0, NULL);
	arr = json_object_get(root, "nftables");
	if (!json_is_array(arr)) {
		r = -EBADMSG;
		goto out;
	}
	r = 0;
	json_array_foreach(arr, i, item) {
		t = json_object_get(item, "table");
		if (t && streq(json_string_value(json_object_get(t, "family")) ?: "", family) &&
			streq(json_string_value(json_object_get(t, "name")) ?: "", name)) {
			r = 1;
			break;
		}
	}
out:
	json_decref(root);
	free(out);
	return r;
}

static unsigned list_oflags(unsigned flags)
{
	unsigned o = 0;

	if (flags & NFT_LIST_STATELESS)
		o |= NFT_CTX_OUTPUT_STATELESS;
	if (flags & NFT_LIST_HANDLES)
		o |= NFT_CTX_OUTPUT_HANDLE;
	if (flags & NFT_LIST_TERSE)
		o |= NFT_CTX_OUTPUT_TERSE;
	if (flags & NFT_LIST_NUMERIC)
		o |= NFT_CTX_OUTPUT_NUMERIC_ALL;
	return o;
}

static int table_list(struct nft *nft, const char *family, const char *name, unsigned oflags,
	char **ret)
{
	char cmd[NFT_NAME_MAX + 64];
	int r;

	*ret = NULL;
	r = table_args_check(family, name, false, NULL);
	if (r < 0)
		return r;
	snprintf(cmd, sizeof(cmd), "list table %s %s", family, name);
	return nft_exec(nft, cmd, oflags, ret, NULL);
}

int nft_table_list(struct nft *nft, const char *family, const char *name, unsigned flags,
	char **ret)
{
	return table_list(nft, family, name, list_oflags(flags), ret);
}

/* libnftables' JSON output out (borrowed) as a new reference in *ret; label for the log. */
static int json_of(const char *out, const char *label, json_t **ret)
{
	json_error_t jerr;

	*ret = json_loads(out, 0, &jerr);
	if (!*ret) {
		log_debug("nft: %s: JSON: %s", label, jerr.text);
		return -EBADMSG;
	}
	return 0;
}

/* table_list() in JSON, as a new reference in *ret. */
static int table_list_json(struct nft *nft, const char *family, const char *name, unsigned oflags,
	json_t **ret)
{
	char label[NFT_NAME_MAX + 32], *out;
	int r;

	*ret = NULL;
	r = table_list(nft, family, name, NFT_CTX_OUTPUT_JSON | oflags, &out);
	if (r < 0)
		return r;
	snprintf(label, sizeof(label), "list table %s %s", family, name);
	r = json_of(out, label, ret);
	free(out);
	return r;
}

int nft_table_list_json(struct nft *nft, const char *family, const char *name, json_t **ret)
{
	return table_list_json(nft, family, name, 0, ret);
}

int nft_set_list_json(struct nft *nft, const char *family, const char *table, const char *set,
	json_t **ret)
{
	char cmd[2 * NFT_NAME_MAX + 64], *out = NULL;
	int r;

	*ret = NULL;
	r = table_args_check(family, table, false, NULL);
	if (r < 0)
		return r;
	if (!set || !name_ok(set))
		return -EINVAL;
	snprintf(cmd, sizeof(cmd), "list set %s %s %s", family, table, set);
	r = nft_exec(nft, cmd, NFT_CTX_OUTPUT_JSON, &out, NULL);
	if (r < 0)
		return r;
	r = json_of(out, cmd, ret);
	free(out);
	return r;
}

/* ---- batches and the whole ruleset ---------------------------------------------------- */

int nft_run(struct nft *nft, const char *cmds, char **err)
{
	int r;

	if (err)
		*err = NULL;
	r = nft_cmds_check_owned(cmds, err);
	if (r < 0)
		return r;
	return nft_exec_text(nft, cmds, "commands", 0, false, err);
}

int nft_flowtable_probe(struct nft *nft, char **err)
{
	/* created and deleted in one transaction: the kernel keeps nothing either way */
	static const char probe[] = "table inet egress_probe {\n"
				    "\tflowtable probe {\n\t\thook ingress priority filter\n\t}\n"
				    "}\n"
				    "delete table inet egress_probe\n";
	int r = nft_run(nft, probe, err);

	return r == 0 ? 1 : r == -ENOENT || r == -EOPNOTSUPP ? 0 : r;
}

int nft_ruleset_dump(struct nft *nft, char **ret)
{
	*ret = NULL;
	return nft_exec(nft, "list ruleset", 0, ret, NULL);
}

int nft_ruleset_restore(struct nft *nft, const char *text, char **err)
{
	struct nft_buf b;
	int r;

	if (err)
		*err = NULL;
	nft_buf_init(&b);
	nft_buf_add(&b, "flush ruleset\n");
	nft_buf_add(&b, text);
	r = nft_exec_text(nft, b.data, "ruleset", 1, false, err);
	nft_buf_clear(&b);
	return r;
}
