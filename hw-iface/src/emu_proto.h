/* SPDX-License-Identifier: MIT */
/*
 * emu_proto.h - the wire protocol between maptbl-emu and its clients (docs/REGISTERS.md §11).
 *
 * Internal to the repository: included by hw-iface/emu (the server) and hw-iface/src/backend_emu.c
 * (the client in libmaptbl-hw). Not installed.
 *
 * One SOCK_SEQPACKET UNIX socket per client. Every message, in both directions, is one packet of
 * exactly 32 bytes (struct mtemu_msg, little-endian fields). The client sends requests, the server
 * answers each with exactly one reply in order; the server may also send IRQ notifications at any
 * time, between replies. The HELLO reply carries the shared DMA memory (a memfd) as SCM_RIGHTS.
 */
#ifndef MAPTBL_EMU_PROTO_H
#define MAPTBL_EMU_PROTO_H

#include <stdint.h>

#include "maptbl/format.h"

#define MTEMU_MAGIC		0x4D54454Du	/* "MTEM": HELLO request off */
#define MTEMU_PROTO_VERSION	1u		/* HELLO val; the server refuses another */
#define MTEMU_DMA_BASE		0x100000000ull	/* bus address of byte 0 of the shared region */
#define MTEMU_DMA_ALIGN		4096u		/* DMA allocations start on this boundary */

/* Message types. A reply has the request's type with MTEMU_REPLY set. */
enum mtemu_type {
	MTEMU_HELLO = 1,	 /* off magic, val version -> val version, off region bytes,
				    fn max VFs, arg pf block size; SCM_RIGHTS: memfd */
	MTEMU_READ = 2,		 /* fn, arg size (4|8), off -> val */
	MTEMU_WRITE = 3,	 /* fn, arg size (4|8), off, val -> (nothing) */
	MTEMU_DMA_ALLOC = 4,	 /* val bytes, arg MTEMU_ALLOC_* -> off bus address */
	MTEMU_DMA_FREE = 5,	 /* off bus address (start of an allocation) -> (nothing) */
	MTEMU_IRQ_SUBSCRIBE = 6, /* fn, arg 1 on / 0 off: IRQ notifications of fn to this client */
	MTEMU_IRQ = 7,		 /* server -> client, never replied: fn, arg vector */
	MTEMU_DMA_INFO = 8,	 /* off bus address -> off allocation start, val bytes, arg flags;
				    ENOENT when no allocation holds it */
	MTEMU_PROCESS = 9,	 /* -> (nothing): the server has served all work it could (barrier) */
};

#define MTEMU_REPLY		0x80000000u
#define MTEMU_ALLOC_PERSIST	0x1u	/* survives the client's disconnect (tables) */

/* One message (32 bytes). status is 0 in requests; in replies 0 or a positive errno. */
struct mtemu_msg {
	maptbl_le32_t type;
	maptbl_le32_t status;
	maptbl_le32_t fn;
	maptbl_le32_t arg;
	maptbl_le64_t off;
	maptbl_le64_t val;
};

_Static_assert(sizeof(struct mtemu_msg) == 32, "emulator message size");

#endif /* MAPTBL_EMU_PROTO_H */
