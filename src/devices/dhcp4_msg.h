/*
 * dhcp4_msg.h - the DHCPv4 client's codec: BOOTP/DHCP messages (RFC 2131, options RFC 2132),
 * the IPv4 and UDP headers around them, and ARP packets (RFC 826, probes of RFC 5227).
 *
 * Pure: no sockets, no clock, no logging, no allocation.  Parsers take bytes from the wire
 * and check every length before reading; what they refuse they refuse with -EBADMSG (or
 * -EPROTO for well-formed input that is not for a DHCP client), and *ret is then
 * unspecified.  Addresses are in network byte order (struct in_addr), times in seconds.
 */
#ifndef EGRESS_DHCP4_MSG_H
#define EGRESS_DHCP4_MSG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DHCP4_SERVER_PORT 67
#define DHCP4_CLIENT_PORT 68

#define DHCP4_OP_REQUEST 1 /* BOOTREQUEST */
#define DHCP4_OP_REPLY 2   /* BOOTREPLY */
#define DHCP4_FLAG_BROADCAST 0x8000

/* The fixed part (236 bytes) and the magic cookie. */
#define DHCP4_FIXED_LEN 236
#define DHCP4_MIN_LEN (DHCP4_FIXED_LEN + 4)
/* What we build and what we accept (RFC 2131: 576-byte datagrams; option 57 says more). */
#define DHCP4_MAX_MSG 1500
/* Bytes of IPv4 (no options) + UDP headers we put in front. */
#define DHCP4_IPUDP_LEN 28
#define DHCP4_ARP_LEN 28

/* Option codes we build or read (RFC 2132). */
enum {
	DHCP4_OPT_PAD = 0,
	DHCP4_OPT_SUBNET_MASK = 1,
	DHCP4_OPT_ROUTER = 3,
	DHCP4_OPT_DNS = 6,
	DHCP4_OPT_HOSTNAME = 12,
	DHCP4_OPT_DOMAIN = 15,
	DHCP4_OPT_REQUESTED_IP = 50,
	DHCP4_OPT_LEASE_TIME = 51,
	DHCP4_OPT_OVERLOAD = 52,
	DHCP4_OPT_MSG_TYPE = 53,
	DHCP4_OPT_SERVER_ID = 54,
	DHCP4_OPT_PARAM_LIST = 55,
	DHCP4_OPT_MESSAGE = 56,
	DHCP4_OPT_MAX_SIZE = 57,
	DHCP4_OPT_T1 = 58,
	DHCP4_OPT_T2 = 59,
	DHCP4_OPT_CLIENT_ID = 61,
	DHCP4_OPT_END = 255,
};

enum dhcp4_msg_type {
	DHCP4_DISCOVER = 1,
	DHCP4_OFFER = 2,
	DHCP4_REQUEST = 3,
	DHCP4_DECLINE = 4,
	DHCP4_ACK = 5,
	DHCP4_NAK = 6,
	DHCP4_RELEASE = 7,
	DHCP4_INFORM = 8,
	_DHCP4_MSG_TYPE_MAX,
};
/* "discover", ...; index 0 and unknown types: NULL */
extern const char *const dhcp4_msg_type_name[_DHCP4_MSG_TYPE_MAX];

#define DHCP4_MSG_DNS_MAX 4
#define DHCP4_CLIENT_ID_MAX 64
#define DHCP4_HOSTNAME_MAX 63
#define DHCP4_MESSAGE_MAX 128

/*
 * One message, built or parsed.  For building only the fields a client sends are read:
 * op, xid, secs, flags, ciaddr, chaddr, type, requested_ip, server_id, client_id,
 * hostname, max_size, param_list; zero/absent fields are left out.  For parsing every
 * field is filled; has_* say which options were present.
 */
struct dhcp4_msg {
	uint8_t op;
	uint8_t htype, hlen;
	uint32_t xid; /* host order */
	uint16_t secs, flags;
	struct in_addr ciaddr, yiaddr, siaddr, giaddr;
	uint8_t chaddr[16];
	uint8_t type; /* option 53 */

	bool has_mask, has_router, has_server_id, has_lease, has_t1, has_t2, has_requested_ip;
	struct in_addr mask, router, server_id, requested_ip;
	struct in_addr dns[DHCP4_MSG_DNS_MAX];
	size_t n_dns;
	uint32_t lease_s, t1_s, t2_s;
	char message[DHCP4_MESSAGE_MAX + 1]; /* option 56 (NAK reason), printable; "" if none */

	/* build only */
	uint8_t client_id[DHCP4_CLIENT_ID_MAX];
	size_t client_id_len; /* 0: no option 61 */
	char hostname[DHCP4_HOSTNAME_MAX + 1]; /* "": no option 12 */
	uint16_t max_size;		       /* 0: no option 57 */
	bool param_list;		       /* option 55: 1,3,6,15,51,54,58,59 */
};

/*
 * Write m as a DHCP message into buf[0..len); *ret_len is its length (at least 300 bytes:
 * BOOTP's minimum, padded).  -ENOBUFS when it does not fit, -EINVAL for a type outside
 * 1..8 or a hostname or client id too long.
 */
int dhcp4_msg_build(const struct dhcp4_msg *m, uint8_t *buf, size_t len, size_t *ret_len);

/*
 * Parse a DHCP message from buf[0..len).  Refused: shorter than 240 bytes, no magic cookie,
 * hlen above 16, an option running past its field, an option of the wrong length, option 53
 * missing or outside 1..8.  Options split over several instances are joined (RFC 3396);
 * option 52 (overload) makes the file and sname fields carry options too (read once each).
 */
int dhcp4_msg_parse(const uint8_t *buf, size_t len, struct dhcp4_msg *ret);

/* A UDP datagram's addresses and ports (network order addresses, host order ports). */
struct dhcp4_udp {
	struct in_addr src, dst;
	uint16_t sport, dport;
};

/*
 * Put IPv4 + UDP headers (checksums filled) in front of payload: buf[0..len) receives
 * 28 + plen bytes; *ret_len says how many.  -ENOBUFS when it does not fit or plen is too
 * large for one datagram.  id: the IPv4 identification.
 */
int dhcp4_udp_build(const struct dhcp4_udp *u, uint16_t id, const uint8_t *payload, size_t plen,
	uint8_t *buf, size_t len, size_t *ret_len);

/*
 * Parse an IPv4 packet (as a SOCK_DGRAM packet socket hands it: from the IP header on) that
 * carries UDP: checks version, header length and checksum, total length, no fragment,
 * protocol 17, the UDP length and, when udp_csum is true and the field is not zero, the UDP
 * checksum (false: the kernel says it is not filled in yet, as for a packet from a veth
 * peer with checksum offload).  *ret_payload points into pkt.  -EBADMSG for anything
 * malformed, -EPROTO for a fragment or another protocol.
 */
int dhcp4_udp_parse(const uint8_t *pkt, size_t len, bool udp_csum, struct dhcp4_udp *ret,
	const uint8_t **ret_payload, size_t *ret_plen);

/* The Internet checksum (RFC 1071) of buf[0..len), starting from sum (0 for a fresh one). */
uint16_t dhcp4_csum(const void *buf, size_t len, uint32_t sum);

#define DHCP4_ARP_REQUEST 1
#define DHCP4_ARP_REPLY 2

/* An Ethernet/IPv4 ARP packet. */
struct dhcp4_arp {
	uint16_t op;
	uint8_t sha[6], tha[6];
	struct in_addr spa, tpa;
};

/* Write a into buf (28 bytes).  -ENOBUFS when len is short. */
int dhcp4_arp_build(const struct dhcp4_arp *a, uint8_t *buf, size_t len);
/*
 * Parse an ARP packet (from the ARP header on): Ethernet hardware type and lengths, IPv4
 * protocol type and lengths, op request or reply.  Trailing bytes (padding) are ignored.
 */
int dhcp4_arp_parse(const uint8_t *buf, size_t len, struct dhcp4_arp *ret);

#endif
