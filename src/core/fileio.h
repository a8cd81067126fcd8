/*
 * fileio.h - whole files read and written in one step: egressd's state (operator settings,
 * tokens, the password hash) and a configuration file written by the API.
 */
#ifndef EGRESS_FILEIO_H
#define EGRESS_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Write len bytes of data to path as one step: a new file beside it (mode), fsync, rename
 * over path, fsync of its folder.  A crash leaves the old file or the new one, never a part
 * of either.  0 or -errno (path untouched, no file left beside it).
 */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Read the whole file at path: *ret (the caller's, free()) is NUL-terminated, *len_ret (may
 * be NULL) its length.  0, -EFBIG past max bytes, or -errno (-ENOENT: no such file).
 */
int file_read(const char *path, size_t max, char **ret, size_t *len_ret);

/* Make the folder at path (mode) unless it exists.  0 or -errno. */
int dir_ensure(const char *path, mode_t mode);

#endif
