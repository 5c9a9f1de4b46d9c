/*
 * rtos-guest entry points and exception vectors (EL1, AArch64).
 *
 * - `_start`: the 64-byte arm64 Image header, then CPU 0's boot. Entered at EL1h with the
 *   MMU off and x0 = DTB address (ignored), natively by QEMU and identically by Tandem,
 *   whose entry state (pv-abi's "Entry state", docs/vm-config.md) also has DAIF masked, no
 *   stack (SP = 0), no vectors (VBAR_EL1 = 0) and CPACR_EL1 = 0: FP/SIMD instructions trap.
 *   Every entry therefore enables FP/SIMD before any Rust code runs: code built for
 *   aarch64-unknown-none uses NEON (memcpy, formatting), and an unhandled trap would hang
 *   the guest with no output.
 * - `rtos_secondary_entry`: where PSCI CPU_ON starts another CPU, with x0 = its boot-stack
 *   index (1), in the same state as `_start` (FP/SIMD trapped again).
 * - `rtos_vectors`: VBAR_EL1. Every exception taken from EL1h (IRQ, SVC, fault) saves the
 *   whole interrupted context as a `Frame` (arch/frame.rs) on the current stack, calls
 *   `rtos_exception(frame, kind, entry_ticks)`, and resumes whatever frame that returns. A
 *   context switch is therefore just returning another task's frame: every task not running
 *   has a complete frame on top of its own stack.
 * - `rtos_start_first(frame)`: resumes the first task's frame.
 *
 * FP/SIMD: the frame includes q0-q31, FPCR and FPSR, so tasks and Rust handlers may use NEON
 * (the target does, e.g. in memcpy); the cost is 64 more loads/stores per exception.
 */

.equ FRAME_SIZE,  800
.equ FRAME_X30,   240
.equ FRAME_ELR,   248
.equ FRAME_SPSR,  256
.equ FRAME_Q0,    272
.equ FRAME_FPCR,  784
.equ FRAME_FPSR,  792
.equ BOOT_STACK_SHIFT, 14      /* 16 KiB per boot stack (link.ld BOOT_STACK_SIZE) */
.equ CPACR_FPEN_ALL, (3 << 20) /* CPACR_EL1.FPEN = 0b11: no FP/SIMD traps at EL1/EL0 */

.section .text.boot, "ax"
.global _start
_start:
    b       primary_entry           /* code0 */
    .word   0                       /* code1 */
    .quad   0x80000                 /* text_offset: loaded at RAM base + 0x80000 */
    .quad   __image_size            /* image_size, .bss and boot stacks included */
    .quad   0x2                     /* flags: little endian, 4 KiB pages, near RAM base (not relocatable) */
    .quad   0, 0, 0                 /* res2..res4 */
    .word   0x644d5241              /* magic "ARM\x64" */
    .word   0                       /* res5 */

primary_entry:
    msr     daifset, #0xf
    msr     spsel, #1
    mov     x1, #CPACR_FPEN_ALL     /* FP/SIMD on before any Rust (Tandem enters with it trapped) */
    msr     cpacr_el1, x1
    isb
    /* Zero .bss (16-byte aligned at both ends, see link.ld). */
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  mov     x0, #0
    bl      boot_stack_top
    mov     sp, x0
    bl      rtos_main               /* never returns */
    b       halt

.global rtos_secondary_entry
rtos_secondary_entry:
    msr     daifset, #0xf
    msr     spsel, #1
    mov     x19, x0
    mov     x1, #CPACR_FPEN_ALL     /* each CPU has its own CPACR_EL1: enable FP/SIMD here too */
    msr     cpacr_el1, x1
    isb
    cmp     x19, #1                 /* only one secondary boot stack exists */
    b.ne    halt
    mov     x0, x19
    bl      boot_stack_top
    mov     sp, x0
    mov     x0, x19
    bl      rtos_secondary_main     /* never returns */
    b       halt

/* x0 = boot stack index -> x0 = its top. Uses x1 only. */
boot_stack_top:
    add     x0, x0, #1
    lsl     x0, x0, #BOOT_STACK_SHIFT
    adrp    x1, __boot_stacks_start
    add     x1, x1, :lo12:__boot_stacks_start
    add     x0, x0, x1
    ret

halt:
    wfe
    b       halt

.section .text.vectors, "ax"

.macro VENTRY kind
    .balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mrs     x0, cntvct_el0          /* entry timestamp, before anything else */
    mov     x1, #\kind
    b       exception_common
.endm

.balign 0x800
.global rtos_vectors
rtos_vectors:
    /* Current EL with SP_EL0: never used (tasks run on SP_EL1). */
    VENTRY  0x10
    VENTRY  0x11
    VENTRY  0x12
    VENTRY  0x13
    /* Current EL with SP_ELx: the only expected source. */
    VENTRY  0                       /* synchronous: SVC (reschedule) or a fault */
    VENTRY  1                       /* IRQ */
    VENTRY  2                       /* FIQ */
    VENTRY  3                       /* SError */
    /* Lower EL, AArch64 and AArch32: there is no EL0 code. */
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
    str     x3, [sp, #FRAME_FPCR]
    str     x4, [sp, #FRAME_FPSR]
    mov     x2, x0                  /* entry timestamp */
    mov     x0, sp                  /* the frame */
    bl      rtos_exception          /* (frame, kind, ticks) -> frame to resume */
    mov     sp, x0
restore_frame:
    ldr     x3, [sp, #FRAME_FPCR]
    ldr     x4, [sp, #FRAME_FPSR]
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
    ldp     x0, x1, [sp, #0]
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
    add     sp, sp, #FRAME_SIZE
    eret

/* rtos_start_first(frame): resume the first task (x0 = its frame). */
.global rtos_start_first
rtos_start_first:
    mov     sp, x0
    b       restore_frame
