/*
 * passwd.h - salted password hashes and random secrets (OpenSSL).
 *
 * A hash is a self-describing string in the PHC string format that passlib also writes:
 *
 *	$scrypt$ln=15,r=8,p=1$SALT$HASH
 *
 * scrypt (RFC 7914) with cost N = 2^ln, block size r and parallelism p; SALT and HASH in
 * base64 without padding (RFC 4648 section 4).  The salt comes from OpenSSL's CSPRNG, the
 * comparison takes the same time whatever the bytes.  Nothing here logs or keeps a password.
 */
#ifndef EGRESS_PASSWD_H
#define EGRESS_PASSWD_H

#include <stddef.h>

/* The cost of new hashes: 2^15 x 8 x 128 bytes = 32 MiB of memory, tens of milliseconds. */
#define PASSWD_LN_DEFAULT 15
#define PASSWD_R_DEFAULT  8
#define PASSWD_P_DEFAULT  1

/* Longest password hashed or checked, in bytes; longer ones are refused, never cut. */
#define PASSWD_MAX 1024

/*
 * A hash of password (1..PASSWD_MAX bytes) with a fresh 16-byte salt and the default cost.
 * *ret: a new string the caller frees.  0, -EINVAL (empty or too long), -EIO (OpenSSL).
 */
int passwd_hash(const char *password, char **ret);

/* The same with a cost of one's choosing (bounds as passwd_check() says). */
int passwd_hash_cost(const char *password, unsigned ln, unsigned r, unsigned p, char **ret);

/*
 * Is hash a well-formed hash this code can verify?  0, or -EINVAL with *why_ret (may be
 * NULL) pointing at a static message that says what was expected.
 */
int passwd_check(const char *hash, const char **why_ret);

/*
 * Does password match hash?  0 if it does, -EACCES if it does not, -EINVAL if hash is
 * malformed (*why_ret as for passwd_check()), -EIO if OpenSSL fails.
 */
int passwd_verify(const char *hash, const char *password, const char **why_ret);

/*
 * A random secret: nbytes (1..256) from OpenSSL's CSPRNG as base64url without padding
 * (RFC 4648 section 5), fit for a URL, a cookie or a header.  *ret: the caller frees.
 * 0, -EINVAL, -EIO (no entropy).
 */
int passwd_random_token(size_t nbytes, char **ret);

#endif
