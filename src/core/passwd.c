/*
 * passwd.c - salted scrypt password hashes and random secrets, on OpenSSL.
 *
 * Parses hashes strictly (a hash comes from a config file someone typed into) and bounds
 * their cost, so that a hash can never make egressd allocate or compute without limit.
 * Never logs: callers decide what to tell whom.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "passwd.h"
#include "util.h"

#define SALT_LEN      16
#define KEY_LEN	      32
#define SALT_MIN      8
#define SALT_MAX      64
#define KEY_MIN	      16
#define KEY_MAX	      64
#define LN_MIN	      10
#define LN_MAX	      24
#define R_MAX	      32
#define P_MAX	      16
#define MEM_LOG2_MAX  22 /* r x 2^ln at most 2^22: 512 MiB of scrypt's 128 x r x N bytes */
#define WORK_LOG2_MAX 24 /* r x p x 2^ln at most 2^24: 64 times the default's work */

#define SCHEME "$scrypt$"
#define FORMAT "expected $scrypt$ln=N,r=N,p=N$SALT$HASH"

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

struct scrypt_params {
	unsigned ln, r, p;
	unsigned char salt[SALT_MAX];
	size_t salt_len;
	unsigned char key[KEY_MAX];
	size_t key_len;
};

/* Base64 without padding into out (room for at least 4 * ceil(len / 3) + 1 bytes). */
static void b64_encode(const unsigned char *in, size_t len, char *out)
{
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);

	while (n > 0 && out[n - 1] == '=')
		out[--n] = '\0';
}

/*
 * Strict base64 without padding: only the alphabet, no whitespace, no length that leaves
 * a lone character.  0 with *len_ret, or -EINVAL (also when it decodes to more than max).
 */
static int b64_decode(
	const char *in, size_t in_len, unsigned char *out, size_t max, size_t *len_ret)
{
	char padded[4 * ((KEY_MAX > SALT_MAX ? KEY_MAX : SALT_MAX) / 3 + 2) + 1];
	unsigned char tmp[sizeof(padded)];
	size_t pad = (4 - in_len % 4) % 4, len;
	int n;

	if (in_len == 0 || pad == 3 || in_len + pad >= sizeof(padded))
		return -EINVAL;
	for (size_t i = 0; i < in_len; i++)
		if (!in[i] || !strchr(b64_chars, in[i]))
			return -EINVAL;
	memcpy(padded, in, in_len);
	memset(padded + in_len, '=', pad);
	n = EVP_DecodeBlock(tmp, (const unsigned char *)padded, (int)(in_len + pad));
	if (n < 0 || (size_t)n < pad)
		return -EINVAL;
	len = (size_t)n - pad; /* EVP_DecodeBlock counts the padding as zero bytes */
	if (len > max)
		return -EINVAL;
	memcpy(out, tmp, len);
	*len_ret = len;
	return 0;
}

/* "NAME=DIGITS" then sep; advances *s.  No sign, no space, no leading zero, at most 4 digits. */
static int parse_param(const char **s, const char *name, char sep, unsigned *ret)
{
	size_t nl = strlen(name), digits;
	const char *p = *s;
	unsigned v = 0;

	if (strncmp(p, name, nl) || p[nl] != '=')
		return -EINVAL;
	p += nl + 1;
	digits = strspn(p, "0123456789");
	if (digits == 0 || digits > 4 || (digits > 1 && p[0] == '0') || p[digits] != sep)
		return -EINVAL;
	for (size_t i = 0; i < digits; i++)
		v = v * 10 + (unsigned)(p[i] - '0');
	*ret = v;
	*s = p + digits + 1;
	return 0;
}

static const char *check_cost(unsigned ln, unsigned r, unsigned p)
{
	unsigned rbits = 0, pbits = 0;

	if (ln < LN_MIN || ln > LN_MAX)
		return "ln must be 10..24 (scrypt's N = 2^ln)";
	if (r < 1 || r > R_MAX)
		return "r must be 1..32";
	if (p < 1 || p > P_MAX)
		return "p must be 1..16";
	while ((1u << rbits) < r)
		rbits++;
	while ((1u << pbits) < p)
		pbits++;
	if (ln + rbits > MEM_LOG2_MAX || ln + rbits + pbits > WORK_LOG2_MAX)
		return "cost too high: r x 2^ln must be at most 2^22 and r x p x 2^ln at most 2^24";
	return NULL;
}

static int parse(const char *hash, struct scrypt_params *sp, const char **why_ret)
{
	const char *s = hash, *why, *end;

	if (strncmp(s, SCHEME, strlen(SCHEME))) {
		why = hash[0] == '$' ? "unknown scheme: " FORMAT : FORMAT;
		goto bad;
	}
	s += strlen(SCHEME);
	if (parse_param(&s, "ln", ',', &sp->ln) < 0 || parse_param(&s, "r", ',', &sp->r) < 0 ||
		parse_param(&s, "p", '$', &sp->p) < 0) {
		why = "bad parameters: " FORMAT;
		goto bad;
	}
	why = check_cost(sp->ln, sp->r, sp->p);
	if (why)
		goto bad;
	end = strchr(s, '$');
	if (!end || b64_decode(s, (size_t)(end - s), sp->salt, SALT_MAX, &sp->salt_len) < 0 ||
		sp->salt_len < SALT_MIN) {
		why = "SALT must be 8..64 bytes in base64 without padding";
		goto bad;
	}
	s = end + 1;
	if (b64_decode(s, strlen(s), sp->key, KEY_MAX, &sp->key_len) < 0 || sp->key_len < KEY_MIN) {
		why = "HASH must be 16..64 bytes in base64 without padding";
		goto bad;
	}
	return 0;
bad:
	if (why_ret)
		*why_ret = why;
	return -EINVAL;
}

int passwd_check(const char *hash, const char **why_ret)
{
	struct scrypt_params sp;
	int r = parse(hash, &sp, why_ret);

	OPENSSL_cleanse(&sp, sizeof(sp));
	return r;
}

static int derive(
	const char *password, const struct scrypt_params *sp, unsigned char *key, size_t key_len)
{
	uint64_t n = UINT64_C(1) << sp->ln;
	/* OpenSSL needs 128 x r x (N + 2) bytes for V and 128 x r x p for B */
	uint64_t maxmem = 128 * (uint64_t)sp->r * (n + 2 + sp->p) + 4096;

	if (!EVP_PBE_scrypt(password, strlen(password), sp->salt, sp->salt_len, n, sp->r, sp->p,
		    maxmem, key, key_len))
		return -EIO;
	return 0;
}

static bool password_ok(const char *password)
{
	size_t len = strnlen(password, PASSWD_MAX + 1);

	return len > 0 && len <= PASSWD_MAX;
}

int passwd_hash_cost(const char *password, unsigned ln, unsigned r, unsigned p, char **ret)
{
	struct scrypt_params sp = {
		.ln = ln, .r = r, .p = p, .salt_len = SALT_LEN, .key_len = KEY_LEN};
	char salt[4 * SALT_LEN / 3 + 4], key[4 * KEY_LEN / 3 + 4];
	int rc;

	if (!password_ok(password) || check_cost(ln, r, p))
		return -EINVAL;
	if (RAND_bytes(sp.salt, SALT_LEN) != 1)
		return -EIO;
	rc = derive(password, &sp, sp.key, sp.key_len);
	if (rc < 0)
		goto out;
	b64_encode(sp.salt, sp.salt_len, salt);
	b64_encode(sp.key, sp.key_len, key);
	if (asprintf(ret, SCHEME "ln=%u,r=%u,p=%u$%s$%s", ln, r, p, salt, key) < 0)
		rc = -ENOMEM;
out:
	OPENSSL_cleanse(&sp, sizeof(sp));
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int passwd_hash(const char *password, char **ret)
{
	return passwd_hash_cost(
		password, PASSWD_LN_DEFAULT, PASSWD_R_DEFAULT, PASSWD_P_DEFAULT, ret);
}

int passwd_verify(const char *hash, const char *password, const char **why_ret)
{
	struct scrypt_params sp;
	unsigned char key[KEY_MAX];
	int r;

	r = parse(hash, &sp, why_ret);
	if (r < 0)
		goto out;
	if (!password_ok(password)) {
		r = -EACCES;
		goto out;
	}
	r = derive(password, &sp, key, sp.key_len);
	if (r == 0 && CRYPTO_memcmp(key, sp.key, sp.key_len))
		r = -EACCES;
out:
	OPENSSL_cleanse(&sp, sizeof(sp));
	OPENSSL_cleanse(key, sizeof(key));
	return r;
}

int passwd_random_token(size_t nbytes, char **ret)
{
	unsigned char raw[256];
	char *s;

	if (nbytes < 1 || nbytes > sizeof(raw))
		return -EINVAL;
	if (RAND_bytes(raw, (int)nbytes) != 1)
		return -EIO;
	s = xmalloc(4 * ((nbytes + 2) / 3) + 1);
	b64_encode(raw, nbytes, s);
	OPENSSL_cleanse(raw, nbytes);
	for (char *c = s; *c; c++) /* base64url: the same alphabet with - and _ for + and / */
		if (*c == '+')
			*c = '-';
		else if (*c == '/')
			*c = '_';
	*ret = s;
	return 0;
}
