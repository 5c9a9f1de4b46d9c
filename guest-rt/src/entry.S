/*
 * guest-rt: entry points and exception vectors of a bare Tandem guest (EL1, AArch64).
 * Assembled by the crate (Rust: `global_asm!`) or by a C build (`gcc -c entry.S`), and
 * linked with guest.ld. The guest provides three functions (C ABI):
 *
 *   void     guest_main(u64 dtb)               vCPU 0, x0 = the device tree's IPA; no return
 *   void     guest_secondary_main(u64 context) a vCPU started by PSCI CPU_ON; no return
 *   Frame   *guest_exception(Frame *frame, u64 kind, u64 ticks)
 *            every exception: `frame` is the interrupted context (layout below), `kind` the
 *            vector (0 sync, 1 IRQ, 2 FIQ, 3 SError from EL1h; 0x1k from EL1t, 0x2k/0x3k
 *            from EL0 AArch64/AArch32), `ticks` CNTVCT_EL0 read at vector entry. Returns the
 *            frame to resume: `frame` itself (edited or not), or another one (a task switch).
 *
 * - `_start` (vCPU 0): a 64-byte arm64 Image header (text_offset 0x80000, image_size =
 *   __image_size), then the boot. Tandem's entry state (pv-abi's "Entry state",
 *   docs/porting.md): EL1h, MMU off, DAIF masked, x0 = DTB, SP = 0, VBAR_EL1 = 0 and
 *   CPACR_EL1 = 0, so FP/SIMD instructions trap. The boot therefore enables FP/SIMD before
 *   anything else (compiled code uses NEON, and with no vectors a trap hangs the guest
 *   silently), zeroes .bss, takes this vCPU's stack, installs the vectors, and calls
 *   guest_main(dtb).
 * - `guest_secondary_entry`: the address to give PSCI CPU_ON; x0 = its context id. The same
 *   set-up minus .bss (FP/SIMD again: CPACR_EL1 is per vCPU), then guest_secondary_main(ctx).
 * - `guest_vectors` (VBAR_EL1): each entry saves the whole context as a Frame on the current
 *   stack (x0..x30, ELR, SPSR, the entry counter, q0..q31, FPCR, FPSR; 800 bytes), calls
 *   guest_exception and restores the frame it returns, then `eret`. The counter is read
 *   first thing, so interrupt latency excludes the save.
 * - `guest_rt_resume(frame)`: restores `frame` and `eret`s to it (starting the first task).
 *
 * Stacks: STACK_SIZE per vCPU at __stacks_start, indexed by MPIDR_EL1.Aff0 (Tandem gives
 * vCPU n the Aff0 n); a vCPU with Aff0 >= MAX_CPUS parks. Natively (QEMU virt at EL1 without
 * a hypervisor) the same code runs: the CPUs have the same MPIDRs.
 */

.equ FRAME_SIZE,   800
.equ FRAME_X30,    240
.equ FRAME_ELR,    248
.equ FRAME_SPSR,   256
.equ FRAME_TICKS,  264
.equ FRAME_Q0,     272
.equ FRAME_FPCR,   784
.equ STACK_SHIFT,  14          /* 16 KiB per vCPU: guest.ld STACK_SIZE */
.equ MAX_CPUS,     8           /* guest.ld MAX_CPUS */
.equ CPACR_FPEN_ALL, (3 << 20) /* CPACR_EL1.FPEN = 0b11: FP/SIMD untrapped at EL1 and EL0 */

.section .text.boot, "ax"
.global _start
_start:
    b       primary_entry           /* code0 */
    .word   0                       /* code1 */
    .quad   0x80000                 /* text_offset: loaded at RAM base + 0x80000 */
    .quad   __image_size            /* image_size: .bss and stacks included */
    .quad   0x2                     /* flags: little endian, 4 KiB pages, not relocatable */
    .quad   0, 0, 0                 /* res2..res4 */
    .word   0x644d5241              /* magic "ARM\x64" */
    .word   0                       /* res5 */

primary_entry:
    msr     daifset, #0xf
    msr     spsel, #1
    mov     x19, x0                 /* DTB IPA */
    mov     x1, #CPACR_FPEN_ALL     /* FP/SIMD on before any compiled code */
    msr     cpacr_el1, x1
    isb
    adrp    x1, __bss_start         /* zero .bss (16-byte aligned at both ends: guest.ld) */
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  bl      set_stack_and_vectors
    mov     x0, x19
    bl      guest_main              /* never returns */
    b       park

.global guest_secondary_entry
guest_secondary_entry:
    msr     daifset, #0xf
    msr     spsel, #1
    mov     x19, x0                 /* PSCI CPU_ON context id */
    mov     x1, #CPACR_FPEN_ALL
    msr     cpacr_el1, x1
    isb
    bl      set_stack_and_vectors
    mov     x0, x19
    bl      guest_secondary_main    /* never returns */
    b       park

/* sp = top of this vCPU's stack (by MPIDR_EL1.Aff0), VBAR_EL1 = guest_vectors. x9, x10 only. */
set_stack_and_vectors:
    mrs     x9, mpidr_el1
    and     x9, x9, #0xff
    cmp     x9, #MAX_CPUS
    b.hs    park
    add     x9, x9, #1
    lsl     x9, x9, #STACK_SHIFT
    adrp    x10, __stacks_start
    add     x10, x10, :lo12:__stacks_start
    add     sp, x10, x9
    adrp    x10, guest_vectors
    add     x10, x10, :lo12:guest_vectors
    msr     vbar_el1, x10
    isb
    ret

park:
    wfe
    b       park

.section .text.vectors, "ax"

.macro VENTRY kind
    .balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mrs     x0, cntvct_el0          /* entry timestamp, before anything else */
    str     x0, [sp, #FRAME_TICKS]
    mov     x1, #\kind
    b       exception_common
.endm

.balign 0x800
.global guest_vectors
guest_vectors:
    /* Current EL with SP_EL0. */
    VENTRY  0x10
    VENTRY  0x11
    VENTRY  0x12
    VENTRY  0x13
    /* Current EL with SP_ELx: where EL1 code runs. */
    VENTRY  0                       /* synchronous */
    VENTRY  1                       /* IRQ */
    VENTRY  2                       /* FIQ */
    VENTRY  3                       /* SError */
    /* Lower EL, AArch64 and AArch32. */
    VENTRY  0x20
    VENTRY  0x21
    VENTRY  0x22
    VENTRY  0x23
    VENTRY  0x30
    VENTRY  0x31
    VENTRY  0x32
    VENTRY  0x33

exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el1
    stp     x30, x2, [sp, #FRAME_X30]
    mrs     x3, spsr_el1
    str     x3, [sp, #FRAME_SPSR]
    add     x2, sp, #FRAME_Q0
    stp     q0, q1, [x2, #0]
    stp     q2, q3, [x2, #32]
    stp     q4, q5, [x2, #64]
    stp     q6, q7, [x2, #96]
    stp     q8, q9, [x2, #128]
    stp     q10, q11, [x2, #160]
    stp     q12, q13, [x2, #192]
    stp     q14, q15, [x2, #224]
    stp     q16, q17, [x2, #256]
    stp     q18, q19, [x2, #288]
    stp     q20, q21, [x2, #320]
    stp     q22, q23, [x2, #352]
    stp     q24, q25, [x2, #384]
    stp     q26, q27, [x2, #416]
    stp     q28, q29, [x2, #448]
    stp     q30, q31, [x2, #480]
    mrs     x3, fpcr
    mrs     x4, fpsr
    add     x5, sp, #FRAME_FPCR     /* beyond stp's immediate range from sp */
    stp     x3, x4, [x5]
    mov     x2, x0                  /* the entry timestamp */
    mov     x0, sp                  /* the frame */
    bl      guest_exception         /* (frame, kind, ticks) -> the frame to resume */
    mov     sp, x0
restore_frame:
    add     x5, sp, #FRAME_FPCR
    ldp     x3, x4, [x5]
    msr     fpcr, x3
    msr     fpsr, x4
    add     x2, sp, #FRAME_Q0
    ldp     q0, q1, [x2, #0]
    ldp     q2, q3, [x2, #32]
    ldp     q4, q5, [x2, #64]
    ldp     q6, q7, [x2, #96]
    ldp     q8, q9, [x2, #128]
    ldp     q10, q11, [x2, #160]
    ldp     q12, q13, [x2, #192]
    ldp     q14, q15, [x2, #224]
    ldp     q16, q17, [x2, #256]
    ldp     q18, q19, [x2, #288]
    ldp     q20, q21, [x2, #320]
    ldp     q22, q23, [x2, #352]
    ldp     q24, q25, [x2, #384]
    ldp     q26, q27, [x2, #416]
    ldp     q28, q29, [x2, #448]
    ldp     q30, q31, [x2, #480]
    ldp     x30, x2, [sp, #FRAME_X30]
    ldr     x3, [sp, #FRAME_SPSR]
    msr     elr_el1, x2
    msr     spsr_el1, x3
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #FRAME_SIZE
    eret

/* guest_rt_resume(frame): restore `frame` (on top of its stack) and eret to it. */
.global guest_rt_resume
guest_rt_resume:
    mov     sp, x0
    b       restore_frame
