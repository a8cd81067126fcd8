/*
 * textdiff.c - a line diff of two texts in the unified format (see textdiff.h).
 *
 * The common head and tail are taken off first; the middle is compared by the longest common
 * subsequence of its lines (a table of m x n cells, bounded by TEXTDIFF_MAX_CELLS), which is
 * plenty for configuration files.  Pure: no I/O but the result's memory.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "textdiff.h"
#include "util.h"

#define CONTEXT 3

struct line {
	const char *p;
	size_t len;
};

struct lines {
	struct line *v;
	size_t n;
};

/* One step of the edit script: ' ' both, '-' a's line ai, '+' b's line bi. */
struct op {
	char kind;
	size_t ai, bi; /* where each text is at this step */
};

static void split(const char *text, struct lines *ret)
{
	size_t cap = 16;

	ret->v = xmalloc(cap * sizeof(*ret->v));
	ret->n = 0;
	while (*text) {
		const char *eol = strchr(text, '\n');
		size_t len = eol ? (size_t)(eol - text) : strlen(text);
		if (ret->n == cap)
			ret->v = xrealloc(ret->v, (cap *= 2) * sizeof(*ret->v));
		ret->v[ret->n++] = (struct line){text, len};
		text += len + (eol != NULL);
	}
}

static bool line_eq(const struct line *x, const struct line *y)
{
	return x->len == y->len && memcmp(x->p, y->p, x->len) == 0;
}

/* The edit script of the middles a[lo_a, hi_a) and b[lo_b, hi_b) appended to ops. */
static void diff_middle(const struct lines *a, const struct lines *b, size_t lo_a, size_t hi_a,
	size_t lo_b, size_t hi_b, struct op *ops, size_t *n_ops)
{
	size_t m = hi_a - lo_a, n = hi_b - lo_b, i = 0, j = 0;
	uint32_t *L = NULL;

	if (m && n && (uint64_t)(m + 1) * (n + 1) <= TEXTDIFF_MAX_CELLS) {
		/* L[i][j]: the longest common subsequence of a's middle from i and b's from j */
		L = xcalloc((m + 1) * (n + 1), sizeof(*L));
		for (size_t x = m; x-- > 0;)
			for (size_t y = n; y-- > 0;)
				L[x * (n + 1) + y] =
					line_eq(&a->v[lo_a + x], &b->v[lo_b + y])
						? L[(x + 1) * (n + 1) + y + 1] + 1
						: MAX(L[(x + 1) * (n + 1) + y], L[x * (n + 1) + y + 1]);
	}
	while (i < m || j < n) {
		char kind;
		if (L && i < m && j < n && line_eq(&a->v[lo_a + i], &b->v[lo_b + j]))
			kind = ' ';
		else if (i < m && (j == n || !L || L[(i + 1) * (n + 1) + j] >= L[i * (n + 1) + j + 1]))
			kind = '-';
		else
			kind = '+';
		ops[(*n_ops)++] = (struct op){kind, lo_a + i, lo_b + j};
		i += kind != '+';
		j += kind != '-';
	}
	free(L);
}

static void print_hunk(FILE *f, const struct lines *a, const struct lines *b,
	const struct op *ops, size_t from, size_t to)
{
	size_t len_a = 0, len_b = 0;

	for (size_t k = from; k < to; k++) {
		len_a += ops[k].kind != '+';
		len_b += ops[k].kind != '-';
	}
	/* diff -u: a range of no lines starts at the line before it */
	fprintf(f, "@@ -%zu,%zu +%zu,%zu @@\n", ops[from].ai + (len_a != 0), len_a,
		ops[from].bi + (len_b != 0), len_b);
	for (size_t k = from; k < to; k++) {
		const struct line *l = ops[k].kind == '+' ? &b->v[ops[k].bi] : &a->v[ops[k].ai];
		fprintf(f, "%c%.*s\n", ops[k].kind, (int)l->len, l->p);
	}
}

char *text_diff(const char *a_text, const char *b_text, const char *label_a, const char *label_b)
{
	struct lines a, b;
	size_t head = 0, tail = 0, n_ops = 0;
	struct op *ops;
	char *out = NULL;
	size_t out_len = 0;
	FILE *f;

	split(a_text, &a);
	split(b_text, &b);
	while (head < a.n && head < b.n && line_eq(&a.v[head], &b.v[head]))
		head++;
	while (tail < a.n - head && tail < b.n - head &&
		line_eq(&a.v[a.n - 1 - tail], &b.v[b.n - 1 - tail]))
		tail++;
	ops = xmalloc((a.n + b.n + 1) * sizeof(*ops));
	for (size_t k = 0; k < head; k++)
		ops[n_ops++] = (struct op){' ', k, k};
	diff_middle(&a, &b, head, a.n - tail, head, b.n - tail, ops, &n_ops);
	for (size_t k = tail; k > 0; k--)
		ops[n_ops++] = (struct op){' ', a.n - k, b.n - k};

	f = open_memstream(&out, &out_len);
	if (!f)
		fatal("open_memstream");
	for (size_t k = 0; k < n_ops;) {
		if (ops[k].kind == ' ') {
			k++;
			continue;
		}
		/* a hunk: from CONTEXT lines before this change to CONTEXT after the last change
		 * that lies within 2 * CONTEXT lines of the one before it */
		size_t from = k > CONTEXT ? k - CONTEXT : 0, last = k;
		for (size_t x = k + 1; x < n_ops && x <= last + 2 * CONTEXT; x++)
			if (ops[x].kind != ' ')
				last = x;
		size_t to = MIN(n_ops, last + 1 + CONTEXT);
		if (!out_len)
			fprintf(f, "--- %s\n+++ %s\n", label_a, label_b);
		print_hunk(f, &a, &b, ops, from, to);
		fflush(f);
		k = to;
	}
	fclose(f);
	free(ops);
	free(a.v);
	free(b.v);
	return out;
}
