/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * mock-tandem: a minimal EL2 stand-in for Tandem, to exercise the Linux
 * guest drivers without the real hypervisor. A test tool, not Tandem.
 *
 * QEMU -M virt,virtualization=on boots it as an arm64 "Image" at EL2 with
 * x0 = DTB. It patches the DTB's PSCI method to "hvc" (QEMU forces "smc"),
 * then drops to EL1 at LINUX_ENTRY (where run.sh loads the real Image) with
 * the same DTB. No stage 2 and no vGIC: physical interrupts go straight to
 * EL1, so the PL011's SPI 1 doubles as the console input interrupt.
 *
 * HVC services: PSCI (forwarded to QEMU's firmware with SMC; CPU_ON goes
 * through EL2 setup on the new CPU), SMCCC_VERSION 1.1 and
 * PSCI_FEATURES(SMCCC_VERSION), the vendor-hypervisor Call UID and
 * Revision, and the Tandem calls on the PL011. CONSOLE_WRITE accepts at
 * most WRITE_LIMIT bytes per call and STATS does not keep mmio_emulated,
 * to exercise the guest's partial-write and missing-statistic paths.
 * Anything else returns NOT_SUPPORTED. Assemble with --defsym TRACE=1 to
 * print the ID of every non-Tandem HVC on the UART.
 */
	.macro	adr_l reg, sym
	adrp	\reg, \sym
	add	\reg, \reg, :lo12:\sym
	.endm

	.ifndef	TRACE
	.equ	TRACE, 0
	.endif

	.equ	LINUX_ENTRY,	0x40200000
	.equ	UART,		0x09000000
	.equ	UART_DR,	0x00
	.equ	UART_FR,	0x18
	.equ	UART_LCRH,	0x2c
	.equ	UART_IMSC,	0x38
	.equ	FR_RXFE,	(1 << 4)
	.equ	FR_TXFF,	(1 << 5)
	.equ	WRITE_LIMIT,	13		/* accept at most this much per call: exercises partial writes */
	.equ	STACK_SIZE,	0x1000
	.equ	NCPU,		8

	.section .text.head, "ax"
	.global	_start
_start:
	b	primary
	.word	0
	.quad	0x80000			/* text_offset */
	.quad	0x80000			/* image_size */
	.quad	0			/* flags */
	.quad	0, 0, 0
	.ascii	"ARM\x64"
	.word	0

	.text
/* x19 = cpu index; sets SP_EL2 and the EL2/EL1 controls. Clobbers x0-x2. */
el2_setup:
	adr_l	x0, stacks_end
	mov	x1, #STACK_SIZE
	msub	x0, x1, x19, x0
	mov	sp, x0
	adr_l	x0, vectors
	msr	vbar_el2, x0
	mov	x0, #(1 << 31)			/* HCR_EL2.RW: EL1 is AArch64 */
	msr	hcr_el2, x0
	mov	x0, #3				/* CNTHCTL_EL2: EL1PCTEN | EL1PCEN */
	msr	cnthctl_el2, x0
	msr	cntvoff_el2, xzr
	mov	x0, #0x9			/* ICC_SRE_EL2: SRE | Enable */
	msr	S3_4_C12_C9_5, x0
	isb
	mov	x0, #0x33ff			/* CPTR_EL2: RES1, no FP/SIMD trap */
	msr	cptr_el2, x0
	msr	mdcr_el2, xzr
	mrs	x0, midr_el1
	msr	vpidr_el2, x0
	mrs	x0, mpidr_el1
	msr	vmpidr_el2, x0
	ldr	x0, =0x30d00800			/* SCTLR_EL1 RES1, MMU off */
	msr	sctlr_el1, x0
	mov	x0, #0x3c5			/* EL1h, DAIF masked */
	msr	spsr_el2, x0
	isb
	ret

primary:
	mov	x20, x0				/* DTB */
	mov	x19, #0
	bl	el2_setup
	/* QEMU forces psci method = "smc" in any DTB: make it "hvc" */
	ldr	w1, [x20, #4]			/* totalsize, big-endian */
	rev	w1, w1
	add	x1, x20, x1
	mov	x2, x20
	ldr	w3, =0x00636d73			/* "smc\0" */
	ldr	w4, =0x00637668			/* "hvc\0" */
1:	cmp	x2, x1
	b.hs	2f
	ldr	w5, [x2]
	cmp	w5, w3
	b.ne	3f
	str	w4, [x2]
3:	add	x2, x2, #4
	b	1b
2:
	/* PL011: FIFO on, RX and RX-timeout interrupts on (the console-input SPI) */
	ldr	x1, =UART
	mov	w0, #(3 << 5) | (1 << 4)	/* 8 bits, FIFO enable */
	str	w0, [x1, #UART_LCRH]
	mov	w0, #(1 << 4) | (1 << 6)
	str	w0, [x1, #UART_IMSC]
	adr_l	x0, banner
	bl	puts
	ldr	x0, =LINUX_ENTRY
	msr	elr_el2, x0
	mov	x0, x20
	mov	x1, xzr
	mov	x2, xzr
	mov	x3, xzr
	eret

/* QEMU's PSCI starts secondaries here at EL2 with x0 = cpu index. */
secondary:
	mov	x19, x0
	bl	el2_setup
	adr_l	x1, cpu_entry
	add	x1, x1, x19, lsl #4
	ldp	x2, x0, [x1]
	msr	elr_el2, x2
	mov	x1, xzr
	mov	x2, xzr
	mov	x3, xzr
	eret

/* puthex(x4): prints "hvc <x4>\r\n"; clobbers x0-x8 */
puthex:
	ldr	x1, =UART
	mov	x5, #60
1:	lsr	x6, x4, x5
	and	x6, x6, #0xf
	cmp	x6, #10
	add	x7, x6, #'0'
	add	x8, x6, #('a' - 10)
	csel	x6, x7, x8, lo
2:	ldr	w3, [x1, #UART_FR]
	tbnz	w3, #5, 2b
	str	w6, [x1, #UART_DR]
	subs	x5, x5, #4
	b.pl	1b
	mov	w6, #'\r'
	str	w6, [x1, #UART_DR]
	mov	w6, #'\n'
	str	w6, [x1, #UART_DR]
	ret

/* puts(x0): clobbers x0-x3 */
puts:
	ldr	x1, =UART
1:	ldrb	w2, [x0], #1
	cbz	w2, 3f
2:	ldr	w3, [x1, #UART_FR]
	tbnz	w3, #5, 2b
	str	w2, [x1, #UART_DR]
	b	1b
3:	ret

	.macro	ventry label
	.balign	0x80
	b	\label
	.endm

	.balign	0x800
vectors:
	ventry	bad		/* current EL, SP0 */
	ventry	bad
	ventry	bad
	ventry	bad
	ventry	bad		/* current EL, SPx */
	ventry	bad
	ventry	bad
	ventry	bad
	ventry	lower_sync	/* lower EL, AArch64 */
	ventry	bad
	ventry	bad
	ventry	bad
	ventry	bad		/* lower EL, AArch32 */
	ventry	bad
	ventry	bad
	ventry	bad

bad:
	adr_l	x0, msg_bad
	bl	puts
	mrs	x0, esr_el2
1:	wfi
	b	1b

lower_sync:
	stp	x4, x5, [sp, #-16]!
	stp	x6, x7, [sp, #-16]!
	stp	x8, x9, [sp, #-16]!
	stp	x10, x11, [sp, #-16]!
	stp	x12, x13, [sp, #-16]!
	stp	x14, x15, [sp, #-16]!
	stp	x16, x17, [sp, #-16]!
	stp	x18, x19, [sp, #-16]!
	stp	x20, x30, [sp, #-16]!
	mrs	x9, esr_el2
	lsr	x9, x9, #26
	cmp	x9, #0x16			/* HVC64 */
	b.ne	bad
	adr_l	x9, hypercalls
	ldr	x10, [x9]
	add	x10, x10, #1
	str	x10, [x9]
	mov	w9, w0				/* function ID: only w0 */
	adr_l	x10, trace
	ldr	x10, [x10]
	cbz	x10, 9f
	lsr	w10, w0, #24
	cmp	w10, #0xc6
	b.eq	9f
	stp	x0, x1, [sp, #-16]!
	stp	x2, x3, [sp, #-16]!
	mov	x4, x0
	bl	puthex
	ldp	x2, x3, [sp], #16
	ldp	x0, x1, [sp], #16
	mov	w9, w0
9:

	ldr	w10, =0x80000000		/* SMCCC_VERSION */
	cmp	w9, w10
	b.ne	1f
	ldr	x0, =0x10001
	b	done
1:	ldr	w10, =0x80000001		/* SMCCC_ARCH_FEATURES */
	cmp	w9, w10
	b.eq	not_supported
	ldr	w10, =0x8600ff01		/* vendor hyp Call UID */
	cmp	w9, w10
	b.ne	1f
	ldr	x0, =0x93877a81
	ldr	x1, =0xed4ba73d
	ldr	x2, =0x963c72a6
	ldr	x3, =0xec10f508
	b	done
1:	ldr	w10, =0x8600ff03		/* vendor hyp Revision */
	cmp	w9, w10
	b.ne	1f
	mov	x0, #1
	mov	x1, #0
	b	done
1:	ldr	w10, =0x8400000a		/* PSCI_FEATURES */
	cmp	w9, w10
	b.ne	1f
	ldr	w10, =0x80000000
	cmp	w1, w10
	b.ne	forward
	mov	x0, #0
	b	done
1:	ldr	w10, =0xc4000003		/* PSCI CPU_ON (64) */
	cmp	w9, w10
	b.eq	cpu_on
	ldr	w10, =0xbfffffe0		/* PSCI 0x84000000-1f, 0xc4000000-1f */
	and	w10, w9, w10
	ldr	w11, =0x84000000
	cmp	w10, w11
	b.eq	forward
	and	w10, w9, #0xffffff00
	ldr	w11, =0xc6000000
	cmp	w10, w11
	b.ne	not_supported
	and	w10, w9, #0xff
	cmp	w10, #0
	b.eq	hc_version
	cmp	w10, #1
	b.eq	hc_vm_info
	cmp	w10, #2
	b.eq	hc_console_write
	cmp	w10, #3
	b.eq	hc_console_read
	cmp	w10, #4
	b.eq	success
	cmp	w10, #5
	b.eq	hc_stats
not_supported:
	mov	x0, #-1
	b	done
invalid:
	mov	x0, #-3
	b	done
success:
	mov	x0, #0
done:
	ldp	x20, x30, [sp], #16
	ldp	x18, x19, [sp], #16
	ldp	x16, x17, [sp], #16
	ldp	x14, x15, [sp], #16
	ldp	x12, x13, [sp], #16
	ldp	x10, x11, [sp], #16
	ldp	x8, x9, [sp], #16
	ldp	x6, x7, [sp], #16
	ldp	x4, x5, [sp], #16
	eret

forward:
	smc	#0
	b	done

cpu_on:
	and	x10, x1, #0xff			/* target Aff0 = index */
	cmp	x10, #NCPU
	b.hs	invalid
	adr_l	x11, cpu_entry
	add	x11, x11, x10, lsl #4
	stp	x2, x3, [x11]
	adr_l	x2, secondary
	mov	x3, x10
	smc	#0
	b	done

hc_version:
	mov	x0, #0
	mov	x1, #1
	mov	x2, #0
	b	done

hc_vm_info:
	mov	x0, #0
	mov	x1, #1
	mrs	x2, mpidr_el1
	and	x2, x2, #0xff
	mov	x3, #2
	b	done

hc_console_write:			/* x1 = len, bytes in x2..x7 */
	cmp	x1, #48
	b.hi	invalid
	mov	x12, x1
	cmp	x12, #WRITE_LIMIT
	b.ls	1f
	mov	x12, #WRITE_LIMIT
1:	stp	x2, x3, [sp, #-48]!
	stp	x4, x5, [sp, #16]
	stp	x6, x7, [sp, #32]
	mov	x13, sp
	ldr	x14, =UART
	mov	x15, #0
2:	cmp	x15, x12
	b.hs	4f
	ldrb	w16, [x13, x15]
3:	ldr	w17, [x14, #UART_FR]
	tbnz	w17, #5, 3b
	str	w16, [x14, #UART_DR]
	add	x15, x15, #1
	b	2b
4:	add	sp, sp, #48
	mov	x0, #0
	mov	x1, x12
	b	done

hc_console_read:			/* up to 16 bytes into x2..x3 */
	ldr	x14, =UART
	mov	x1, #0
	mov	x2, #0
	mov	x3, #0
1:	cmp	x1, #16
	b.hs	3f
	ldr	w17, [x14, #UART_FR]
	tbnz	w17, #4, 3f			/* RX FIFO empty */
	ldr	w16, [x14, #UART_DR]
	and	x16, x16, #0xff
	and	x15, x1, #7
	lsl	x15, x15, #3
	lsl	x16, x16, x15
	cmp	x1, #8
	b.hs	2f
	orr	x2, x2, x16
	add	x1, x1, #1
	b	1b
2:	orr	x3, x3, x16
	add	x1, x1, #1
	b	1b
3:	mov	x0, #0
	b	done

hc_stats:				/* ids 0..5; 3 (mmio_emulated) not kept */
	cmp	x1, #5
	b.hi	invalid
	cmp	x1, #3
	b.eq	not_supported
	cmp	x1, #1
	b.ne	1f
	adr_l	x9, hypercalls
	ldr	x1, [x9]
	mov	x0, #0
	b	done
1:	cmp	x1, #5
	b.ne	2f
	mrs	x1, cntpct_el0
	lsl	x1, x1, #4			/* 62.5 MHz -> ns */
	mov	x0, #0
	b	done
2:	mov	x1, #1000
	add	x1, x1, x1, lsl #1		/* some constant: 3000 */
	mov	x0, #0
	b	done

	.data
banner:	.asciz	"mock-tandem: EL2 stub up, entering Linux at EL1\r\n"
msg_bad: .asciz	"mock-tandem: unexpected exception\r\n"
	.balign	16
cpu_entry: .fill NCPU * 2, 8, 0
hypercalls: .quad 0
trace: .quad TRACE
	.balign	16
	.bss
	.balign	16
stacks:	.skip	STACK_SIZE * NCPU
stacks_end:
