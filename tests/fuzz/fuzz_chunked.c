/*
 * fuzz_chunked.c - libFuzzer harness for the chunked body decoder (http_chunked_feed(),
 * http_body_feed() and http_body_take() in src/proxy/httpproxy.c).
 *
 * The input's first 8 bytes seed how the stream is cut; the rest is the stream.  It is fed
 * whole, then in pieces of pseudo-random sizes (1 byte to all), taking a chunk's data in
 * bulk with http_body_take() at random moments, as the relay does.  Checked:
 *   - a feed takes at most what it is given, and less only where the body ends;
 *   - the result is the same however the stream is cut: the same error, or the same number
 *     of bytes in the body and the same "ended";
 *   - bytes after the end are never taken;
 *   - the error is -EPROTO or -E2BIG.
 * Any violation aborts.  No side effects.
 */
#include <errno.h>
#include <string.h>

#include "httpproxy.h"

#include "fuzz.h"

struct outcome {
	ssize_t err; /* 0 or -errno */
	size_t taken;
	bool done;
};

static uint64_t next(uint64_t *x)
{
	/* xorshift64: the cuts only have to vary, not to be random */
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Feed p[0..n) whole (seed 0) or cut by the seed. */
static struct outcome run(const uint8_t *p, size_t n, uint64_t seed)
{
	struct outcome o = {0};
	struct http_body b = {.framing = HTTP_FRAMING_CHUNKED};
	uint64_t x = seed | 1;

	http_chunked_init(&b.chunked);
	while (o.taken < n && !http_body_done(&b)) {
		size_t k = n - o.taken;
		ssize_t r;

		if (seed) {
			uint64_t v = next(&x);
			if (v % 4 == 0) {
				uint64_t t = http_body_take(&b);
				CHECK(t != HTTP_BODY_UNBOUNDED);
				o.taken += (size_t)(t < n - o.taken ? t : n - o.taken);
				continue;
			}
			k = (size_t)(v >> 8) % (v % 3 ? 8 : 1024) + 1;
			if (k > n - o.taken)
				k = n - o.taken;
		}
		r = http_body_feed(&b, p + o.taken, k);
		if (r < 0) {
			CHECK(r == -EPROTO || r == -E2BIG);
			o.err = r;
			return o;
		}
		CHECK((size_t)r <= k);
		if ((size_t)r < k)
			CHECK(http_body_done(&b));
		o.taken += (size_t)r;
	}
	o.done = http_body_done(&b);
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, cut;
	uint64_t seed = 0;

	if (size < 8 || size > 1 << 20)
		return 0;
	memcpy(&seed, data, 8);
	data += 8;
	size -= 8;
	whole = run(data, size, 0);
	CHECK(whole.taken <= size);
	if (!whole.err && whole.taken < size)
		CHECK(whole.done);
	for (int i = 0; i < 4; i++) {
		cut = run(data, size, seed + (uint64_t)i * 0x9e3779b97f4a7c15u);
		CHECK(cut.err == whole.err);
		if (!whole.err)
			CHECK(cut.taken == whole.taken && cut.done == whole.done);
	}
	return 0;
}
