/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * Tandem hypercall ABI 1.2 for C guests.
 *
 * Generated from the pv-abi crate (pv-abi/tests/c_header.rs); do not edit.
 * Regenerate with: TANDEM_BLESS=1 cargo test -p pv-abi --test c_header
 *
 * Conduit: HVC #0 from EL1, SMC Calling Convention v1.1. x0 = function ID
 * (only w0 is read), x1..x7 = arguments, x0..x3 = results; the hypervisor
 * preserves x4..x17 and all other state. SMC is not a Tandem conduit.
 *
 * Console bytes are packed little-endian: byte i is bits [8*(i%8)+7 : 8*(i%8)]
 * of register x(2 + i/8). See the pv-abi crate documentation for each call.
 */

#ifndef _TANDEM_ABI_H
#define _TANDEM_ABI_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
#endif

/* ABI version (REVISION, VERSION). A guest requires MAJOR == 1. */
#define TANDEM_ABI_VERSION_MAJOR	1
#define TANDEM_ABI_VERSION_MINOR	2

/* Device-tree node; its "interrupts" is the console-input interrupt (edge). */
#define TANDEM_DT_COMPATIBLE	"tandem,hypervisor"

/* Discovery: vendor-specific hypervisor service queries (SMC32 fast calls). */
#define TANDEM_HYP_CALL_UID	0x8600FF01
#define TANDEM_HYP_REVISION	0x8600FF03

/*
 * Tandem UUID 817a8793-3da7-4bed-a672-3c9608f510ec as CALL_UID returns it in w0..w3
 * (little-endian words of the RFC 4122 bytes). Unknown: w0 = 0xFFFFFFFF.
 */
#define TANDEM_UUID_W0	0x93877A81
#define TANDEM_UUID_W1	0xED4BA73D
#define TANDEM_UUID_W2	0x963C72A6
#define TANDEM_UUID_W3	0xEC10F508

/*
 * Tandem calls: SMC64 fast calls, 0xC6000000 | n.
 * 0xC6000010..0xC600001F belong to inter-VM channels (ABI 1.2 defines the first four).
 */
#define TANDEM_HC_VERSION		0xC6000000
#define TANDEM_HC_VM_INFO		0xC6000001
#define TANDEM_HC_CONSOLE_WRITE		0xC6000002
#define TANDEM_HC_CONSOLE_READ		0xC6000003
#define TANDEM_HC_YIELD			0xC6000004
#define TANDEM_HC_STATS			0xC6000005
#define TANDEM_HC_CRASH			0xC6000006
#define TANDEM_HC_WATCHDOG		0xC6000007
#define TANDEM_HC_CHANNEL_NOTIFY	0xC6000010
#define TANDEM_HC_VIRTIO_POLL		0xC6000011
#define TANDEM_HC_VIRTIO_REPLY		0xC6000012
#define TANDEM_HC_VIRTIO_INTERRUPT	0xC6000013

/* Status codes, returned in x0 as a signed 64-bit value. */
#define TANDEM_ST_SUCCESS		0
#define TANDEM_ST_NOT_SUPPORTED		(-1)
#define TANDEM_ST_NOT_REQUIRED		(-2)
#define TANDEM_ST_INVALID_PARAMETER	(-3)
#define TANDEM_ST_DENIED		(-4)
#define TANDEM_ST_BUSY			(-5)

/*
 * STATS ids (x1). Linux: /sys/hypervisor/stats/<name>, where <name> is the
 * lower-case suffix (TANDEM_STAT_WFI_EXITS -> wfi_exits). UPTIME_NS is global.
 */
#define TANDEM_STAT_EXITS		0
#define TANDEM_STAT_HYPERCALLS		1
#define TANDEM_STAT_VIRQS_INJECTED	2
#define TANDEM_STAT_MMIO_EMULATED	3
#define TANDEM_STAT_WFI_EXITS		4
#define TANDEM_STAT_UPTIME_NS		5
#define TANDEM_STAT_CHANNEL_DOORBELLS	6
#define TANDEM_STAT_CHANNEL_DENIED	7
#define TANDEM_STAT_VIRTIO_FORWARDED	8
#define TANDEM_STAT_VIRTIO_NOTIFIES	9
#define TANDEM_STAT_COUNT		10

/* Console payload limits in bytes (CONSOLE_WRITE: x2..x7, CONSOLE_READ: x2..x3). */
#define TANDEM_CONSOLE_WRITE_MAX	48
#define TANDEM_CONSOLE_READ_MAX		16

/* Longest WATCHDOG timeout in ms (ABI 1.1; CRASH takes its reason like CONSOLE_WRITE). */
#define TANDEM_WATCHDOG_MAX_MS	3600000

/*
 * Channels (ABI 1.2): device-tree compatibles of a channel's node in each guest.
 * reg = the shared region, interrupts = the doorbell, tandem,channel = the id.
 */
#define TANDEM_DT_CHANNEL		"tandem,channel"
#define TANDEM_DT_VIRTIO_BACKEND	"tandem,virtio-backend"

/*
 * Forwarded virtio-mmio: registers Tandem answers itself, the window size, and
 * VIRTIO_INTERRUPT's bits.
 */
#define TANDEM_VIRTIO_WINDOW_SIZE	0x200
#define TANDEM_VIRTIO_QUEUE_NOTIFY	0x050
#define TANDEM_VIRTIO_INTERRUPT_STATUS	0x060
#define TANDEM_VIRTIO_INTERRUPT_ACK	0x064
#define TANDEM_VIRTIO_INT_USED_BUFFER	1
#define TANDEM_VIRTIO_INT_CONFIG_CHANGE	2

/*
 * VIRTIO_POLL's access word (x2; 0 = none), VIRTIO_REPLY's x2: bit 63 valid,
 * 62 write, 59..56 size in bytes, 55..48 vCPU, 47..16 sequence, 15..0 offset.
 */
#define TANDEM_VIRTIO_ACCESS_VALID	(1ULL << 63)
#define TANDEM_VIRTIO_ACCESS_WRITE	(1ULL << 62)
#define TANDEM_VIRTIO_ACCESS_SIZE(w)	((unsigned int)(((w) >> 56) & 0xf))
#define TANDEM_VIRTIO_ACCESS_VCPU(w)	((unsigned int)(((w) >> 48) & 0xff))
#define TANDEM_VIRTIO_ACCESS_OFFSET(w)	((unsigned int)((w) & 0xffff))

/*
 * Message ring in a channel's shared memory (ABI 1.2; pv-abi's ring module).
 * u32 prod at PROD_OFFSET, written by the producer (store-release after the record);
 * u32 cons at CONS_OFFSET, written by the consumer (store-release after reading);
 * both little-endian, free-running, multiples of 4, prod - cons <= capacity.
 * Data from DATA_OFFSET; capacity = the largest power of two <= size - DATA_OFFSET,
 * MIN_CAPACITY..MAX_CAPACITY. A record at data[index % capacity]: u32 length, the
 * payload, padding to RECORD_ALIGN. A reader checks all of it: the peer may lie.
 */
#define TANDEM_RING_PROD_OFFSET		0x00
#define TANDEM_RING_CONS_OFFSET		0x40
#define TANDEM_RING_DATA_OFFSET		0x80
#define TANDEM_RING_RECORD_HEADER	4
#define TANDEM_RING_RECORD_ALIGN	4
#define TANDEM_RING_MIN_CAPACITY	16
#define TANDEM_RING_MAX_CAPACITY	0x80000000U
#define TANDEM_RING_RECORD_SIZE(len)	(4 + ((len) + 3) / 4 * 4)

#endif /* _TANDEM_ABI_H */
