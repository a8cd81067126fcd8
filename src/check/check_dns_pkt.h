/*
 * check_dns_pkt.h - the DNS codec of the DNS health check: build one query,
 * validate one answer (RFC 1035 section 4).
 *
 * Pure code: no sockets, no logging, no allocation.  Outside input (the
 * answer) is only read within its length; every failure is an error code.
 */
#ifndef EGRESS_CHECK_DNS_PKT_H
#define EGRESS_CHECK_DNS_PKT_H

#include <stddef.h>
#include <stdint.h>

#include "dns_msg.h" /* names, header layout, types, rcodes: shared with the forwarder */

#define DNS_QUERY_MAX (DNS_HEADER_LEN + DNS_NAME_MAX + 4)
#define DNS_UDP_MAX   DNS_PLAIN_UDP /* we send no EDNS0: answers fit in 512 bytes */

/*
 * Build a recursive query (RD set) for name (dotted, "." or "" for the
 * root; a trailing dot is optional) of qtype class IN into buf (len bytes,
 * DNS_QUERY_MAX is always enough).  *ret_len gets the query's length.
 * -EINVAL for an empty label, a label over 63 bytes or a name over 255;
 * -ENOBUFS if buf is too small.
 */
int dns_query_build(
	uint8_t *buf, size_t len, uint16_t id, const char *name, uint16_t qtype, size_t *ret_len);

/* The query type the check uses for name: NS for the root, A otherwise. */
uint16_t dns_check_qtype(const char *name);

/*
 * Validate answer (len bytes, borrowed) against query (qlen bytes, as built
 * by dns_query_build).  It must be a standard response with the query's ID
 * and exactly its question (names compared case-insensitively); every record
 * after the question must be well formed (names with compression pointers
 * that point backwards, lengths within the message).
 * Returns 0 and the response code in *ret_rcode; -ENOMSG if it is not the
 * answer to this query (ID, flags, question); -EBADMSG if it is malformed
 * or truncated.
 */
int dns_answer_check(
	const uint8_t *answer, size_t len, const uint8_t *query, size_t qlen, unsigned *ret_rcode);

#endif
