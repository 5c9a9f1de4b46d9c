// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * hello-c: the smallest complete Tandem guest in freestanding C, from first instruction to
 * power-off; the same steps as pv-abi/examples/hello-rust.
 *
 * vCPU 0 discovers Tandem (SMCCC Call UID and Revision), prints through CONSOLE_WRITE, reads
 * VM_INFO, takes three virtual-timer interrupts through the vGIC, starts vCPU 1 with PSCI
 * CPU_ON (which prints and turns itself off) and powers the VM off with PSCI SYSTEM_OFF.
 * Entry, stacks and exception vectors are guest-rt's entry.S, linked with its guest.ld; the
 * Tandem call numbers come from include/tandem_abi.h.
 *
 * Build: `cargo xtask example hello-c` (or `make` here); boot: `cargo xtask run --guest
 * target/tandem/examples/hello-c.bin`. See README.md and docs/porting.md.
 */
#include <stdint.h>
#include "tandem_abi.h"

/* PSCI function IDs (Arm DEN0022; Linux has them in <uapi/linux/psci.h>). */
#define PSCI_CPU_OFF		0x84000002u
#define PSCI_CPU_ON_64		0xC4000003u
#define PSCI_SYSTEM_OFF		0x84000008u

/* The vGICv3 every Tandem VM sees (IPAs), and the virtual timer's PPI. */
#define GICD		0x08000000ul
#define GICR		0x080a0000ul
#define GICR_STRIDE	0x20000ul
#define SGI_FRAME	0x10000ul
#define VTIMER_INTID	27
#define TICKS		3
#define PERIOD_MS	10

/* guest-rt's exception frame (only elr is used here) and vector kinds. */
struct frame {
	uint64_t x[31], elr, spsr, entry_ticks;
	unsigned __int128 q[32];
	uint64_t fpcr, fpsr;
};
#define KIND_IRQ	1

static volatile uint32_t timer_irqs;
static volatile uint32_t vcpu1_done;

struct hvc_ret { uint64_t x0, x1, x2, x3; };

/* One SMCCC 1.1 call with hvc #0: x0 = function ID, x1..x7 arguments, results in x0..x3. */
static struct hvc_ret hvc(uint64_t fid, const uint64_t args[7])
{
	register uint64_t x0 __asm__("x0") = fid, x1 __asm__("x1") = args[0];
	register uint64_t x2 __asm__("x2") = args[1], x3 __asm__("x3") = args[2];
	register uint64_t x4 __asm__("x4") = args[3], x5 __asm__("x5") = args[4];
	register uint64_t x6 __asm__("x6") = args[5], x7 __asm__("x7") = args[6];

	__asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
			 : "r"(x4), "r"(x5), "r"(x6), "r"(x7) : "memory");
	return (struct hvc_ret){ x0, x1, x2, x3 };
}

static struct hvc_ret call(uint64_t fid, uint64_t a1, uint64_t a2, uint64_t a3)
{
	const uint64_t args[7] = { a1, a2, a3 };

	return hvc(fid, args);
}

/* CONSOLE_WRITE: up to 48 bytes packed little-endian in x2..x7; x1 returns how many were
 * taken (fewer while Tandem's buffer is full: YIELD, then send the rest). */
static void print(const char *s)
{
	while (*s) {
		uint64_t args[7] = { 0 }, n = 0;

		while (s[n] && n < TANDEM_CONSOLE_WRITE_MAX) {
			args[1 + n / 8] |= (uint64_t)(uint8_t)s[n] << (8 * (n % 8));
			n++;
		}
		args[0] = n;
		struct hvc_ret r = hvc(TANDEM_HC_CONSOLE_WRITE, args);

		if ((int64_t)r.x0 != TANDEM_ST_SUCCESS)
			return;
		if (r.x1 == 0)
			call(TANDEM_HC_YIELD, 0, 0, 0);
		s += r.x1;
	}
}

static void print_u64(uint64_t v, unsigned base)
{
	char buf[24], *p = buf + sizeof(buf) - 1;

	*p = 0;
	do {
		*--p = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (base == 16) {
		*--p = 'x';
		*--p = '0';
	}
	print(p);
}

static void __attribute__((noreturn)) power_off(void)
{
	call(PSCI_SYSTEM_OFF, 0, 0, 0);
	for (;;)
		__asm__ volatile("wfe");
}

/* Single 32-bit accesses: the vGIC is emulated on stage-2 faults, which need an instruction
 * syndrome, so no writeback or pair forms (volatile keeps them plain `ldr`/`str` here). */
static uint32_t mmio_read(uint64_t addr) { return *(volatile uint32_t *)addr; }
static void mmio_write(uint64_t addr, uint32_t v) { *(volatile uint32_t *)addr = v; }

/* GICv3 set-up for the virtual timer on vCPU `cpu` (see hello-rust for each step). */
static void gic_init(uint64_t cpu)
{
	uint64_t rd = GICR + cpu * GICR_STRIDE, sgi = rd + SGI_FRAME;
	uint64_t prio = sgi + 0x400 + VTIMER_INTID / 4 * 4;
	unsigned shift = VTIMER_INTID % 4 * 8;

	mmio_write(GICD, (1u << 4) | (1u << 1));		/* ARE_NS | EnableGrp1NS */
	mmio_write(rd + 0x14, mmio_read(rd + 0x14) & ~(1u << 1)); /* wake the redistributor */
	while (mmio_read(rd + 0x14) & (1u << 2))
		;
	mmio_write(sgi + 0x080, mmio_read(sgi + 0x080) | (1u << VTIMER_INTID)); /* group 1 */
	mmio_write(prio, (mmio_read(prio) & ~(0xffu << shift)) | (0x80u << shift));
	mmio_write(sgi + 0x100, 1u << VTIMER_INTID);		/* enable */
	__asm__ volatile("msr icc_pmr_el1, %0\n msr icc_igrpen1_el1, %1\n isb"
			 :: "r"(0xfful), "r"(1ul));
}

static void timer_arm(void)
{
	uint64_t hz;

	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(hz));
	__asm__ volatile("msr cntv_tval_el0, %0\n msr cntv_ctl_el0, %1\n isb"
			 :: "r"(hz * PERIOD_MS / 1000), "r"(1ul));
}

/* vCPU 0, from guest-rt's _start on its own stack; dtb = the device tree's IPA. */
void __attribute__((noreturn)) guest_main(uint64_t dtb)
{
	struct hvc_ret uid = call(TANDEM_HYP_CALL_UID, 0, 0, 0);
	struct hvc_ret rev = call(TANDEM_HYP_REVISION, 0, 0, 0);

	/* Discovery: Tandem's UUID, then major version 1; else call nothing more. */
	if ((uint32_t)uid.x0 != TANDEM_UUID_W0 || (uint32_t)uid.x1 != TANDEM_UUID_W1 ||
	    (uint32_t)uid.x2 != TANDEM_UUID_W2 || (uint32_t)uid.x3 != TANDEM_UUID_W3 ||
	    (uint32_t)rev.x0 != TANDEM_ABI_VERSION_MAJOR)
		power_off();
	print("hello from C: Tandem ABI ");
	print_u64((uint32_t)rev.x0, 10);
	print(".");
	print_u64((uint32_t)rev.x1, 10);
	print("\n");

	struct hvc_ret me = call(TANDEM_HC_VM_INFO, 0, 0, 0);

	if ((int64_t)me.x0 != TANDEM_ST_SUCCESS)
		power_off();
	print("VM ");
	print_u64(me.x1, 10);
	print(", vCPU ");
	print_u64(me.x2, 10);
	print(" of ");
	print_u64(me.x3, 10);
	print(", device tree at ");
	print_u64(dtb, 16);
	print("\n");

	gic_init(0);
	timer_arm();
	while (timer_irqs < TICKS)
		__asm__ volatile("msr daifclr, #2\n wfi" ::: "memory");
	__asm__ volatile("msr daifset, #2" ::: "memory");
	print("3 virtual timer interrupts (INTID 27), 10 ms apart\n");

	if (me.x3 > 1) {
		extern char guest_secondary_entry[];	/* guest-rt: where CPU_ON starts a vCPU */
		/* vCPU 1 has MPIDR Aff0 = 1; the context id arrives in x0. */
		struct hvc_ret on = call(PSCI_CPU_ON_64, 1, (uint64_t)guest_secondary_entry, 0x1234);

		if ((int32_t)on.x0 == 0) {
			while (!vcpu1_done)
				call(TANDEM_HC_YIELD, 0, 0, 0);
		} else {
			print("CPU_ON failed\n");
		}
	}
	print("bye: SYSTEM_OFF\n");
	power_off();
}

/* vCPU 1, started by CPU_ON at guest-rt's guest_secondary_entry, on its own stack. */
void __attribute__((noreturn)) guest_secondary_main(uint64_t context_id)
{
	print("hello from vCPU ");
	print_u64(call(TANDEM_HC_VM_INFO, 0, 0, 0).x2, 10);
	print(" (PSCI CPU_ON, context id ");
	print_u64(context_id, 16);
	print(")\n");
	vcpu1_done = 1;
	call(PSCI_CPU_OFF, 0, 0, 0);
	print("CPU_OFF failed\n");
	power_off();
}

/* Every exception, from guest-rt's vectors: returns the frame to resume. */
struct frame *guest_exception(struct frame *frame, uint64_t kind, uint64_t ticks)
{
	uint64_t intid;

	(void)ticks;
	if (kind != KIND_IRQ) {
		print("unexpected exception at ");
		print_u64(frame->elr, 16);
		print("\n");
		power_off();
	}
	__asm__ volatile("mrs %0, icc_iar1_el1" : "=r"(intid));
	if (intid == VTIMER_INTID) {
		/* Tandem masked the timer (CNTV_CTL.IMASK) to inject it: re-arm, or turn it off. */
		if (++timer_irqs < TICKS)
			timer_arm();
		else
			__asm__ volatile("msr cntv_ctl_el0, xzr\n isb");
	}
	if (intid < 1020)
		__asm__ volatile("msr icc_eoir1_el1, %0\n isb" :: "r"(intid));
	return frame;
}
