/*
 * textdiff.h - the difference of two texts, line by line, in the unified format of diff -u:
 * what a configuration change would do (POST /api/config?dry_run=1).
 */
#ifndef EGRESS_TEXTDIFF_H
#define EGRESS_TEXTDIFF_H

/*
 * The unified diff (3 lines of context) that turns a into b, with "--- label_a" and
 * "+++ label_b" heads; "" when they are the same.  The result is the caller's (free()).
 * Texts of more than TEXTDIFF_MAX_CELLS line pairs between their common head and tail are
 * told apart as a whole: every line of a's middle removed, every line of b's added.
 */
#define TEXTDIFF_MAX_CELLS (4u * 1000 * 1000)

char *text_diff(const char *a, const char *b, const char *label_a, const char *label_b);

#endif
